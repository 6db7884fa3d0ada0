package kernel

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"

	"github.com/vigilsec/vigil/internal/policy"
)

// probePrograms are the programs of bpf/probes.h, loaded on first use.
type probePrograms struct {
	connectPrograms
	// cookiePrograms are left nil where the kernel lacks attach cookies
	// (before 5.15): their hook kinds refuse hooks there (needCookie).
	cookiePrograms
	// multi is nil where the kernel lacks kprobe.multi: there its attach
	// type does not load at all.
	multi *kprobeMultiPrograms
	coll  *ebpf.Collection
	// set and setColl are loaded on first use (usdtSetProgram).
	set     *usdtSetPrograms
	setColl *ebpf.Collection
}

// The struct tags name the programs once, as bpf2go's generated objects
// do; the loader keeps only the programs they name.
type cookiePrograms struct {
	Tracepoint *ebpf.Program `ebpf:"vigil_tracepoint"`
	Uprobe     *ebpf.Program `ebpf:"vigil_uprobe"`
	Uretprobe  *ebpf.Program `ebpf:"vigil_uretprobe"`
	Usdt       *ebpf.Program `ebpf:"vigil_usdt"`
	Kprobe     *ebpf.Program `ebpf:"vigil_kprobe"`
	Kretprobe  *ebpf.Program `ebpf:"vigil_kretprobe"`
}

// connectPrograms find their hooks in the syscall table, by a fixed key.
type connectPrograms struct {
	Connect4 *ebpf.Program `ebpf:"vigil_connect4"`
	Connect6 *ebpf.Program `ebpf:"vigil_connect6"`
}

// usdtSetPrograms are loaded for the first USDT probe with a Set action.
type usdtSetPrograms struct {
	UsdtSet *ebpf.Program `ebpf:"vigil_usdt_set"`
}

type kprobeMultiPrograms struct {
	KprobeMulti    *ebpf.Program `ebpf:"vigil_kprobe_multi"`
	KretprobeMulti *ebpf.Program `ebpf:"vigil_kretprobe_multi"`
}

// programNames returns the program names the ebpf tags of the struct v
// points to give.
func programNames(v any) []string {
	t := reflect.TypeOf(v).Elem()
	var names []string
	for i := range t.NumField() {
		if name := t.Field(i).Tag.Get("ebpf"); name != "" {
			names = append(names, name)
		}
	}
	return names
}

const (
	tracefsRoot = "/sys/kernel/tracing"
	tpRecordMax = 512 // TP_RECORD_MAX, bpf/probes.h
)

// probeCollection loads bpf/probes.h's programs, sharing the sensor's
// maps. The caller holds s.hooks.mu.
func (s *Sensor) probeCollection() (*probePrograms, error) {
	if s.probes != nil {
		return s.probes, nil
	}
	spec, err := sensorSpec()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded BPF object: %w", err)
	}
	p := &probePrograms{}
	keep := programNames(&p.connectPrograms)
	cookies := haveCookie() == nil
	if cookies {
		keep = append(keep, programNames(&p.cookiePrograms)...)
	}
	if cookies && features.HaveBPFLinkKprobeMulti() == nil {
		p.multi = &kprobeMultiPrograms{}
		keep = append(keep, programNames(p.multi)...)
	}
	for name := range spec.Programs {
		if !slices.Contains(keep, name) {
			delete(spec.Programs, name)
		}
	}
	// The replacements must match the specs: the ring buffer was sized
	// at load.
	spec.Maps["events"].MaxEntries = s.maps.Events.MaxEntries()
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: s.byName})
	if err != nil {
		return nil, fmt.Errorf("loading the connect, kprobe, tracepoint and uprobe programs: %w", describeLoadError(err))
	}
	err = coll.Assign(&p.connectPrograms)
	if err == nil && cookies {
		err = coll.Assign(&p.cookiePrograms)
	}
	if err == nil && p.multi != nil {
		err = coll.Assign(p.multi)
	}
	if err != nil {
		coll.Close()
		return nil, fmt.Errorf("the probe programs: %w", err)
	}
	p.coll = coll
	s.probes = p
	return p, nil
}

// usdtSetProgram loads vigil_usdt_set beside the probe programs, on their
// maps, the first time a USDT probe with a Set action attaches.
func (s *Sensor) usdtSetProgram(p *probePrograms) (*ebpf.Program, error) {
	if p.set != nil {
		return p.set.UsdtSet, nil
	}
	if err := features.HaveProgramHelper(ebpf.Kprobe, asm.FnProbeWriteUser); err != nil {
		return nil, fmt.Errorf("Set writes the traced process's memory with bpf_probe_write_user, which this kernel refuses (under lockdown, see /sys/kernel/security/lockdown): %w: %w", ErrMissingFeature, err)
	}
	spec, err := sensorSpec()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded BPF object: %w", err)
	}
	set := &usdtSetPrograms{}
	keep := programNames(set)
	for name := range spec.Programs {
		if !slices.Contains(keep, name) {
			delete(spec.Programs, name)
		}
	}
	spec.Maps["events"].MaxEntries = s.maps.Events.MaxEntries()
	shared := maps.Clone(s.byName)
	maps.Copy(shared, p.coll.Maps)
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: shared})
	if err != nil {
		return nil, fmt.Errorf("loading the USDT program of Set: %w", describeLoadError(err))
	}
	if err := coll.Assign(set); err != nil {
		coll.Close()
		return nil, fmt.Errorf("the USDT program of Set: %w", err)
	}
	p.set, p.setColl = set, coll
	return set.UsdtSet, nil
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
