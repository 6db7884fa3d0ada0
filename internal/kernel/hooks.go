package kernel

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/vigilsec/vigil/internal/policy"
)

// ErrNoSlots is returned when the kernel tables cannot hold more hooks.
var ErrNoSlots = errors.New("the kernel hook table is full")

// InstalledHook is one hook of a policy as it runs in the kernel.
type InstalledHook struct {
	// ID is carried by every event of the hook.
	ID      uint32
	Program *policy.Program
	Hook    *policy.Hook
	slot    uint32
	nrs     []uint32           // syscall hooks on the raw tracepoints
	symbols []string           // syscall hooks on their wrapper functions
	links   []link.Link        // tracepoints, kprobes and uprobes
	colls   []*ebpf.Collection // trampoline programs loaded for this hook
	sites   []uint32           // USDT hooks: their usdt_sites entries
	// Mechanism is how the hook is attached ("kprobe.multi", "kprobe",
	// "fentry", "tracepoint", "uprobe", "cgroup connect"; for syscall
	// hooks SyscallKprobeMulti, SyscallKprobe, SyscallFentry or
	// SyscallTracepoints); MechanismNotFound for a kprobe left out by
	// its ignore.callNotFound.
	Mechanism string
}

// PolicyHooks is what one policy installed in the kernel; it is the handle
// to replace or remove it.
type PolicyHooks struct {
	Hooks []*InstalledHook
	sets  []setKey
	// scope is the policy's cgroup set when it is pod-scoped, shared by
	// its successive versions; nil for a policy of the whole node.
	scope *cgroupSet
}

type setKey struct {
	m   *ebpf.Map
	key any
}

// Hooks taken out of the kernel tables are retired, not freed at once: a
// program that read the old syscall entry just before the switch may still
// be evaluating the old slot and its string sets, and records of the old
// hooks may still wait in the ring buffer.
const (
	// reuseAfter is far longer than any program runs.
	reuseAfter = time.Second
	// forgetAfter bounds how late a record of a replaced hook can be read
	// and still be attributed to its policy.
	forgetAfter = time.Minute
)

type retired struct {
	ph    *PolicyHooks
	at    time.Time
	freed bool
}

// hookTable is the user-space view of the kernel's hook tables.
type hookTable struct {
	mu           sync.Mutex
	nextID       uint32
	nextSet      uint32
	freeSlots    []uint32            // used from the end
	bySyscall    map[uint32][]uint32 // syscall -> slots, as in syscall_hooks
	byID         map[uint32]*InstalledHook
	retired      []retired
	sysLinks     []link.Link
	connectLinks []link.Link // connect4, connect6
	// procfs is where the host's proc filesystem is mounted, for host_ns
	// (see SetProcFS).
	procfs string
	// sockSlots are the slots whose sock_actions entries are set.
	sockSlots map[uint32]bool
	// nextSite numbers usdt_sites entries.
	nextSite uint32
	// statsGone keeps the counts (see ProgramStats) of the per-hook
	// programs closed since.
	statsGone map[string]ProgramStats
}

func newHookTable() *hookTable {
	t := &hookTable{bySyscall: map[uint32][]uint32{}, byID: map[uint32]*InstalledHook{}, procfs: "/proc", statsGone: map[string]ProgramStats{}}
	for s := limitMaxHooks - 1; s >= 0; s-- {
		t.freeSlots = append(t.freeSlots, uint32(s))
	}
	return t
}

// SetProcFS sets where the host's proc filesystem is mounted (/proc unless
// set; /procRoot in the DaemonSet). Policies installed after read the
// host's namespaces for host_ns in matchNamespaces there, as those of pid
// 1 (/proc/1/ns/*).
func (s *Sensor) SetProcFS(dir string) {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	s.hooks.procfs = dir
}

// Hook returns the installed hook an event's id names.
func (s *Sensor) Hook(id uint32) (*InstalledHook, bool) {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	h, ok := s.hooks.byID[id]
	return h, ok
}

// HookCounters are the kernel's counters of one hook.
type HookCounters struct {
	Hits, Matched, Posted, RateLimited, Signaled uint64
}

// Add adds o's counts to c's.
func (c *HookCounters) Add(o HookCounters) {
	c.Hits += o.Hits
	c.Matched += o.Matched
	c.Posted += o.Posted
	c.RateLimited += o.RateLimited
	c.Signaled += o.Signaled
}

// Counters sums a hook's per-CPU counters.
func (s *Sensor) Counters(ih *InstalledHook) (HookCounters, error) {
	var perCPU []sensorHookCounters
	if err := s.maps.HookStats.Lookup(ih.slot, &perCPU); err != nil {
		return HookCounters{}, fmt.Errorf("reading hook counters: %w", err)
	}
	var c HookCounters
	for _, v := range perCPU {
		c.Hits += v.N[0]
		c.Matched += v.N[1]
		c.Posted += v.N[2]
		c.RateLimited += v.N[3]
		c.Signaled += v.N[4]
	}
	return c, nil
}

// SetBinary records the binary a process runs, for matchBinaries, where
// the kernel could not: processes that started before the sensor, and execs
// of relative paths, which user space makes absolute. inInitTree keeps the
// process, and the children it forks, in its container's init tree.
func (s *Sensor) SetBinary(pid uint32, binary string, inInitTree bool) error {
	var info sensorProcInfo
	n := min(len(binary), len(info.Bin)-1)
	info.BinLen = uint32(n)
	if inInitTree {
		// Children inherit it at fork (bpf/process.h).
		info.Flags = uint32(sensorProcFlagsPROC_IN_INIT_TREE)
	}
	putString(info.Bin[:n], binary)
	if err := s.maps.Procs.Put(pid, &info); err != nil {
		return fmt.Errorf("recording the binary of pid %d: %w", pid, err)
	}
	return nil
}

// SetExecEnvironment makes every exec record carry the first ENV_MAX
// bytes (bpf/process.h) of the new program's environment, or none (the
// default).
func (s *Sensor) SetExecEnvironment(on bool) error {
	var set sensorExecSettings
	if on {
		set.EnvMax = uint32(sensorExecLimitsENV_MAX)
	}
	if err := s.maps.ExecConfig.Put(uint32(0), &set); err != nil {
		return fmt.Errorf("exec environment: %w", err)
	}
	return nil
}
