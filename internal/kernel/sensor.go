package kernel

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Mechanism names how a sensor's programs are attached.
type Mechanism string

const (
	// MechanismTPBTF attaches BTF-typed tracepoints (tp_btf, Linux 5.5+).
	MechanismTPBTF Mechanism = "tp_btf"
	// MechanismRawTP attaches raw tracepoints (Linux 4.17+).
	MechanismRawTP Mechanism = "raw_tp"
)

type tracepointProgram struct{ tracepoint, program string }

// processHooks lists, per mechanism, the program attached to each tracepoint
// of the process sensor; they are attached at load.
var processHooks = map[Mechanism][]tracepointProgram{
	MechanismTPBTF: {
		{"sched_process_exec", "vigil_exec_btf"},
		{"sched_process_fork", "vigil_fork_btf"},
		{"sched_process_exit", "vigil_exit_btf"},
	},
	MechanismRawTP: {
		{"sched_process_exec", "vigil_exec_raw"},
		{"sched_process_fork", "vigil_fork_raw"},
		{"sched_process_exit", "vigil_exit_raw"},
	},
}

// syscallHooks lists, per mechanism, the programs that serve syscall hooks;
// they are attached while at least one syscall hook is installed.
var syscallHooks = map[Mechanism][]tracepointProgram{
	MechanismTPBTF: {
		{"sys_enter", "vigil_sys_enter_btf"},
		{"sys_exit", "vigil_sys_exit_btf"},
	},
	MechanismRawTP: {
		{"sys_enter", "vigil_sys_enter_raw"},
		{"sys_exit", "vigil_sys_exit_raw"},
	},
}

// SensorOptions configures LoadSensor.
type SensorOptions struct {
	// RingBufferSize is the size in bytes of the ring buffer shared by all
	// CPUs: a power of two and a multiple of the page size. Zero keeps the
	// size compiled into the object.
	RingBufferSize uint32
	// Mechanism forces an attach mechanism; empty picks the best one the
	// kernel offers.
	Mechanism Mechanism
	// PinPath is the bpffs directory for the maps that outlive the sensor
	// (the deny lists); empty is DefaultPinPath.
	PinPath string
	// PreferFentry attaches kprobes on kernel functions, and syscall
	// kprobes that report at entry, with fentry even where kprobes exist
	// (fentry is the fallback otherwise).
	PreferFentry bool
	// SyscallTracepoints attaches `syscall: true` kprobes to the raw
	// syscall tracepoints, dispatched by syscall number, even where the
	// kernel has kprobes (the fallback otherwise).
	SyscallTracepoints bool
}

// Sensor is Vigil's BPF object in the kernel: it watches exec, fork and exit
// of every process on the node from load on, and runs the hooks of the
// policies installed with InstallPolicy.
//
// It holds BPF programs, maps and links: Close must be called to release them.
type Sensor struct {
	hooks  *hookTable
	probes *probePrograms // bpf/probes.h, loaded on first use
	// preferFentry and syscallTracepoints: see SensorOptions.
	preferFentry       bool
	syscallTracepoints bool
	// syscalls is what syscall hooks can attach with, probed on first
	// use (syscallSupport).
	syscalls *syscallSupport
	// coll holds the process tracking programs; maps, every map of the
	// object (byName the same, by name, for the hook programs loaded
	// later, which share them).
	coll   *ebpf.Collection
	maps   sensorMaps
	byName map[string]*ebpf.Map
	// syscallTable is the spec of the tables swapped into syscall_hooks.
	syscallTable *ebpf.MapSpec
	links        []link.Link
	reader       *ringbuf.Reader
	mechanism    Mechanism
	dec          decoder
	rec          ringbuf.Record
	deadline     atomic.Int64 // unix ns; 0 waits forever

	// readerMu keeps Close from freeing the ring under Pending, which
	// the reader does not lock; readerClosed is set under it.
	readerMu     sync.RWMutex
	readerClosed bool
}

// LoadSensor loads the sensor and attaches its process tracking. Unless
// opts.Mechanism forces one, it tries tp_btf first and falls back to raw
// tracepoints.
func LoadSensor(opts SensorOptions) (*Sensor, error) {
	if err := CheckPrerequisites(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raising RLIMIT_MEMLOCK for BPF maps: %w", err)
	}
	candidates := []Mechanism{MechanismTPBTF, MechanismRawTP}
	if opts.Mechanism != "" {
		if _, ok := processHooks[opts.Mechanism]; !ok {
			return nil, fmt.Errorf("process sensor: unknown mechanism %q", opts.Mechanism)
		}
		candidates = []Mechanism{opts.Mechanism}
	}
	var errs []error
	for _, m := range candidates {
		s, err := loadSensorWith(opts, m)
		if err == nil {
			return s, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m, err))
	}
	return nil, fmt.Errorf("loading the process sensor: %w", errors.Join(errs...))
}

