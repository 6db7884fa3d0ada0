package kernel

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf/link"
	"github.com/vigilsec/vigil/internal/policy"
)

// attachRawTracepoint attaches a raw tracepoint hook: a copy of vigil_raw_tp
// of its own, since raw tracepoints take attach cookies only from Linux
// 6.10.
func (s *Sensor) attachRawTracepoint(ih *InstalledHook) error {
	h := ih.Hook
	_, event, _ := strings.Cut(h.Calls[0], "/")
	prog, err := s.loadTrampoline(ih, "vigil_raw_tp", "")
	if err != nil {
		return err
	}
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: event, Program: prog})
	if err != nil {
		ih.closeLinks()
		return fmt.Errorf("%s.event: attaching to raw tracepoint %s: %w", h.Path, event, err)
	}
	ih.links = append(ih.links, l)
	ih.Mechanism = "raw_tp"
	return nil
}

// rawTracepointKind attaches tracepoints with raw: true.
type rawTracepointKind struct{}

func (rawTracepointKind) ownProbes() bool                        { return true }
func (rawTracepointKind) attachable(*Sensor, *policy.Hook) error { return nil }
func (rawTracepointKind) attach(s *Sensor, ih *InstalledHook) error {
	return s.attachRawTracepoint(ih)
}

func (rawTracepointKind) mechanisms(Features) []HookMechanism {
	return []HookMechanism{{Hook: "tracepoints (raw: true)", Mechanism: "raw_tp"}}
}
