package kernel

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/vigilsec/vigil/internal/policy"
)

// hookKind is how one kind of policy hook (policy.HookKind) reaches the
// kernel, one per file as cilium/ebpf's link package has one per attach
// type: what it needs of the kernel, how it attaches, and how `vigil probe`
// names its mechanism. The selector table, the argument readers and the
// events are the same for every kind (bpf/hook_*.h).
type hookKind interface {
	// mechanisms says how hooks of the kind attach on a kernel with fs,
	// or why they cannot: `vigil probe`'s rows.
	mechanisms(fs Features) []HookMechanism
	// attachable refuses, before anything is written, a hook whose
	// mechanism this kernel lacks, naming the feature (ErrMissingFeature).
	attachable(s *Sensor, h *policy.Hook) error
	// ownProbes reports whether every hook of the kind attaches programs
	// of its own; the others are dispatched through syscall_hooks, some
	// of them always (connect), some on some kernels (syscalls).
	ownProbes() bool
	// attach attaches a hook whose table entry is written, sets its
	// Mechanism, and on error leaves nothing of it attached. The caller
	// holds s.hooks.mu.
	attach(s *Sensor, ih *InstalledHook) error
}

// hookKinds are the kinds Vigil attaches, in the order `vigil probe` lists
// them.
var hookKinds = []struct {
	kind policy.HookKind
	hookKind
}{
	{policy.HookSyscall, syscallKind{}},
	{policy.HookKprobe, kprobeKind{}},
	{policy.HookTracepoint, tracepointKind{}},
	{policy.HookRawTracepoint, rawTracepointKind{}},
	{policy.HookUprobe, uprobeKind{}},
	{policy.HookUsdt, usdtKind{}},
	{policy.HookConnect, connectKind{}},
	{policy.HookLSM, lsmKind{}},
}

// kindOf returns the hookKind of k; a kind the policy package knows and
// this table does not is refused by every method.
func kindOf(k policy.HookKind) hookKind {
	for _, hk := range hookKinds {
		if hk.kind == k {
			return hk.hookKind
		}
	}
	return unknownKind{k}
}

type unknownKind struct{ kind policy.HookKind }

func (u unknownKind) mechanisms(Features) []HookMechanism { return nil }
func (u unknownKind) ownProbes() bool                     { return false }
func (u unknownKind) attachable(_ *Sensor, h *policy.Hook) error {
	return fmt.Errorf("%s: %s hooks cannot be attached by this version of Vigil", h.Path, u.kind)
}
func (u unknownKind) attach(_ *Sensor, ih *InstalledHook) error { return u.attachable(nil, ih.Hook) }

// HookMechanism is how a kind of policy hook would attach on a kernel with
// these features, or why it cannot.
type HookMechanism struct {
	Hook      string
	Mechanism string
	Err       error
}

// Mechanisms reports the mechanism each hook kind gets, following the
// preference order of DESIGN.md, limited to what this version implements:
// the process sensor's, then each kind's (hookKinds).
func (fs Features) Mechanisms() []HookMechanism {
	out := []HookMechanism{{Hook: "process exec/fork/exit", Mechanism: fs.tracepointMechanism() + " sched_process_exec/fork/exit"}}
	if !fs.Has(FeatureBPFLoop) {
		// sensorSpec's choice, which only that helper decides.
		out[0].Mechanism += " (compat object: no bpf_loop)"
		out = append(out, HookMechanism{Hook: "substring operators", Err: fmt.Errorf("need %s, which this kernel lacks", FeatureBPFLoop)})
	}
	for _, hk := range hookKinds {
		out = append(out, hk.mechanisms(fs)...)
	}
	return out
}

// tracepointMechanism is how the sensor attaches its tracepoint programs
// (the process sensor's, the raw syscall tracepoints).
func (fs Features) tracepointMechanism() string {
	if fs.Has(FeatureTPBTF) {
		return "tp_btf"
	}
	return "raw_tp"
}

// needCookie refuses a hook whose programs find it by their link's
// cookie (kprobes, uprobes, USDTs, tracepoints) where the kernel has no
// bpf_get_attach_cookie (before 5.15).
func needCookie(h *policy.Hook, what string) error {
	if err := haveCookie(); err != nil {
		return fmt.Errorf("%s: %s find their hook by the link's attach cookie (bpf_get_attach_cookie, Linux 5.15): %w: %w", h.Path, what, ErrMissingFeature, err)
	}
	return nil
}

func haveCookie() error { return features.HaveProgramHelper(ebpf.Kprobe, asm.FnGetAttachCookie) }

// needFuncArgs refuses a hook served by trampoline programs (fentry,
// fmod_ret, LSM), which read their function's arguments with
// bpf_get_func_arg, where the kernel lacks it (before 5.17).
func needFuncArgs(h *policy.Hook, what string) error {
	if err := probeFuncArgs(); err != nil {
		return fmt.Errorf("%s: %s read their arguments with bpf_get_func_arg (Linux 5.17): %w: %w", h.Path, what, ErrMissingFeature, err)
	}
	return nil
}

// missing is the row of a kind whose mechanism needs a feature the kernel
// lacks.
func missing(hook, feature string) HookMechanism {
	return HookMechanism{Hook: hook, Err: fmt.Errorf("needs %s, which this kernel lacks", feature)}
}