// forceCompat makes sensorSpec pick the compat object on any kernel: the
// tests run it on kernels that could load the other.
var forceCompat bool

// sensorSpec returns the embedded object this kernel can load. Before Linux
// 5.17 that is sensorCompat, built with VIGIL_COMPAT (bpf/common.h): the
// same programs without bpf_loop, whose global functions take no pointers.
// Only the missing helper selects it: a probe that fails for another reason
// (EPERM) leaves the choice to the load, whose error then names the cause.
func sensorSpec() (*ebpf.CollectionSpec, error) {
	load := loadSensor
	if compatObject() {
		load = loadSensorCompat
	}
	spec, err := load()
	if err != nil {
		return nil, err
	}
	if !runtimeAllocatedMaps() {
		// Every load edits the same way: the collections that share
		// the sensor's maps must match their specs.
		for _, name := range runtimeAllocated {
			m := spec.Maps[name]
			m.Flags &^= unix.BPF_F_NO_PREALLOC
			m.MaxEntries = min(m.MaxEntries, preallocMaxEntries)
		}
	}
	return spec, nil
}

// runtimeAllocated are the hash maps the programs read that are allocated
// as they fill (BPF_F_NO_PREALLOC): the InMap sets and the substring
// values, which user space writes.
var runtimeAllocated = []string{"int_set", "str_sub"}

// preallocMaxEntries bounds a preallocated runtimeAllocated map: int_set's
// 262144 entries would take some 19 MB of kernel memory preallocated.
const preallocMaxEntries = 32768

// runtimeAllocatedMaps reports whether tracing programs may use hash maps
// allocated at run time. Before Linux 6.1 (bpf_mem_alloc) the verifier
// takes them but prints a kernel warning with a stack trace (WARN_ONCE
// "trace type BPF program uses run-time allocation"), which node
// monitoring reports; there the sensor preallocates them.
var runtimeAllocatedMaps = sync.OnceValue(func() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	return releaseAtLeast(unix.ByteSliceToString(u.Release[:]), 6, 1)
})

// releaseAtLeast reports whether a kernel release ("5.10.0-46-cloud-amd64")
// is major.minor or later.
func releaseAtLeast(release string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(release, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// compatObject reports whether the sensor loads sensorCompat.
func compatObject() bool {
	return forceCompat || errors.Is(features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnLoop), ebpf.ErrNotSupported)
}

func loadSensorWith(opts SensorOptions, m Mechanism) (*Sensor, error) {
	spec, err := sensorSpec()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded BPF object: %w", err)
	}
	if opts.RingBufferSize != 0 {
		spec.Maps["events"].MaxEntries = opts.RingBufferSize
	}
	// Load only the programs of the chosen mechanism: the others may be
	// refused by this kernel, and would be dead weight if they were not.
	wanted := map[string]bool{}
	for _, h := range append(processHooks[m], syscallHooks[m]...) {
		wanted[h.program] = true
	}
	for name := range spec.Programs {
		if !wanted[name] {
			delete(spec.Programs, name)
		}
	}
	pin := opts.PinPath
	if pin == "" {
		pin = DefaultPinPath
	}
	if err := ensurePinPath(pin); err != nil {
		return nil, err
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pin}})
	if err != nil {
		return nil, describeLoadError(err)
	}
	s := &Sensor{coll: coll, byName: maps.Clone(coll.Maps), syscallTable: spec.Maps["syscall_hooks"].InnerMap.Copy(), mechanism: m, hooks: newHookTable(),
		preferFentry: opts.PreferFentry, syscallTracepoints: opts.SyscallTracepoints}
	if err := coll.Assign(&s.maps); err != nil {
		coll.Close()
		for _, m := range s.byName {
			m.Close()
		}
		return nil, fmt.Errorf("the sensor object's maps: %w", err)
	}
	if s.links, err = attachTracepoints(m, coll, processHooks[m]); err != nil {
		s.Close()
		return nil, err
	}
	if s.reader, err = ringbuf.NewReader(s.maps.Events); err != nil {
		s.Close()
		return nil, fmt.Errorf("opening the events ring buffer: %w", err)
	}
	return s, nil
}

