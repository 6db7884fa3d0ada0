package engine

import (
	"slices"
	"strconv"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/k8s"
	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/process"
	"github.com/vigilsec/vigil/internal/stack"
	"github.com/vigilsec/vigil/internal/syscalls"
	"github.com/vigilsec/vigil/internal/useraction"
)

// handle joins one kernel record with the process cache and the policies
// into the events it makes, added to batch.
func (e *Engine) handle(rec any, batch *event.Batch) {
	switch rec := rec.(type) {
	case *kernel.ExecRecord:
		p := e.cache.Exec(rec)
		// The kernel's entry learns the resolved binary, and the tree
		// flag when only the cache knew it.
		if p.Binary != rec.Filename || p.InitTree != rec.Context.InInitTree {
			e.sensor.SetBinary(p.PID, p.Binary, p.InitTree)
		}
		parent, ancestors := e.lineage(p)
		batch.Add(event.Exec{Time: e.clock.Time(rec.Ktime), Process: p, Parent: parent, Ancestors: ancestors}, p.CgroupName)
		e.stats.exec.Add(1)
		if rec.Denied {
			batch.Add(e.kernelEnforcement(rec.Ktime, p, "deny_exec", "deny_exec", "SIGKILL", event.ReasonDenyList), p.CgroupName)
		}
	case *kernel.ForkRecord:
		e.cache.Fork(rec)
	case *kernel.ExitRecord:
		p := e.cache.Exit(rec)
		if p == nil {
			// Evicted from a cache too small for the node: report
			// what the record itself says.
			p = &process.Process{PID: rec.PID, TID: rec.TID, StartTime: rec.StartTime,
				ExecID: process.ExecID(e.cache.Node(), rec.StartTime, rec.PID)}
		}
		parent, ancestors := e.lineage(p)
		batch.Add(event.Exit{Time: e.clock.Time(rec.Ktime), Process: p, Parent: parent, Ancestors: ancestors, Status: rec.Status}, p.CgroupName)
		e.stats.exit.Add(1)
	case *kernel.ConnectDeniedRecord:
		p := e.cache.Running(rec.PID)
		if p == nil {
			// Not known to the cache (it was full): what the record says.
			p = &process.Process{PID: rec.PID, TID: rec.TID}
		}
		enf := e.kernelEnforcement(rec.Ktime, p, "deny_connect", "deny_connect", "", event.ReasonDenyList)
		enf.Destination = rec.Destination.String()
		batch.Add(enf, p.CgroupName)
	case *kernel.HookRecord:
		ev := &e.hook
		if e.hookEvent(rec, ev) {
			batch.Add(ev, ev.Process.CgroupName)
			e.stats.hooks.count(ev.Name, ev.Policy, ev.Process.Binary)
			if enf, ok := e.hookEnforcement(rec, *ev); ok {
				batch.Add(enf, ev.Process.CgroupName)
			}
		}
	}
}

