package kernel

import (
	"debug/elf"
	"fmt"

	"github.com/cilium/ebpf/link"

	"github.com/vigilsec/vigil/internal/policy"
)

// uprobeKind attaches uprobes (and uretprobes for a return hook) at a
// binary's symbols and offsets, the hook's slot as the attach cookie.
type uprobeKind struct{}

func (uprobeKind) ownProbes() bool { return true }
func (uprobeKind) attachable(_ *Sensor, h *policy.Hook) error {
	return needCookie(h, "uprobes")
}

func (uprobeKind) attach(s *Sensor, ih *InstalledHook) error {
	progs, err := s.probeCollection()
	if err != nil {
		return err
	}
	h := ih.Hook
	ex, err := link.OpenExecutable(h.Binary)
	if err != nil {
		return fmt.Errorf("%s.path: %w", h.Path, err)
	}
	attach := func(sym string, opts link.UprobeOptions) error {
		opts.Cookie = uint64(ih.slot)
		l, err := ex.Uprobe(sym, progs.Uprobe, &opts)
		if err != nil {
			return err
		}
		ih.links = append(ih.links, l)
		if h.Return {
			l, err = ex.Uretprobe(sym, progs.Uretprobe, &opts)
			if err != nil {
				return err
			}
			ih.links = append(ih.links, l)
		}
		return nil
	}
	for i, sym := range h.Calls {
		if err := attach(sym, link.UprobeOptions{}); err != nil {
			ih.closeLinks()
			return fmt.Errorf("%s.symbols[%d]: %q in %s: %w", h.Path, i, sym, h.Binary, err)
		}
	}
	for i, off := range h.Offsets {
		opts := link.UprobeOptions{Address: off}
		if i < len(h.RefCtrOffsets) {
			opts.RefCtrOffset = h.RefCtrOffsets[i]
		}
		if err := attach("", opts); err != nil {
			ih.closeLinks()
			return fmt.Errorf("%s.offsets[%d]: %#x in %s: %w", h.Path, i, off, h.Binary, err)
		}
	}
	if len(h.Addrs) > 0 {
		f, err := elf.Open(h.Binary)
		if err != nil {
			ih.closeLinks()
			return fmt.Errorf("%s.path: %w", h.Path, err)
		}
		defer f.Close()
		for i, addr := range h.Addrs {
			off, ok := fileOffset(f, addr, true)
			if !ok {
				ih.closeLinks()
				return fmt.Errorf("%s.addrs[%d]: %#x is in no executable segment of %s", h.Path, i, addr, h.Binary)
			}
			if err := attach("", link.UprobeOptions{Address: off}); err != nil {
				ih.closeLinks()
				return fmt.Errorf("%s.addrs[%d]: %#x (offset %#x) in %s: %w", h.Path, i, addr, off, h.Binary, err)
			}
		}
	}
	ih.Mechanism = "uprobe"
	return nil
}

func (uprobeKind) mechanisms(fs Features) []HookMechanism {
	if !fs.Has(FeatureUprobe) {
		return []HookMechanism{missing("uprobes", FeatureUprobe)}
	}
	if !fs.Has(FeatureAttachCookie) {
		return []HookMechanism{missing("uprobes", FeatureAttachCookie)}
	}
	return []HookMechanism{{Hook: "uprobes", Mechanism: "uprobe (attach cookie)"}}
}
