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
	if h.ImaFile != "" {
		// A trampoline runs the program attached last first: the
		// sleepable one goes first, to run after the hook's program,
		// which leaves it the record.
		if err := s.attachImaHash(ih); err != nil {
			ih.closeLinks()
			return err
		}
	}
	prog, err := s.loadTrampoline(ih, "vigil_lsm", h.Calls[0])
	if err != nil {
		ih.closeLinks()
		return err
	}
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		ih.closeLinks()
		return fmt.Errorf("%s.hook: attaching the LSM program to %s: %w", h.Path, h.Calls[0], err)
	}
	ih.links = append(ih.links, l)
	ih.Mechanism = "bpf_lsm"
	if h.ImaFile != "" {
		ih.Mechanism = "bpf_lsm + sleepable bpf_lsm (imaHash)"
	}
	return nil
}

// attachImaHash attaches the sleepable program that appends the IMA hash
// of the hook's file to the events of its imaHash selectors.
func (s *Sensor) attachImaHash(ih *InstalledHook) error {
	h := ih.Hook
	prog, err := s.loadTrampoline(ih, "vigil_lsm_ima_"+h.ImaFile, h.Calls[0])
	if err != nil {
		return fmt.Errorf("%s: imaHash needs a sleepable BPF LSM program calling bpf_ima_file_hash (Linux 5.18, IMA): %w: %w", h.Path, ErrMissingFeature, err)
	}
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		return fmt.Errorf("%s.hook: attaching the imaHash program to %s: %w", h.Path, h.Calls[0], err)
	}
	ih.links = append(ih.links, l)
	return nil
}

// lsmKind attaches lsmhooks as BPF LSM programs.
type lsmKind struct{}

func (lsmKind) ownProbes() bool { return true }

func (lsmKind) attachable(_ *Sensor, h *policy.Hook) error {
	if err := probeLSMActive(); err != nil {
		return fmt.Errorf("%s.hook: %w: %w", h.Path, ErrMissingFeature, err)
	}
	return needFuncArgs(h, "BPF LSM programs")
}

func (lsmKind) attach(s *Sensor, ih *InstalledHook) error { return s.attachLSM(ih) }

func (lsmKind) mechanisms(fs Features) []HookMechanism {
	if !fs.Has(FeatureLSM) {
		return []HookMechanism{missing("lsmhooks", FeatureLSM)}
	}
	if !fs.Has(FeatureFuncArgs) {
		return []HookMechanism{missing("lsmhooks", FeatureFuncArgs)}
	}
	return []HookMechanism{{Hook: "lsmhooks", Mechanism: "bpf_lsm"}}
}