// attachTracepoints attaches each program to its tracepoint with mechanism
// m. On error nothing stays attached.
func attachTracepoints(m Mechanism, coll *ebpf.Collection, progs []tracepointProgram) ([]link.Link, error) {
	var links []link.Link
	for _, h := range progs {
		prog := coll.Programs[h.program]
		var l link.Link
		var err error
		if m == MechanismTPBTF {
			l, err = link.AttachTracing(link.TracingOptions{Program: prog})
		} else {
			l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: h.tracepoint, Program: prog})
		}
		if err != nil {
			for _, l := range links {
				l.Close()
			}
			return nil, fmt.Errorf("attaching %s to %s: %w", m, h.tracepoint, err)
		}
		links = append(links, l)
	}
	return links, nil
}

// describeLoadError keeps the verifier's last lines, which say why a program
// was refused, instead of the whole log.
func describeLoadError(err error) error {
	var verr *ebpf.VerifierError
	if errors.As(err, &verr) {
		return fmt.Errorf("the kernel refused the program: %-5v", verr)
	}
	return err
}

// Mechanism reports how the sensor's programs are attached.
func (s *Sensor) Mechanism() Mechanism { return s.mechanism }

// pollInterval bounds how long a record can wait in the ring buffer: the
// programs do not wake the reader for each record (bpf/common.h, emit).
const pollInterval = 50 * time.Millisecond

// Read blocks until a record arrives, the deadline passes
// (os.ErrDeadlineExceeded) or the sensor is closed (ErrClosed). The result is
// an *ExecRecord, *ForkRecord, *ExitRecord or *HookRecord. Read is not safe
// for concurrent use.
func (s *Sensor) Read() (any, error) {
	for {
		poll := time.Now().Add(pollInterval)
		deadline := time.Unix(0, s.deadline.Load())
		if s.deadline.Load() != 0 && deadline.Before(poll) {
			poll = deadline
		}
		s.reader.SetDeadline(poll)
		err := s.reader.ReadInto(&s.rec)
		switch {
		case err == nil:
			return s.dec.decode(s.rec.RawSample)
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Every waiting record has been read.
			if s.deadline.Load() != 0 && !time.Now().Before(deadline) {
				return nil, err
			}
		case errors.Is(err, ringbuf.ErrClosed):
			return nil, ErrClosed
		default:
			return nil, err
		}
	}
}

// SetDeadline bounds the next Reads; the zero time waits forever. It may be
// called while a Read blocks.
func (s *Sensor) SetDeadline(t time.Time) {
	if t.IsZero() {
		s.deadline.Store(0)
		return
	}
	s.deadline.Store(t.UnixNano())
}

// Pending reports whether records are waiting in the ring buffer, which lets
// a caller flush a batch as soon as it has caught up.
// It is false once the sensor is closed, and safe to call meanwhile.
func (s *Sensor) Pending() bool {
	s.readerMu.RLock()
	defer s.readerMu.RUnlock()
	return !s.readerClosed && s.reader.AvailableBytes() > 0
}

// ErrClosed is returned by Read once the sensor is closed.
var ErrClosed = os.ErrClosed

// MapFill is how many entries one of the sensor's maps holds, of how many
// it can.
type MapFill struct {
	Entries, Capacity uint32
}

// filledMaps are the maps that fill with what happens on the node, not with
// the policies: the processes (a full map leaves new processes without
// their binary, so that matchBinaries misses them), the calls waiting for
// their return, rate limits, tracked sockets, the Count action's
// per-cgroup counters (a full map counts new cgroups as overflow), and the
// enforcement deny lists. The LRU ones evict their oldest entry when full, each a lost
// return event, a rate limit forgotten or a socket no longer tracked.
var filledMaps = []string{"procs", "pending_returns", "rate_limits", "sock_owners", "policy_counts", "deny_exec", "deny_connect", "deny_connect6"}

// MapFill returns the fill of the maps that fill with the node's activity,
// by map name. It walks each map's keys, one system call per entry.
func (s *Sensor) MapFill() (map[string]MapFill, error) {
	out := map[string]MapFill{}
	var errs []error
	for _, name := range filledMaps {
		m := s.byName[name]
		if m == nil && s.probes != nil {
			m = s.probes.coll.Maps[name]
		}
		if m == nil {
			continue
		}
		n, err := countKeys(m)
		if err != nil {
			errs = append(errs, fmt.Errorf("map %s: %w", name, err))
			continue
		}
		out[name] = MapFill{Entries: n, Capacity: m.MaxEntries()}
	}
	return out, errors.Join(errs...)
}

// countKeys counts a map's keys. A key deleted under the walk sends it back
// to the first key, so the count stops at the map's capacity.
func countKeys(m *ebpf.Map) (uint32, error) {
	key, next := make([]byte, m.KeySize()), make([]byte, m.KeySize())
	var cur any
	var n uint32
	for n < m.MaxEntries() {
		if err := m.NextKey(cur, next); errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		} else if err != nil {
			return n, err
		}
		n++
		copy(key, next)
		cur = key
	}
	return n, nil
}