// hookEvent joins a policy hook's record with its policy and process into
// ev, whose Args it reuses.
func (e *Engine) hookEvent(rec *kernel.HookRecord, ev *event.Hook) bool {
	ih, ok := e.sensor.Hook(rec.HookID)
	if !ok {
		e.stats.undecodable.Add(1)
		e.logger.Warn("event of an unknown policy hook", zap.Uint32("hook_id", rec.HookID))
		return false
	}
	p := e.cache.Running(rec.PID)
	if p == nil {
		p = &process.Process{PID: rec.PID, TID: rec.TID, ExecID: process.ExecID(e.cache.Node(), 0, rec.PID)}
	}
	parent, ancestors := e.lineage(p)
	h := ih.Hook
	call := h.Target()
	switch {
	case h.Kind == policy.HookSyscall || h.Kind == policy.HookConnect:
		// The one syscall of the hook's list that was called.
		call = e.syscallCall(rec.Call)
	case h.Kind == policy.HookKprobe && int(rec.Call) < len(h.Calls):
		// The one function of the hook's list that ran.
		call = h.Calls[rec.Call]
	}
	*ev = event.Hook{
		Time: e.clock.Time(rec.Ktime), Process: p, Parent: parent, Ancestors: ancestors,
		Name: event.HookEventName(h.Kind), Policy: ih.Program.Policy.Metadata.Name, Call: call,
		Actions: actions(hookAction(rec, h)), Message: h.Message, Tags: h.Tags, Rule: ih.Program.Rule,
		Args: ev.Args[:0], Return: rec.Return, Ret: rec.Ret,
	}
	if h.ReturnType == "sock" {
		// The returned sock is an argument of the event; its address
		// says nothing and is kept out of it.
		ev.Return, ev.Ret = false, 0
	}
	if int(rec.Selector) < len(h.Selectors) {
		if sel := &h.Selectors[rec.Selector]; len(sel.URLs)+len(sel.Names) > 0 {
			ev.Actions = e.request(sel, ev.Actions)
		}
	}
	for i, a := range rec.Args {
		if i >= len(h.Args) {
			break
		}
		spec := h.Args[i]
		if spec.Type == "nop" {
			continue
		}
		index := uint32(spec.Index)
		if spec.AtReturn {
			index = 0 // the returnArg's index
		}
		arg := event.HookArg{
			Index: index, Type: spec.Type, Label: spec.Label,
			Int: a.Int, Str: a.Str, IsString: spec.Kind != policy.ArgInt && spec.Kind != policy.ArgCaps,
			Truncated: a.Truncated, Source: spec.Source.String(),
		}
		switch {
		case spec.Kind == policy.ArgCaps:
			// The mask, and its capabilities by name as tetra shows them.
			arg.Names = policy.CapabilityNames(uint64(a.Int))
		case spec.Type == "capability":
			arg.Names = []string{policy.CapabilityName(int(a.Int))}
		case spec.Type == "bpf_cmd":
			arg.Names = []string{kernel.EnumName("bpf_cmd", uint32(a.Int))}
		}
		ev.Args = append(ev.Args, arg)
	}
	ev.ImaHash = rec.ImaHash
	if len(rec.KernelStack) > 0 {
		ev.KernelStack = e.kstack.Frames(rec.KernelStack)
	}
	if len(rec.UserStack) > 0 {
		ev.UserStack = e.ustack.Frames(rec.PID, p.ExecID, rec.UserStack)
	}
	if !e.opts.ExposeStackAddresses {
		hideAddresses(ev.KernelStack, ev.UserStack)
	}
	if h.Loader {
		// Executable memory of no file (a JIT's) is no loader event.
		path := ev.FilePath()
		if path == "" {
			return false
		}
		ev.Name, ev.BuildID = event.NameProcessLoader, e.buildIDs.of(path)
	}
	return true
}

// request starts the selector's GetUrl and DnsLookup requests, and returns
// the event's actions with theirs added.
func (e *Engine) request(sel *policy.Selector, kernelActions []string) []string {
	acts := slices.Clone(kernelActions)
	for _, u := range sel.URLs {
		e.requests.Submit(useraction.GetURL, u)
	}
	for _, n := range sel.Names {
		e.requests.Submit(useraction.DNSLookup, n)
	}
	if len(sel.URLs) > 0 {
		acts = append(acts, useraction.GetURL)
	}
	if len(sel.Names) > 0 {
		acts = append(acts, useraction.DNSLookup)
	}
	return acts
}

// syscallCall is how an event names a hooked syscall: "sys_" and its name.
func (e *Engine) syscallCall(nr uint32) string {
	call, ok := e.sysCalls[nr]
	if !ok {
		if e.sysCalls == nil {
			e.sysCalls = make(map[uint32]string)
		}
		call = "sys_" + syscalls.Name(nr)
		e.sysCalls[nr] = call
	}
	return call
}

