package kernel

import (
	"fmt"

	"github.com/cilium/ebpf/link"
	"github.com/vigilsec/vigil/internal/policy"
)

// attachLSM attaches an lsmhooks hook as a BPF LSM program. Where "bpf" is
// not an active LSM the program would attach and never run: that is
// refused instead.
func (s *Sensor) attachLSM(ih *InstalledHook) error {
	h := ih.Hook
	if err := probeLSMActive(); err != nil {
		return fmt.Errorf("%s.hook: %w: %w", h.Path, ErrMissingFeature, err)
	}
	prog, err := s.loadTrampoline(ih, "vigil_lsm", h.Calls[0])
	if err != nil {
		return err
	}
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		ih.closeLinks()
		return fmt.Errorf("%s.hook: attaching the LSM program to %s: %w", h.Path, h.Calls[0], err)
	}
	ih.links = append(ih.links, l)
	ih.Mechanism = "bpf_lsm"
	return nil
}

// lsmKind attaches lsmhooks as BPF LSM programs.
type lsmKind struct{}

func (lsmKind) ownProbes() bool { return true }

func (lsmKind) attachable(_ *Sensor, h *policy.Hook) error {
	if err := probeLSMActive(); err != nil {
		return fmt.Errorf("%s.hook: %w: %w", h.Path, ErrMissingFeature, err)
	}
	return nil
}

func (lsmKind) attach(s *Sensor, ih *InstalledHook) error { return s.attachLSM(ih) }

func (lsmKind) mechanisms(fs Features) []HookMechanism {
	if !fs.Has(FeatureLSM) {
		return []HookMechanism{missing("lsmhooks", FeatureLSM)}
	}
	return []HookMechanism{{Hook: "lsmhooks", Mechanism: "bpf_lsm"}}
}