// Drops returns how many records the kernel could not write because the ring
// buffer was full, summed over CPUs since the sensor was loaded.
func (s *Sensor) Drops() (uint64, error) {
	var perCPU []uint64
	if err := s.maps.Drops.Lookup(uint32(dropRingbufFull), &perCPU); err != nil {
		return 0, fmt.Errorf("reading drop counters: %w", err)
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}

// ProgramStats are the kernel's counts of one of Vigil's programs, or of
// the programs of one name (the per-hook ones), since the sensor loaded.
type ProgramStats struct {
	// Runs and RunTime are counted only while the kernel's BPF statistics
	// are on (sysctl kernel.bpf_stats_enabled, or ebpf.EnableStats), which
	// adds two clock reads to every run of every program.
	Runs    uint64
	RunTime time.Duration
	// Skipped are the runs the kernel skipped. Each may be an event never
	// reported or an action never taken. A kernel skips a kprobe program
	// on a CPU where another BPF program, or a map operation from user
	// space, is under way (bpf_prog_active: Vigil's own map updates during
	// a reload are enough on a preemptible kernel), and a trampoline or raw
	// tracepoint program over a run of itself it preempted. Linux 5.12
	// counts them; older kernels report none.
	Skipped uint64
}

func (p *ProgramStats) add(o ProgramStats) {
	p.Runs += o.Runs
	p.RunTime += o.RunTime
	p.Skipped += o.Skipped
}

// ProgramStats returns the counts of Vigil's programs by name, those of
// per-hook programs already closed included.
func (s *Sensor) ProgramStats() (map[string]ProgramStats, error) {
	out := map[string]ProgramStats{}
	var errs []error
	add := func(progs map[string]*ebpf.Program) {
		errs = append(errs, addProgramStats(out, progs))
	}
	add(s.coll.Programs)
	if t := s.hooks; t != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		for name, st := range t.statsGone {
			addStats(out, name, st)
		}
		if s.probes != nil {
			add(s.probes.coll.Programs)
			if s.probes.setColl != nil {
				add(s.probes.setColl.Programs)
			}
		}
		for _, ih := range t.byID {
			for _, c := range ih.colls {
				add(c.Programs)
			}
		}
	}
	return out, errors.Join(errs...)
}

func addStats(into map[string]ProgramStats, name string, st ProgramStats) {
	sum := into[name]
	sum.add(st)
	into[name] = sum
}

// addProgramStats adds each program's counts to into, by name.
func addProgramStats(into map[string]ProgramStats, progs map[string]*ebpf.Program) error {
	var errs []error
	for name, p := range progs {
		st, err := p.Stats()
		if err != nil {
			errs = append(errs, fmt.Errorf("program %s: %w", name, err))
			continue
		}
		addStats(into, name, ProgramStats{Runs: st.RunCount, RunTime: st.Runtime, Skipped: st.RecursionMisses})
	}
	return errors.Join(errs...)
}

// ProgramIDs returns the kernel ids of the loaded programs.
func (s *Sensor) ProgramIDs() []ebpf.ProgramID {
	var ids []ebpf.ProgramID
	for _, p := range s.coll.Programs {
		if info, err := p.Info(); err == nil {
			if id, ok := info.ID(); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// LinkIDs returns the kernel ids of the attachments.
func (s *Sensor) LinkIDs() []link.ID {
	var ids []link.ID
	for _, l := range append(slices.Clone(s.links), s.hooks.sysLinks...) {
		if info, err := l.Info(); err == nil {
			ids = append(ids, info.ID)
		}
	}
	return ids
}

// Close detaches the programs and releases every kernel object the sensor
// holds. A blocked Read returns ErrClosed.
func (s *Sensor) Close() error {
	var errs []error
	if s.reader != nil {
		s.readerMu.Lock()
		errs = append(errs, s.reader.Close())
		s.readerClosed = true
		s.readerMu.Unlock()
	}
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	s.links = nil
	if s.hooks != nil {
		for _, l := range s.hooks.sysLinks {
			errs = append(errs, l.Close())
		}
		s.hooks.sysLinks = nil
		for _, l := range s.hooks.connectLinks {
			errs = append(errs, l.Close())
		}
		s.hooks.connectLinks = nil
	}
	if s.hooks != nil {
		s.hooks.mu.Lock()
		for _, ih := range s.hooks.byID {
			ih.closeLinks()
		}
		s.hooks.mu.Unlock()
	}
	if s.probes != nil {
		s.probes.coll.Close()
		if s.probes.setColl != nil {
			s.probes.setColl.Close()
		}
	}
	if s.coll != nil {
		s.coll.Close()
		s.maps.Close()
	}
	return errors.Join(errs...)
}
