package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/policy"
)

// Values of the kernel's enums (bpf/hook_types.h).
const (
	argInt       = 1
	argString    = 2
	argFD        = 3
	argCharBuf   = 4
	argSockaddr  = 5
	argFile      = 6
	argPath      = 7
	argSock      = 8
	argSocket    = 9
	argSkb       = 10
	argBinprm    = 11
	argCred      = 12
	argCaps      = 13
	argKiocb     = 14
	argIovIter   = 15
	argBpfAttr   = 16
	argPerfEvent = 17
	argBpfMap    = 18

	argfSigned     = 1 << 0
	argfReturnCopy = 1 << 4

	ffUnsigned   = 1 << 0
	ffString     = 1 << 1
	ffFieldShift = 2 // enum sock_field
	ffBloom      = 1 << 5

	argRet = 0xff

	saTrack   = 1 // enum sock_action_op
	saUntrack = 2
)

var kernelArgKinds = map[policy.ArgKind]uint8{
	policy.ArgInt: argInt, policy.ArgString: argString,
	policy.ArgFD: argFD, policy.ArgCharBuf: argCharBuf,
	policy.ArgSockaddr: argSockaddr,
	policy.ArgFile:     argFile, policy.ArgPath: argPath,
	policy.ArgSock: argSock, policy.ArgSocket: argSocket, policy.ArgSkb: argSkb,
	policy.ArgBinprm: argBinprm, policy.ArgCred: argCred, policy.ArgCaps: argCaps,
	policy.ArgKiocb: argKiocb, policy.ArgIovIter: argIovIter,
	policy.ArgBpfAttr: argBpfAttr, policy.ArgPerfEvent: argPerfEvent, policy.ArgBpfMap: argBpfMap,
}

// Fields of a sock argument (enum sock_field, bpf/hook_types.h).
const (
	sfDaddr = 1 + iota
	sfDport
	sfSaddr
	sfSport
	sfProtocol
	sfFamily
	sfState
)

// sockFilters are the sock operators: the field each compares, and whether
// it is a Not form (the field in none of the values).
var sockFilters = map[policy.Op]struct {
	field uint8
	not   bool
}{
	policy.OpSockSAddr: {sfSaddr, false}, policy.OpSockNotSAddr: {sfSaddr, true},
	policy.OpSockDAddr: {sfDaddr, false}, policy.OpSockNotDAddr: {sfDaddr, true},
	policy.OpSockSPort: {sfSport, false}, policy.OpSockNotSPort: {sfSport, true},
	policy.OpSockDPort: {sfDport, false}, policy.OpSockNotDPort: {sfDport, true},
	policy.OpSockProtocol: {sfProtocol, false},
	policy.OpSockFamily:   {sfFamily, false},
	policy.OpSockState:    {sfState, false},
}

