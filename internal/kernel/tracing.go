package kernel

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// loadTrampoline loads a copy of a trampoline program (BPF LSM, fmod_ret)
// for one hook: such programs are bound to their function at load, and
// their copy of tramp_slot names the hook.
func (s *Sensor) loadTrampoline(ih *InstalledHook, program, attachTo string) (*ebpf.Program, error) {
	return s.loadTrampolineCall(ih, program, attachTo, 0)
}

// loadTrampolineCall is loadTrampoline for the function of index call of
// the hook's (its events name that one).
func (s *Sensor) loadTrampolineCall(ih *InstalledHook, program, attachTo string, call int) (*ebpf.Program, error) {
	spec, err := sensorSpec()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded BPF object: %w", err)
	}
	for name := range spec.Programs {
		if name != program {
			delete(spec.Programs, name)
		}
	}
	spec.Programs[program].AttachTo = attachTo
	if err := spec.Variables["tramp_slot"].Set(ih.slot); err != nil {
		return nil, err
	}
	if err := spec.Variables["tramp_call"].Set(uint32(call)); err != nil {
		return nil, err
	}
	spec.Maps["events"].MaxEntries = s.maps.Events.MaxEntries()
	// Share every map but the constants, which are this copy's own.
	repl := map[string]*ebpf.Map{}
	for name, m := range s.byName {
		if !strings.HasPrefix(name, ".") {
			repl[name] = m
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: repl})
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("%s: the kernel refuses %s programs (EPERM): %w", ih.Hook.Path, program, ErrMissingFeature)
		}
		return nil, fmt.Errorf("%s: loading %s for %s: %w", ih.Hook.Path, program, attachTo, describeLoadError(err))
	}
	ih.colls = append(ih.colls, coll)
	return coll.Programs[program], nil
}

// attachFentry attaches a kprobe hook as fentry on fn, one of its
// functions. On error nothing of the hook stays attached.
func (s *Sensor) attachFentry(ih *InstalledHook, fn string) error {
	h := ih.Hook
	prog, err := s.loadTrampoline(ih, "vigil_fentry", fn)
	if err != nil {
		ih.closeLinks()
		return err
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		ih.closeLinks()
		if errors.Is(err, ebpf.ErrNotSupported) {
			// Loaded but not attachable: no BPF trampoline (arm64 6.1).
			return fmt.Errorf("%s.call: attaching fentry to %s: %w: %w", h.Path, fn, ErrMissingFeature, err)
		}
		return fmt.Errorf("%s.call: attaching fentry to %s: %w", h.Path, fn, err)
	}
	ih.links = append(ih.links, l)
	return nil
}

// attachFentries attaches a hook of spec.fentries: a copy of vigil_fentry
// (vigil_fexit for a hook that reports at return) on each of its
// functions. On error nothing of the hook stays attached.
func (s *Sensor) attachFentries(ih *InstalledHook) error {
	h := ih.Hook
	program, kind := "vigil_fentry", "fentry"
	if h.Return {
		program, kind = "vigil_fexit", "fexit"
	}
	for i, fn := range h.Calls {
		prog, err := s.loadTrampolineCall(ih, program, fn, i)
		if err != nil {
			ih.closeLinks()
			return err
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: prog})
		if err != nil {
			ih.closeLinks()
			return fmt.Errorf("%s.call: attaching %s to %s: %w", h.Path, kind, fn, err)
		}
		ih.links = append(ih.links, l)
	}
	ih.Mechanism = kind
	return nil
}

// attachFmodRet attaches program (vigil_fmod_ret: an Override hook;
// vigil_enforcer: an enforcer) to fn as fmod_ret: the program's non-zero
// return replaces the function's.
func (s *Sensor) attachFmodRet(ih *InstalledHook, program, fn string) error {
	h := ih.Hook
	prog, err := s.loadTrampoline(ih, program, fn)
	if err != nil {
		return err
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		ih.closeLinks()
		return fmt.Errorf("%s.call: attaching fmod_ret to %s: %w", h.Path, fn, err)
	}
	ih.links = append(ih.links, l)
	return nil
}