// hideAddresses clears the address of every kernel frame (one alone
// undoes KASLR) and of the user frames in a file; a user frame in no file
// keeps its address, the only thing known of it.
func hideAddresses(kernel, user []stack.Frame) {
	for i := range kernel {
		kernel[i].Address = 0
	}
	for i := range user {
		if user[i].Module != "" {
			user[i].Address = 0
		}
	}
}

// hookEnforcement is the audit record of what a policy selector did in the
// kernel: a signal sent (Sigkill, Signal) or a connect refused (Override on
// a connect hook). Selectors that only report have none.
func (e *Engine) hookEnforcement(rec *kernel.HookRecord, ev event.Hook) (event.Enforcement, bool) {
	var h *policy.Hook
	if ih, ok := e.sensor.Hook(rec.HookID); ok {
		h = ih.Hook
	}
	action := hookAction(rec, h)
	var signal string
	switch action {
	case "Sigkill", "Signal":
		signal = unix.SignalName(syscall.Signal(rec.Signal))
		if signal == "" {
			signal = strconv.FormatUint(uint64(rec.Signal), 10)
		}
	case "Override":
	default:
		return event.Enforcement{}, false
	}
	enf := e.kernelEnforcement(rec.Ktime, ev.Process, ev.Policy, action, signal, event.ReasonPolicySelector)
	for _, a := range ev.Args {
		if dst, ok := a.Destination(); ok {
			enf.Destination = dst.String()
			break
		}
	}
	return enf, true
}

// kernelEnforcement is an enforcement.action record for an action the
// kernel took on p.
func (e *Engine) kernelEnforcement(ktime uint64, p *process.Process, rule, action, signal, reason string) event.Enforcement {
	return event.Enforcement{
		Time: e.clock.Time(ktime), Source: event.SourceKernel, Rule: rule,
		Action: action, Signal: signal, Mode: "enforce", Result: event.ResultTaken, Reason: reason,
		PID: int64(p.PID), ExecID: p.ExecID, Binary: p.Binary, CgroupID: p.CgroupID,
		ContainerID: k8s.ContainerIDFromCgroup(p.CgroupName), TriggerExecID: p.ExecID,
	}
}

// hookAction is what the kernel did at a hook, as Tetragon names the
// action: the signal the record says it sent, else Override where the
// selector that matched refuses the call (an LSM or fmod_ret return, a
// connect refused), else Post.
func hookAction(rec *kernel.HookRecord, h *policy.Hook) string {
	if rec.Signal == 0 && h != nil && int(rec.Selector) < len(h.Selectors) && !rec.Return {
		if sel := h.Selectors[rec.Selector]; sel.Deny || sel.Override {
			return "Override"
		}
	}
	return actionName(rec.Signal)
}

// The actions of a hook event, one slice each: events share them, read-only.
var (
	actionsPost     = []string{"Post"}
	actionsSigkill  = []string{"Sigkill"}
	actionsSignal   = []string{"Signal"}
	actionsOverride = []string{"Override"}
)

// actions is what the kernel did (hookAction), as an event's Actions.
func actions(action string) []string {
	switch action {
	case "Post":
		return actionsPost
	case "Sigkill":
		return actionsSigkill
	case "Override":
		return actionsOverride
	default:
		return actionsSignal
	}
}

// actionName is what the kernel did, as Tetragon names the action.
func actionName(signal uint32) string {
	switch signal {
	case 0:
		return "Post"
	case uint32(syscall.SIGKILL):
		return "Sigkill"
	default:
		return "Signal"
	}
}

func (e *Engine) lineage(p *process.Process) (*process.Process, []*process.Process) {
	if p.ParentExecID == "" {
		return nil, nil
	}
	// The buffer is reused: the events of the read loop are done with
	// their ancestors before the next lookup.
	e.ancestors = e.cache.AppendAncestors(e.ancestors[:0], p, 1+e.opts.Ancestors)
	all := e.ancestors
	if len(all) == 0 {
		return nil, nil
	}
	return all[0], all[1:]
}