// Namespace types (enum ns_type) and capability sets (enum cap_set) of
// bpf/hook_types.h, and each namespace's file under /proc/PID/ns/.
var (
	kernelNamespaces = map[policy.Namespace]struct {
		typ  uint8
		proc string
	}{
		policy.NamespaceUts:             {1, "uts"},
		policy.NamespaceIpc:             {2, "ipc"},
		policy.NamespaceMnt:             {3, "mnt"},
		policy.NamespacePid:             {4, "pid"},
		policy.NamespacePidForChildren:  {5, "pid_for_children"},
		policy.NamespaceNet:             {6, "net"},
		policy.NamespaceTime:            {7, "time"},
		policy.NamespaceTimeForChildren: {8, "time_for_children"},
		policy.NamespaceCgroup:          {9, "cgroup"},
		policy.NamespaceUser:            {10, "user"},
	}
	kernelCapSets = map[policy.CapabilitySet]uint8{
		policy.CapEffective: 1, policy.CapInheritable: 2, policy.CapPermitted: 3,
	}
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

// InstallPolicy puts a compiled policy into the kernel. With old set, it
// replaces that policy without a gap: the new hooks are complete in the
// kernel before each syscall's entry switches to them in one map update,
// or before their probes attach, and the old hooks are removed after. On
// error the old policy keeps running untouched.
func (s *Sensor) InstallPolicy(prog *policy.Program, old *PolicyHooks) (*PolicyHooks, error) {
	return s.InstallScopedPolicy(prog, old, nil)
}

// InstallScopedPolicy installs a pod-scoped policy (prog.PodScoped) as
// InstallPolicy does, applying to the given cgroups from its first
// instant. A new version of a pod-scoped policy keeps the cgroups of the
// version it replaces, and cgroups is then added to them; see
// SetPolicyCgroups to change them after.
func (s *Sensor) InstallScopedPolicy(prog *policy.Program, old *PolicyHooks, cgroups []uint64) (*PolicyHooks, error) {
	t := s.hooks
	t.mu.Lock()
	defer t.mu.Unlock()
	s.reclaimLocked(time.Now())

	p, err := s.plan(prog, old)
	if err != nil {
		return nil, err
	}
	// Until the switch nothing points to the new slots: on error, undo
	// detaches the new probes and deletes the new sets.
	for _, step := range []func(*installPlan) error{
		func(p *installPlan) error { return s.writeTables(p, cgroups) },
		s.attachPlan,
		s.switchTo,
	} {
		if err := step(p); err != nil {
			s.undo(p)
			return nil, err
		}
	}
	s.retire(old, p.ph)
	return p.ph, nil
}

// installPlan is a policy version on its way into the kernel: its hooks in
// the slots they will take, and the syscall table once it runs.
type installPlan struct {
	prog *policy.Program
	old  *PolicyHooks
	ph   *PolicyHooks
	// want maps each syscall (and connect4Key) to its slots once the
	// new version runs and the old one no longer does.
	want map[uint32][]uint32
	// host are the host's namespaces, for matchNamespaces host_ns.
	host map[policy.Namespace]uint32
}

// plan checks that the kernel can host the policy and has room for it,
// and places its hooks, before anything is written. s.hooks.mu is held.
func (s *Sensor) plan(prog *policy.Program, old *PolicyHooks) (*installPlan, error) {
	t := s.hooks
	for i := range prog.Hooks {
		if err := s.attachable(&prog.Hooks[i]); err != nil {
			return nil, err
		}
	}
	host, err := t.hostNamespaces(prog)
	if err != nil {
		return nil, err
	}
	oldSlots := map[uint32]bool{}
	if old != nil {
		for _, h := range old.Hooks {
			oldSlots[h.slot] = true
		}
	}
	want := map[uint32][]uint32{} // syscall -> slots after the change
	for nr, slots := range t.bySyscall {
		for _, sl := range slots {
			if !oldSlots[sl] {
				want[nr] = append(want[nr], sl)
			}
		}
	}
	if len(prog.Hooks) > len(t.freeSlots) {
		return nil, fmt.Errorf("%d hooks: %w (%d slots free)", len(prog.Hooks), ErrNoSlots, len(t.freeSlots))
	}
	p := &installPlan{prog: prog, old: old, ph: &PolicyHooks{}, want: want, host: host}
	for i := range prog.Hooks {
		h := &prog.Hooks[i]
		ih := &InstalledHook{Program: prog, Hook: h, slot: t.freeSlots[len(t.freeSlots)-1-i]}
		p.ph.Hooks = append(p.ph.Hooks, ih)
		if err := s.planDispatch(ih, want); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// planDispatch places a hook that runs through syscall_hooks (a connect
// hook, a syscall hook on the raw syscall tracepoints) in want, and picks
// a syscall hook's mechanism. Hooks with probes of their own attach later.
func (s *Sensor) planDispatch(ih *InstalledHook, want map[uint32][]uint32) error {
	h := ih.Hook
	if ownProbes(h.Kind) {
		return nil
	}
	if h.Kind == policy.HookConnect {
		ih.Mechanism = "cgroup connect"
		ih.nrs = []uint32{connect4Key}
		want[connect4Key] = append(want[connect4Key], ih.slot)
		if len(want[connect4Key]) > limitHooksPerSyscall {
			return fmt.Errorf("%s.call: connect would have %d hooks, at most %d across all policies", h.Path, len(want[connect4Key]), limitHooksPerSyscall)
		}
		return nil
	}
	if h.Kind != policy.HookSyscall {
		return fmt.Errorf("%s: %s hooks cannot be attached by this version of Vigil", h.Path, h.Kind)
	}
	for _, name := range h.Calls {
		nr, ok := syscallNumbers[name]
		if (!ok || nr >= limitMaxSyscalls) && !h.IgnoreNotFound {
			return fmt.Errorf("%s.call: %q is not a syscall of this architecture", h.Path, name)
		}
	}
	ih.Mechanism = syscallMechanism(s.syscallSupport(), s.preferFentry, h.Return)
	if hasOverride(h) {
		// attachable checked that fmod_ret loads here.
		ih.Mechanism = SyscallFmodRet
	}
	if ih.Mechanism != SyscallTracepoints {
		// On the wrapper functions: attached with the probes.
		syms, err := syscallSymbols(h)
		if err != nil {
			return err
		}
		ih.symbols = syms
		return nil
	}
	for _, name := range h.Calls {
		nr, ok := syscallNumbers[name]
		if !ok || nr >= limitMaxSyscalls || slices.Contains(ih.nrs, nr) {
			continue // ignored (ignore.callNotFound), or listed twice
		}
		ih.nrs = append(ih.nrs, nr)
		want[nr] = append(want[nr], ih.slot)
		if len(want[nr]) > limitHooksPerSyscall {
			return fmt.Errorf("%s.call: %q would have %d hooks, at most %d across all policies", h.Path, name, len(want[nr]), limitHooksPerSyscall)
		}
	}
	if len(ih.nrs) == 0 {
		ih.Mechanism = MechanismNotFound
	}
	return nil
}

// writeTables writes the plan's pod scope and its hooks' table entries,
// sets and counters into slots nothing runs yet.
func (s *Sensor) writeTables(p *installPlan, cgroups []uint64) error {
	t := s.hooks
	ph, old := p.ph, p.old
	if p.prog.PodScoped {
		// A new version keeps the old one's cgroups: the pods it applies
		// to did not change with the policy text, and an empty set would
		// open a gap until the caller refills it.
		if old != nil && old.scope != nil {
			ph.scope = old.scope
		} else {
			t.nextSet++
			ph.scope = &cgroupSet{id: t.nextSet, members: map[uint64]bool{}}
		}
		if err := s.addCgroups(ph.scope, cgroups); err != nil {
			return err
		}
	}
	for _, ih := range ph.Hooks {
		t.nextID++
		ih.ID = t.nextID
		conf, err := t.conf(&s.maps, ih, ph, p.host)
		if err == nil {
			// A slot's counters start over with each hook it holds.
			err = s.maps.HookStats.Put(ih.slot, make([]sensorHookCounters, ebpf.MustPossibleCPU()))
		}
		if err == nil {
			err = t.writeSockActions(s.maps.SockActions, ih)
		}
		if err == nil {
			err = s.maps.Hooks.Put(ih.slot, conf)
		}
		if err != nil {
			return fmt.Errorf("%s: writing the hook table: %w", ih.Hook.Path, err)
		}
	}
	return nil
}

// attachPlan attaches the plan's probes and the shared programs its
// dispatched hooks need. Probes fire as soon as they attach: their tables
// are complete now. With an old version still attached, both report for an
// instant; neither is ever missing.
func (s *Sensor) attachPlan(p *installPlan) error {
	for _, ih := range p.ph.Hooks {
		if ih.probed() {
			if err := s.attachProbes(ih); err != nil {
				return err
			}
		}
	}
	if hasSyscalls(p.want) {
		needExit := false
		for _, ih := range p.ph.Hooks {
			needExit = needExit || (len(ih.nrs) > 0 && ih.Hook.Kind == policy.HookSyscall && ih.Hook.Return)
		}
		if err := s.attachSyscallHooks(needExit); err != nil {
			return err
		}
	}
	if len(p.want[connect4Key]) > 0 {
		if err := s.attachConnectHook(); err != nil {
			return err
		}
	}
	return nil
}

// switchTo makes the dispatched hooks run: one swap of the whole syscall
// table. The slots are the new version's from here.
func (s *Sensor) switchTo(p *installPlan) error {
	t := s.hooks
	if !maps.EqualFunc(p.want, t.bySyscall, slices.Equal) {
		if err := s.publishSyscalls(p.want); err != nil {
			return fmt.Errorf("switching the syscall table to the new hooks: %w", err)
		}
		t.bySyscall = p.want
	}
	t.freeSlots = t.freeSlots[:len(t.freeSlots)-len(p.ph.Hooks)]
	for _, ih := range p.ph.Hooks {
		t.byID[ih.ID] = ih
	}
	return nil
}

// undo removes what a plan put in the kernel before its switch.
func (s *Sensor) undo(p *installPlan) {
	for _, ih := range p.ph.Hooks {
		ih.closeLinks()
		s.deleteUsdtSites(ih)
	}
	for _, sk := range p.ph.sets {
		sk.m.Delete(sk.key)
	}
	if p.ph.scope != nil && p.ph.scope != p.old.scopeOrNil() {
		s.clearCgroupSet(p.ph.scope)
	}
}

// retire takes the version ph replaced out of the kernel, once no hit can
// still be on its way to it.
func (s *Sensor) retire(old, ph *PolicyHooks) {
	if old == nil {
		return
	}
	if old.scope == ph.scope {
		old.scope = nil // handed over, not to be emptied with old
	}
	if old.probed() {
		// A hit that reached a probed function before the new programs
		// were attached has passed them by, and may not have reached the
		// old ones yet: each probe has its own program list (single
		// kprobes, kprobe.multi). Let every hit under way end before the
		// old programs go.
		waitForProbeHits()
	}
	s.retireLocked(old)
}

// probed reports whether any of the policy's hooks is attached by probes of
// its own.
func (ph *PolicyHooks) probed() bool {
	for _, ih := range ph.Hooks {
		if len(ih.links) > 0 {
			return true
		}
	}
	return false
}

// waitForProbeHits returns once every probe hit under way on any CPU has
// ended. Probe programs run with preemption off, so an RCU grace period,
// which membarrier(MEMBARRIER_CMD_GLOBAL) waits for, outlasts them.
func waitForProbeHits() {
	const membarrierCmdGlobal = 1
	if _, _, errno := unix.Syscall(unix.SYS_MEMBARRIER, membarrierCmdGlobal, 0, 0); errno != 0 {
		// Refused on nohz_full kernels: wait far longer than a hit lasts.
		time.Sleep(10 * time.Millisecond)
	}
}

// probed reports whether the hook is attached by probes of its own, which
// fire as soon as they attach, rather than through syscall_hooks.
func (ih *InstalledHook) probed() bool {
	return ownProbes(ih.Hook.Kind) || (ih.Hook.Kind == policy.HookSyscall && ih.Mechanism != SyscallTracepoints)
}

// ownProbes reports whether hooks of kind k always attach probes of their
// own: they have no entry in syscall_hooks.
func ownProbes(k policy.HookKind) bool { return kindOf(k).ownProbes() }

// publishSyscalls makes table (syscall number or connect4Key -> slots) the
// kernel's syscall table in one step: it fills a new table and swaps it into
// syscall_hooks. A program that was reading the old one finishes with it;
// the kernel frees it after them.
func (s *Sensor) publishSyscalls(table map[uint32][]uint32) error {
	inner, err := ebpf.NewMap(s.syscallTable)
	if err != nil {
		return fmt.Errorf("creating a syscall table: %w", err)
	}
	defer inner.Close() // syscall_hooks holds its own reference
	for key, slots := range table {
		if len(slots) == 0 {
			continue
		}
		var e sensorSyscallEntry
		e.N = uint32(len(slots))
		copy(e.Slot[:], slots)
		if err := inner.Put(key, &e); err != nil {
			return fmt.Errorf("syscall table entry %d: %w", key, err)
		}
	}
	if err := s.maps.SyscallHooks.Put(uint32(0), inner); err != nil {
		return fmt.Errorf("swapping in the syscall table: %w", err)
	}
	return nil
}

// RemovePolicy takes a policy's hooks out of the kernel.
func (s *Sensor) RemovePolicy(ph *PolicyHooks) error {
	t := s.hooks
	t.mu.Lock()
	defer t.mu.Unlock()
	s.reclaimLocked(time.Now())
	var errs []error
	want := maps.Clone(t.bySyscall)
	for _, ih := range ph.Hooks {
		for _, nr := range ih.nrs {
			want[nr] = slices.DeleteFunc(slices.Clone(want[nr]), func(sl uint32) bool { return sl == ih.slot })
			if len(want[nr]) == 0 {
				delete(want, nr)
			}
		}
	}
	if !maps.EqualFunc(want, t.bySyscall, slices.Equal) {
		if err := s.publishSyscalls(want); err != nil {
			errs = append(errs, fmt.Errorf("detaching the policy's syscalls: %w", err))
		} else {
			t.bySyscall = want
		}
	}
	s.retireLocked(ph)
	if !hasSyscalls(t.bySyscall) {
		// No syscall hook left: stop paying for the tracepoints.
		for _, l := range t.sysLinks {
			l.Close()
		}
		t.sysLinks = nil
	}
	return errors.Join(errs...)
}

// retireLocked detaches a policy's probes and queues its hooks, which no
// syscall entry points to any more, for reclaiming.
func (s *Sensor) retireLocked(ph *PolicyHooks) {
	for _, ih := range ph.Hooks {
		for _, c := range ih.colls {
			addProgramStats(s.hooks.statsGone, c.Programs)
		}
		ih.closeLinks()
		s.deleteUsdtSites(ih)
	}
	s.hooks.retired = append(s.hooks.retired, retired{ph: ph, at: time.Now()})
}

// reclaimLocked frees the slots and sets of hooks retired long enough ago,
// and forgets their ids later still.
func (s *Sensor) reclaimLocked(now time.Time) {
	t := s.hooks
	kept := t.retired[:0]
	for _, r := range t.retired {
		if !r.freed && now.Sub(r.at) >= reuseAfter {
			for _, sk := range r.ph.sets {
				sk.m.Delete(sk.key)
			}
			if r.ph.scope != nil {
				s.clearCgroupSet(r.ph.scope)
			}
			// Freed slots go to the front: they are reused last.
			for _, ih := range r.ph.Hooks {
				t.freeSlots = append([]uint32{ih.slot}, t.freeSlots...)
			}
			r.freed = true
		}
		if now.Sub(r.at) >= forgetAfter {
			for _, ih := range r.ph.Hooks {
				delete(t.byID, ih.ID)
			}
			continue
		}
		kept = append(kept, r)
	}
	t.retired = kept
}

// attachSyscallHooks attaches sys_enter, and sys_exit when a hook reports at
// return: sys_exit runs on every syscall of the node, so it is attached
// only once a policy needs it.
func (s *Sensor) attachSyscallHooks(needExit bool) error {
	t := s.hooks
	progs := syscallHooks[s.mechanism]
	if t.sysLinks == nil {
		links, err := attachTracepoints(s.mechanism, s.coll, progs[:1])
		if err != nil {
			return fmt.Errorf("attaching the syscall hooks: %w", err)
		}
		t.sysLinks = links
	}
	if needExit && len(t.sysLinks) == 1 {
		links, err := attachTracepoints(s.mechanism, s.coll, progs[1:])
		if err != nil {
			return fmt.Errorf("attaching the syscall return hooks: %w", err)
		}
		t.sysLinks = append(t.sysLinks, links...)
	}
	return nil
}

// hostNamespaces reads the host's namespaces that prog's selectors name
// (host_ns, and the user namespace of isNamespaceCapability): those of the
// node's init process, as Tetragon does, in the proc filesystem SetProcFS
// names, else those of pid 2, kthreadd, whose kernel threads run in the
// initial namespaces too (where an init is confined, its namespace files
// can be closed to everyone); the user namespace is Vigil's own. It
// refuses, naming the field, a namespace type this kernel lacks.
func (t *hookTable) hostNamespaces(prog *policy.Program) (map[policy.Namespace]uint32, error) {
	host := map[policy.Namespace]uint32{}
	resolve := func(ns policy.Namespace) error {
		if _, ok := host[ns]; ok {
			return nil
		}
		p := filepath.Join(t.procfs, "1", "ns", kernelNamespaces[ns].proc)
		if ns == policy.NamespaceUser {
			// Loading BPF takes capabilities in the initial user
			// namespace: Vigil's own is the host's, and reading it
			// needs no access to pid 1.
			p = "/proc/self/ns/user"
		}
		var st unix.Stat_t
		err := unix.Stat(p, &st)
		if err != nil && ns != policy.NamespaceUser {
			err = unix.Stat(filepath.Join(t.procfs, "2", "ns", kernelNamespaces[ns].proc), &st)
		}
		if err != nil {
			return fmt.Errorf("reading the host's %s namespace: %w", ns, err)
		}
		host[ns] = uint32(st.Ino)
		return nil
	}
	for _, h := range prog.Hooks {
		for i, sel := range h.Selectors {
			sp := fmt.Sprintf("%s.selectors[%d]", h.Path, i)
			for j, m := range sel.Namespaces {
				mp := fmt.Sprintf("%s.matchNamespaces[%d]", sp, j)
				if _, ok := kernelNamespaces[m.Namespace]; !ok {
					return nil, fmt.Errorf("%s.namespace: %v is not a namespace type of this version of Vigil", mp, m.Namespace)
				}
				if (m.Namespace == policy.NamespaceTime || m.Namespace == policy.NamespaceTimeForChildren) && !haveTimeNamespaces() {
					return nil, fmt.Errorf("%s.namespace: %v: this kernel has no time namespaces (Linux 5.6)", mp, m.Namespace)
				}
				if m.HostNS {
					if err := resolve(m.Namespace); err != nil {
						return nil, fmt.Errorf("%s.values: host_ns: %w", mp, err)
					}
				}
			}
			if c := sel.Capabilities; c != nil && c.NamespaceCapability {
				if err := resolve(policy.NamespaceUser); err != nil {
					return nil, fmt.Errorf("%s.matchCapabilities[0].isNamespaceCapability: %w", sp, err)
				}
			}
		}
	}
	return host, nil
}

// haveTimeNamespaces reports whether the kernel's struct nsproxy has time
// namespaces (Linux 5.6); without BTF, the programs do not load anyway.
func haveTimeNamespaces() bool {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return false
	}
	var nsp *btf.Struct
	if err := spec.TypeByName("nsproxy", &nsp); err != nil {
		return false
	}
	for _, m := range nsp.Members {
		if m.Name == "time_ns" {
			return true
		}
	}
	return false
}

// conf builds the kernel's hook_conf for one hook and writes the string
// sets its selectors use. host holds the host's namespaces its selectors
// need (hostNamespaces).
func (t *hookTable) conf(maps *sensorMaps, ih *InstalledHook, ph *PolicyHooks, host map[policy.Namespace]uint32) (_ *sensorHookConf, err error) {
	h := ih.Hook
	c := &sensorHookConf{Id: ih.ID, Nargs: uint8(len(h.Args)), Nsel: uint8(len(h.Selectors))}
	defer func() {
		if h.Kind == policy.HookTracepoint && err == nil {
			err = tracepointArgs(c, h)
		}
	}()
	if h.Return {
		c.Ret = 1
	}
	if h.ReturnUnsigned {
		c.RetUnsigned = 1
	}
	if h.Kind == policy.HookSyscall && ih.Mechanism != SyscallTracepoints {
		c.SyscallWrapper = 1
	}
	for i, a := range h.Args {
		ca := &c.Args[i]
		ca.Type = kernelArgKinds[a.Kind]
		ca.Index = a.Index
		ca.SizeIndex = a.SizeIndex
		if a.Signed {
			ca.Flags |= argfSigned
		}
		if a.Kind == policy.ArgInt {
			ca.Flags |= uint8(bits.TrailingZeros8(a.Size)) << 1
		}
		if a.Kind == policy.ArgSockaddr || a.Kind.IsSock() || a.Kind == policy.ArgCaps {
			ca.Flags |= 3 << 1 // a pointer; a kernel_cap_t mask
		}
		if a.Kind == policy.ArgSockaddr && h.Kind == policy.HookConnect {
			// The cgroup connect hooks rebuild the sockaddr in a
			// map (connect_addr, bpf/probes.h).
			ca.Flags |= argfKernel
		}
		if a.ReturnCopy {
			ca.Flags |= argfReturnCopy
		}
		if a.Kernel {
			ca.Flags |= argfKernel
		}
		if len(a.Resolve) > 0 {
			r, err := resolveHookArg(h, a)
			if err != nil {
				return nil, fmt.Errorf("%s.args[%d].resolve: %q: %w", h.Path, i, strings.Join(a.Resolve, "."), err)
			}
			ca.Nres = uint8(copy(ca.Res[:], r.ops))
			ca.ResLoad = r.load
		}
	}
	for i, sel := range h.Selectors {
		cs := &c.Sel[i]
		if sel.Post {
			cs.Post = 1
		}
		if sel.Count {
			cs.Count = 1
		}
		if sel.Deny {
			cs.Deny = 1
		}
		if sel.Override {
			cs.Override = sel.OverrideErr
		}
		if ph.scope != nil {
			cs.CgroupSet = ph.scope.id
		}
		if sel.KernelStack {
			cs.Stack |= stackKernel
		}
		if sel.UserStack {
			cs.Stack |= stackUser
		}
		cs.Signal = sel.Signal
		cs.RateNs = uint64(sel.RateLimit)
		cs.RateScope = uint8(sel.RateScope)
		if sel.PIDs != nil {
			cs.PidOp = uint8(sel.PIDs.Op)
			cs.Npids = uint8(len(sel.PIDs.Values))
			copy(cs.Pids[:], sel.PIDs.Values)
			if sel.PIDs.FollowForks {
				cs.PidFollow = 1
			}
			if sel.PIDs.NamespacePID {
				cs.PidNs = 1
			}
		}
		if c := sel.Capabilities; c != nil {
			cs.Caps.Op = uint8(c.Op)
			cs.Caps.Set = kernelCapSets[c.Set]
			cs.Caps.Mask = c.Mask
			if c.NamespaceCapability {
				cs.Caps.Userns = host[policy.NamespaceUser]
			}
		}
		if len(sel.Namespaces) > len(cs.Ns) {
			return nil, fmt.Errorf("%d matchNamespaces, at most %d", len(sel.Namespaces), len(cs.Ns))
		}
		cs.Nns = uint8(len(sel.Namespaces))
		for j, m := range sel.Namespaces {
			kn := &cs.Ns[j]
			kn.Ns = kernelNamespaces[m.Namespace].typ
			kn.Op = uint8(m.Op)
			vals := m.Values
			if m.HostNS {
				vals = append(slices.Clone(vals), host[m.Namespace])
			}
			if len(vals) > len(kn.Vals) {
				return nil, fmt.Errorf("matchNamespaces[%d]: %d values, at most %d", j, len(vals), len(kn.Vals))
			}
			kn.Nvals = uint8(copy(kn.Vals[:], vals))
		}
		if sel.Binaries != nil {
			set, err := t.writeSet(maps, ph, sel.Binaries.Op.Set(), sel.Binaries.Values)
			if err != nil {
				return nil, err
			}
			cs.BinOp = uint8(sel.Binaries.Op)
			cs.BinSet = set
			if sel.Binaries.FollowChildren {
				cs.BinFollow = 1
			}
		}
		cs.Nfilters = uint8(len(sel.Filters))
		for j, f := range sel.Filters {
			if err := t.filter(maps, ph, &cs.F[j].Arg, &cs.F[j].Op, &cs.F[j].Nvals, &cs.F[j].Flags, &cs.F[j].Set, cs.F[j].Vals[:], f); err != nil {
				return nil, err
			}
		}
		cs.Nret = uint8(len(sel.RetFilters))
		for j, f := range sel.RetFilters {
			if err := t.filter(maps, ph, &cs.R[j].Arg, &cs.R[j].Op, &cs.R[j].Nvals, &cs.R[j].Flags, &cs.R[j].Set, cs.R[j].Vals[:], f); err != nil {
				return nil, err
			}
		}
	}
	if a, bloom, ok := prefilter(h); ok {
		c.PreArg, c.PreBloom = a+1, bloom
	}
	return c, nil
}

func (t *hookTable) filter(maps *sensorMaps, ph *PolicyHooks, arg, op, nvals, flags *uint8, set *uint32, vals []int64, f policy.Filter) error {
	*arg = f.Arg
	if f.Arg == policy.ReturnArg {
		*arg = argRet
	}
	*op = uint8(f.Op)
	if f.Unsigned {
		*flags |= ffUnsigned
	}
	if sf, ok := sockFilters[f.Op]; ok {
		*flags |= ffUnsigned | sf.field<<ffFieldShift
		return t.sockFilter(maps, ph, op, nvals, set, vals, f, sf.not)
	}
	if f.Op == policy.OpInMap || f.Op == policy.OpNotInMap {
		ints := f.Ints
		for _, name := range f.Strings {
			nr, ok := syscallNumbers[name]
			if !ok {
				return fmt.Errorf("InMap: no syscall %q on this architecture", name)
			}
			ints = append(ints, int64(nr))
		}
		id, err := t.writeIntSet(maps, ph, ints)
		*set = id
		return err
	}
	if f.String {
		*flags |= ffString
		id, err := t.writeSet(maps, ph, f.Op.Set(), f.Strings)
		if err != nil {
			return err
		}
		*set = id
		if f.Op.Set() == policy.SetEqual {
			*flags |= ffBloom
			addBloom(vals, f.Strings)
		}
		return nil
	}
	*nvals = uint8(copy(vals, f.Ints))
	return nil
}

// sockFilter writes a filter on a field of a sock argument: addresses as a
// CIDR set; other fields as equalities when the policy listed single
// values, else as ranges, two slots each.
func (t *hookTable) sockFilter(maps *sensorMaps, ph *PolicyHooks, op, nvals *uint8, set *uint32, vals []int64, f policy.Filter, not bool) error {
	pick := func(yes, no policy.Op) uint8 {
		if not {
			return uint8(no)
		}
		return uint8(yes)
	}
	if policy.SockAddrOp(f.Op) {
		*op = pick(policy.OpAddr, policy.OpNotAddr)
		id, err := t.writeSet(maps, ph, policy.SetAddr, f.Strings)
		*set = id
		return err
	}
	singles := true
	for i := 0; i+1 < len(f.Ints); i += 2 {
		singles = singles && f.Ints[i] == f.Ints[i+1]
	}
	if singles && len(f.Ints)/2 <= len(vals) {
		*op = pick(policy.OpEqual, policy.OpNotEqual)
		for i := 0; i+1 < len(f.Ints); i += 2 {
			vals[*nvals] = f.Ints[i]
			*nvals++
		}
		return nil
	}
	if len(f.Ints) > len(vals) {
		return fmt.Errorf("%d ranges, at most %d", len(f.Ints)/2, len(vals)/2)
	}
	*op = pick(policy.OpInRange, policy.OpNotInRange)
	*nvals = uint8(copy(vals, f.Ints))
	return nil
}

// writeSet stores string values under a new set id in the map the operator
// looks them up in: exact values in a str_eq map, prefixes in str_prefix,
// suffixes, reversed, in str_postfix, and CIDRs in addr_lpm (IPv4) and
// addr6_lpm (IPv6) under the one id.
func (t *hookTable) writeSet(maps *sensorMaps, ph *PolicyHooks, kind policy.StringSet, values []string) (uint32, error) {
	t.nextSet++
	set := t.nextSet
	for i, v := range values {
		var m *ebpf.Map
		var key, value any = nil, uint8(1)
		switch kind {
		case policy.SetEqual:
			m, key = strEqKey(maps, set, v)
		case policy.SetPrefix:
			k := sensorStrLpmKey{Prefixlen: uint32(32 + 8*len(v)), Set: set}
			putString(k.S[:], v)
			m, key = maps.StrPrefix, k
		case policy.SetPostfix:
			k := sensorStrLpmKey{Prefixlen: uint32(32 + 8*len(v)), Set: set}
			putString(k.S[:], reverse(v))
			m, key = maps.StrPostfix, k
		case policy.SetSubstring:
			k := sensorSubstrKey{Set: set, Idx: uint32(i)}
			val := sensorSubstrValue{Len: uint32(len(v))}
			putString(val.S[:], v)
			m, key, value = maps.StrSub, k, val
		case policy.SetAddr:
			p, err := policy.ParseCIDR(v)
			if err != nil {
				return 0, err
			}
			if p.Addr().Is4() {
				a := p.Addr().As4()
				m, key = maps.AddrLpm, sensorAddrLpmKey{Prefixlen: uint32(32 + p.Bits()), Set: set,
					Addr: binary.NativeEndian.Uint32(a[:])}
				break
			}
			m, key = maps.Addr6Lpm, sensorAddr6LpmKey{Prefixlen: uint32(32 + p.Bits()), Set: set,
				Addr: p.Addr().As16()}
		default:
			return 0, fmt.Errorf("string set %d: no kernel map", kind)
		}
		if err := m.Put(key, value); err != nil {
			return 0, fmt.Errorf("storing %q in %s: %w", v, m, err)
		}
		ph.sets = append(ph.sets, setKey{m, key})
	}
	return set, nil
}

func addBloom(bloom []int64, values []string) {
	for _, v := range values {
		bit := stringBloomBit(v)
		bloom[bit/64] |= int64(uint64(1) << (bit % 64))
	}
}

// prefilter finds an argument every selector of h wants in an exact
// string set, and the union of those sets' Bloom filters: what
// hook_conf.pre_arg and pre_bloom hold. Of several, the one whose union
// rules out the most. ok is false when there is none, or no selector.
func prefilter(h *policy.Hook) (arg uint8, bloom [8]int64, ok bool) {
	best := -1
	for a := range h.Args {
		var b [8]int64
		every := len(h.Selectors) > 0
		for _, sel := range h.Selectors {
			found := false
			for _, f := range sel.Filters {
				if f.Arg == uint8(a) && f.String && (f.Op == policy.OpEqual || f.Op == policy.OpIn) {
					addBloom(b[:], f.Strings)
					found = true
				}
			}
			every = every && found
		}
		if !every {
			continue
		}
		n := 0
		for _, w := range b {
			n += bits.OnesCount64(uint64(w))
		}
		if best < 0 || n < best {
			best, arg, bloom, ok = n, uint8(a), b, true
		}
	}
	return arg, bloom, ok
}

// stringBloomBit is the bit a string sets in an exact-match filter's Bloom
// filter; bpf/hook_match.h (string_bloom) computes it the same way from the
// kernel's copy, which holds at most policy.MaxStringLen bytes.
func stringBloomBit(v string) uint {
	var b [8]byte
	copy(b[:], v[max(len(v)-8, 0):])
	h := (binary.LittleEndian.Uint64(b[:]) ^ uint64(len(v))*0x9E3779B97F4A7C15) * 0xff51afd7ed558ccd
	return uint(h >> 55)
}

// strEqKey is the key of an exact value and the map it goes in: the
// smallest of bpf/hook_maps.h's four whose string part holds it. The string is
// zero padded, and its length is part of the key.
func strEqKey(maps *sensorMaps, set uint32, v string) (*ebpf.Map, []byte) {
	m, n := maps.StrEq, 256
	switch {
	case len(v) <= 32:
		m, n = maps.StrEq32, 32
	case len(v) <= 64:
		m, n = maps.StrEq64, 64
	case len(v) <= 128:
		m, n = maps.StrEq128, 128
	}
	key := make([]byte, 8+n)
	binary.NativeEndian.PutUint32(key, set)
	binary.NativeEndian.PutUint32(key[4:], uint32(len(v)))
	copy(key[8:], v)
	return m, key
}

// writeSockActions writes the TrackSock and UntrackSock of a hook's
// selectors to sock_actions, and clears what the slot's previous hook left.
// A slot that has none and had none is not written: a map update from user
// space holds off the tracing programs of its CPU (bpf_prog_active), and a
// policy replaced often should not add to that.
func (t *hookTable) writeSockActions(m *ebpf.Map, ih *InstalledHook) error {
	has := false
	for _, sel := range ih.Hook.Selectors {
		has = has || sel.Sock != nil
	}
	if !has && !t.sockSlots[ih.slot] {
		return nil
	}
	if t.sockSlots == nil {
		t.sockSlots = map[uint32]bool{}
	}
	t.sockSlots[ih.slot] = has
	for i := range limitMaxSelectors {
		var a sensorSockAction
		if i < len(ih.Hook.Selectors) {
			if sa := ih.Hook.Selectors[i].Sock; sa != nil {
				a.Op, a.Arg = saTrack, sa.Arg
				if sa.Untrack {
					a.Op = saUntrack
				}
			}
		}
		if err := m.Put(ih.slot*limitMaxSelectors+uint32(i), a); err != nil {
			return fmt.Errorf("writing sock_actions: %w", err)
		}
	}
	return nil
}

// writeIntSet stores the integers of an InMap or NotInMap filter under a
// new set id in int_set.
func (t *hookTable) writeIntSet(maps *sensorMaps, ph *PolicyHooks, values []int64) (uint32, error) {
	t.nextSet++
	set := t.nextSet
	m := maps.IntSet
	one := uint8(1)
	for _, v := range values {
		k := sensorIntSetKey{Set: set, Val: v}
		if err := m.Put(k, one); err != nil {
			return 0, fmt.Errorf("storing %d in %s (every policy's InMap values share it): %w", v, m, err)
		}
		ph.sets = append(ph.sets, setKey{m, k})
	}
	return set, nil
}

func putString(dst []int8, s string) {
	for i := 0; i < len(s) && i < len(dst); i++ {
		dst[i] = int8(s[i])
	}
}

func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
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

var syscallNames = func() map[uint32]string {
	m := make(map[uint32]string, len(syscallNumbers))
	for name, nr := range syscallNumbers {
		m[nr] = name
	}
	return m
}()

// SyscallName names a syscall number of this architecture.
func SyscallName(nr uint32) string { return syscallNames[nr] }

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

// connect4Key is the syscall table's key of connect hooks (CONNECT4_KEY,
// bpf/syscalls.h): they share the table, not the syscall tracepoints.
const connect4Key = limitMaxSyscalls

func hasSyscalls[V any](m map[uint32]V) bool {
	for nr := range m {
		if nr < limitMaxSyscalls {
			return true
		}
	}
	return false
}

// attachConnectHook attaches the connect hooks, IPv4 and IPv6, to the root
// of the cgroup v2 hierarchy, so that they see every connect on the node.
func (s *Sensor) attachConnectHook() error {
	t := s.hooks
	if t.connectLinks != nil {
		return nil
	}
	coll, err := s.probeCollection()
	if err != nil {
		return err
	}
	root, err := Cgroup2Mount()
	if err != nil {
		return fmt.Errorf("attaching the connect hook: %w", err)
	}
	var links []link.Link
	for _, c := range []struct {
		attach ebpf.AttachType
		prog   string
	}{
		{ebpf.AttachCGroupInet4Connect, "vigil_connect4"},
		{ebpf.AttachCGroupInet6Connect, "vigil_connect6"},
	} {
		l, err := link.AttachCgroup(link.CgroupOptions{Path: root, Attach: c.attach, Program: coll.Programs[c.prog]})
		if err != nil {
			for _, l := range links {
				l.Close()
			}
			return fmt.Errorf("attaching %s to cgroup %s: %w", c.prog, root, err)
		}
		links = append(links, l)
	}
	t.connectLinks = links
	return nil
}

// EnableConnectDeny attaches the connect hook so that the connect deny list
// applies even when no policy hooks connect.
func (s *Sensor) EnableConnectDeny() error {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	return s.attachConnectHook()
}
