package kernel

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"

	"github.com/vigilsec/vigil/internal/policy"
)

// The tracepoint and uprobe programs (bpf/probes.h) are loaded on first use:
// they need attach cookies (Linux 5.15), which the process sensor does not.
var probePrograms = []string{"vigil_tracepoint", "vigil_uprobe", "vigil_uretprobe", "vigil_usdt", "vigil_connect4", "vigil_connect6", "vigil_kprobe", "vigil_kretprobe"}

// multiPrograms are loaded only where the kernel has kprobe.multi: elsewhere
// their attach type does not load at all.
var multiPrograms = []string{"vigil_kprobe_multi", "vigil_kretprobe_multi"}

const (
	tracefsRoot = "/sys/kernel/tracing"
	tpRecordMax = 512 // TP_RECORD_MAX, bpf/probes.h
	argfKernel  = 1 << 5
	argfDataLoc = 1 << 6
)

// probeCollection loads the tracepoint and uprobe programs, sharing the
// sensor's maps. The caller holds s.hooks.mu.
func (s *Sensor) probeCollection() (*ebpf.Collection, error) {
	if s.probes != nil {
		return s.probes, nil
	}
	spec, err := loadSensor()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded BPF object: %w", err)
	}
	multi := features.HaveBPFLinkKprobeMulti() == nil
	for name := range spec.Programs {
		if !contains(probePrograms, name) && !(multi && contains(multiPrograms, name)) {
			delete(spec.Programs, name)
		}
	}
	// The replacements must match the specs: the ring buffer was sized
	// at load.
	spec.Maps["events"].MaxEntries = s.maps.Events.MaxEntries()
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: s.byName})
	if err != nil {
		return nil, fmt.Errorf("loading the tracepoint and uprobe programs (they need attach cookies, Linux 5.15): %w", describeLoadError(err))
	}
	s.probes = coll
	return coll, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// attachProbes attaches a hook that has probes of its own, as its kind
// does, with its slot as the cookie. On error nothing stays attached.
func (s *Sensor) attachProbes(ih *InstalledHook) error {
	return kindOf(ih.Hook.Kind).attach(s, ih)
}

func (ih *InstalledHook) closeLinks() {
	for _, l := range ih.links {
		l.Close()
	}
	ih.links = nil
	for _, c := range ih.colls {
		c.Close()
	}
	ih.colls = nil
}

// ErrMissingFeature wraps the refusal of a hook that this kernel cannot
// host; the error names the feature.
var ErrMissingFeature = errors.New("missing kernel feature")

// attachable refuses, before anything is written, a hook whose mechanism
// this kernel lacks, with the error its attach would give: what the
// policy needs of the kernel is reported before what it needs of the host
// (host_ns, BTF members).
func (s *Sensor) attachable(h *policy.Hook) error {
	return kindOf(h.Kind).attachable(s, h)
}
