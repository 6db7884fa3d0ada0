package kernel

// Installing, replacing and removing a policy's hooks: the steps that put
// a compiled policy into the kernel without a gap, and the shared programs
// dispatched hooks need.
import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/syscalls"
	"golang.org/x/sys/unix"
)

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
		h := &prog.Hooks[i]
		if err := s.attachable(h); err != nil {
			return nil, err
		}
		if h.CallPattern != "" && h.Calls == nil {
			// A generated_ftrace list: this kernel's functions.
			fns, err := ftraceFunctions(h.CallPattern)
			if err != nil {
				return nil, fmt.Errorf("%s.call: %s: %w", h.Path, h.List, err)
			}
			if len(fns) == 0 {
				return nil, fmt.Errorf("%s.call: %s: no function of this kernel matches %q", h.Path, h.List, h.CallPattern)
			}
			if len(fns) > policy.MaxListValues {
				return nil, fmt.Errorf("%s.call: %s: %d functions of this kernel match %q, at most %d (MaxListValues)", h.Path, h.List, len(fns), h.CallPattern, policy.MaxListValues)
			}
			h.Calls = fns
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
		nr, ok := syscalls.Number(name)
		if (!ok || nr >= limitMaxSyscalls) && !h.IgnoreNotFound {
			return fmt.Errorf("%s.call: %q is not a syscall of this architecture", h.Path, name)
		}
	}
	ih.Mechanism = syscallMechanism(s.syscallSupport(), s.preferFentry || h.Fentry, h.Return)
	if hasOverride(h) || h.Enforcer {
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
		nr, ok := syscalls.Number(name)
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
	progs, err := s.probeCollection()
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
		prog   *ebpf.Program
	}{
		{ebpf.AttachCGroupInet4Connect, progs.Connect4},
		{ebpf.AttachCGroupInet6Connect, progs.Connect6},
	} {
		l, err := link.AttachCgroup(link.CgroupOptions{Path: root, Attach: c.attach, Program: c.prog})
		if err != nil {
			for _, l := range links {
				l.Close()
			}
			return fmt.Errorf("attaching %s to cgroup %s: %w", c.attach, root, err)
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
