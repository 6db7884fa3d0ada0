package policy

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// selectorPolicy is a syscall kprobe on openat with one selector.
func selectorPolicy(sel SelectorSpec) *TracingPolicy {
	return &TracingPolicy{
		APIVersion: APIVersion, Kind: KindTracingPolicy,
		Metadata: ObjectMeta{Name: "selectors"},
		Spec: Spec{KProbes: []KProbeSpec{{
			Call: "sys_openat", Syscall: true,
			Args:      []ArgSpec{{Index: 1, Type: "string"}},
			Selectors: []SelectorSpec{sel},
		}}},
	}
}

// compileErrors compiles p and returns its refusals as "path: reason".
func compileErrors(t *testing.T, p *TracingPolicy) []string {
	t.Helper()
	_, err := Compile(p)
	if err == nil {
		return nil
	}
	var out []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *CompileError
		if !errors.As(e, &ce) {
			t.Fatalf("refusal %v is not a *CompileError", e)
		}
		out = append(out, ce.Error())
	}
	return out
}

func TestCompileMatchCapabilities(t *testing.T) {
	for _, tt := range []struct {
		spec CapabilitySelector
		want CapabilityMatch
	}{
		{CapabilitySelector{Operator: "In", Values: []string{"CAP_SYS_ADMIN"}},
			CapabilityMatch{Set: CapEffective, Op: OpIn, Mask: 1 << 21}},
		{CapabilitySelector{Type: "Effective", Operator: "NotIn", Values: []string{"CAP_CHOWN", "cap_bpf", "CAP_CHECKPOINT_RESTORE"}},
			CapabilityMatch{Set: CapEffective, Op: OpNotIn, Mask: 1<<0 | 1<<39 | 1<<40}},
		{CapabilitySelector{Type: "Inheritable", Operator: "In", Values: []string{"CAP_NET_RAW"}},
			CapabilityMatch{Set: CapInheritable, Op: OpIn, Mask: 1 << 13}},
		{CapabilitySelector{Type: "Permitted", Operator: "In", IsNamespaceCapability: true, Values: []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN"}},
			CapabilityMatch{Set: CapPermitted, Op: OpIn, Mask: 1<<21 | 1<<12, NamespaceCapability: true}},
	} {
		prog, err := Compile(selectorPolicy(SelectorSpec{MatchCapabilities: []CapabilitySelector{tt.spec}}))
		if err != nil {
			t.Errorf("%+v: %v", tt.spec, err)
			continue
		}
		if got := prog.Hooks[0].Selectors[0].Capabilities; got == nil || *got != tt.want {
			t.Errorf("%+v compiled to %+v, want %+v", tt.spec, got, tt.want)
		}
	}
}

func TestCompileMatchNamespaces(t *testing.T) {
	prog, err := Compile(selectorPolicy(SelectorSpec{MatchNamespaces: []NamespaceSelector{
		{Namespace: "Uts", Operator: "NotIn", Values: []string{"host_ns"}},
		{Namespace: "Net", Operator: "In", Values: []string{"4026531840", "host_ns", "4026532000"}},
		{Namespace: "pidforchildren", Operator: "In", Values: []string{"1"}},
		{Namespace: "TimeForChildren", Operator: "NotIn", Values: []string{"4026531834"}},
	}}))
	if err != nil {
		t.Fatal(err)
	}
	want := []NamespaceMatch{
		{Namespace: NamespaceUts, Op: OpNotIn, HostNS: true},
		{Namespace: NamespaceNet, Op: OpIn, Values: []uint32{4026531840, 4026532000}, HostNS: true},
		{Namespace: NamespacePidForChildren, Op: OpIn, Values: []uint32{1}},
		{Namespace: NamespaceTimeForChildren, Op: OpNotIn, Values: []uint32{4026531834}},
	}
	if got := prog.Hooks[0].Selectors[0].Namespaces; !reflect.DeepEqual(got, want) {
		t.Errorf("compiled to %+v, want %+v", got, want)
	}
	for name, ns := range namespaceTypes {
		if ns.String() != name {
			t.Errorf("%s.String() = %q", name, ns.String())
		}
	}
}

// TestCompileSelectorRefusals: each refusal names the field and the limit.
func TestCompileSelectorRefusals(t *testing.T) {
	const s0 = "spec.kprobes[0].selectors[0]"
	ns := func(n int) []NamespaceSelector {
		out := make([]NamespaceSelector, n)
		for i := range out {
			out[i] = NamespaceSelector{Namespace: "Net", Operator: "In", Values: []string{fmt.Sprint(4026531840 + i)}}
		}
		return out
	}
	for _, tt := range []struct {
		name string
		sel  SelectorSpec
		want []string
	}{
		{"five namespaces", SelectorSpec{MatchNamespaces: ns(kernelMaxNsFilters + 1)},
			[]string{s0 + ".matchNamespaces: 5 entries: this version of Vigil takes at most 4 per selector"}},
		{"namespace values", SelectorSpec{MatchNamespaces: []NamespaceSelector{
			{Namespace: "Mnt", Operator: "In", Values: []string{"1", "2", "3", "4", "host_ns"}},
			{Namespace: "Mnt", Operator: "In"},
		}}, []string{
			s0 + ".matchNamespaces[0].values: 5 values, 1 to 4",
			s0 + ".matchNamespaces[1].values: 0 values, 1 to 4",
		}},
		{"namespace fields", SelectorSpec{MatchNamespaces: []NamespaceSelector{
			{Namespace: "Disk", Operator: "Equal", Values: []string{"self", "4294967296", "host_ns"}},
		}}, []string{
			s0 + `.matchNamespaces[0].namespace: "Disk": matchNamespaces takes Uts, Ipc, Mnt, Pid, PidForChildren, Net, Time, TimeForChildren, Cgroup or User`,
			s0 + `.matchNamespaces[0].operator: "Equal": matchNamespaces takes In or NotIn`,
			s0 + `.matchNamespaces[0].values[0]: "self" is neither a namespace inode number nor host_ns`,
			s0 + `.matchNamespaces[0].values[1]: "4294967296" is neither a namespace inode number nor host_ns`,
		}},
		{"two capability entries", SelectorSpec{MatchCapabilities: []CapabilitySelector{
			{Operator: "In", Values: []string{"CAP_SYS_ADMIN"}}, {Operator: "In", Values: []string{"CAP_BPF"}},
		}}, []string{s0 + ".matchCapabilities: 2 entries: this version of Vigil takes one per selector"}},
		{"capability fields", SelectorSpec{MatchCapabilities: []CapabilitySelector{
			{Type: "Sometimes", Operator: "Mask", Values: []string{"CAP_SYS_ADMIN", "CAP_FLY"}},
		}}, []string{
			s0 + `.matchCapabilities[0].type: "Sometimes": matchCapabilities takes Effective, Inheritable or Permitted`,
			s0 + `.matchCapabilities[0].operator: "Mask": matchCapabilities takes In or NotIn`,
			s0 + `.matchCapabilities[0].values[1]: "CAP_FLY" is not a capability (CAP_CHOWN ... CAP_CHECKPOINT_RESTORE)`,
		}},
		{"no capabilities", SelectorSpec{MatchCapabilities: []CapabilitySelector{{Operator: "NotIn"}}},
			[]string{s0 + ".matchCapabilities[0].values: at least one capability"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := compileErrors(t, selectorPolicy(tt.sel))
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("refusals:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

// TestCompileSelectorsAtTheLimits: what the kernel table holds compiles.
func TestCompileSelectorsAtTheLimits(t *testing.T) {
	var nss []NamespaceSelector
	for _, n := range []string{"Uts", "Ipc", "Cgroup", "User"} {
		nss = append(nss, NamespaceSelector{Namespace: n, Operator: "NotIn", Values: []string{"1", "2", "3", "host_ns"}})
	}
	all := make([]string, 0, len(capabilityNumbers))
	for name := range capabilityNumbers {
		all = append(all, name)
	}
	prog, err := Compile(selectorPolicy(SelectorSpec{
		MatchNamespaces:   nss,
		MatchCapabilities: []CapabilitySelector{{Operator: "In", Values: all}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	sel := prog.Hooks[0].Selectors[0]
	if len(sel.Namespaces) != kernelMaxNsFilters || sel.Capabilities.Mask != 1<<41-1 {
		t.Errorf("compiled to %+v", sel)
	}
	// Validation and compilation agree on everything but the number of
	// matchNamespaces entries (Tetragon's 10, the table's 4).
	if err := Validate(selectorPolicy(SelectorSpec{MatchNamespaces: nss})); err != nil {
		t.Errorf("a policy at the table's limits is not valid: %v", err)
	}
}

func TestCapabilityNames(t *testing.T) {
	if got := CapabilityName(21); got != "CAP_SYS_ADMIN" {
		t.Errorf("CapabilityName(21) = %q", got)
	}
	if got := CapabilityName(63); got != "CAP_63" {
		t.Errorf("CapabilityName(63) = %q", got)
	}
	if got := CapabilityNames(1<<0 | 1<<39); !slices.Equal(got, []string{"CAP_CHOWN", "CAP_BPF"}) {
		t.Errorf("CapabilityNames = %q", got)
	}
}

// Structured kernel-function arguments: cap sets are integers that also
// take capability names; a cred is reported but not matched on.
func TestCompileStructuredKernelArgs(t *testing.T) {
	p := &TracingPolicy{
		APIVersion: APIVersion, Kind: KindTracingPolicy, Metadata: ObjectMeta{Name: "caps"},
		Spec: Spec{KProbes: []KProbeSpec{{
			Call: "security_capset",
			Args: []ArgSpec{{Index: 0, Type: "cred"}, {Index: 1, Type: "nop"}, {Index: 2, Type: "cap_effective"}},
			Selectors: []SelectorSpec{{MatchArgs: []ArgSelector{
				{Index: 2, Operator: "Mask", Values: []string{"CAP_CHOWN,CAP_SYS_ADMIN", "0x8"}},
			}}},
		}}},
	}
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	h := prog.Hooks[0]
	if h.Args[0].Kind != ArgCred || h.Args[2].Kind != ArgCaps {
		t.Errorf("kinds %v %v", h.Args[0].Kind, h.Args[2].Kind)
	}
	f := h.Selectors[0].Filters[0]
	if f.String || !slices.Equal(f.Ints, []int64{1<<0 | 1<<21, 8}) {
		t.Errorf("filter %+v", f)
	}

	p.Spec.KProbes[0].Selectors[0].MatchArgs = []ArgSelector{{Index: 0, Operator: "Equal", Values: []string{"0"}}}
	_, err = Compile(p)
	if err == nil || !strings.Contains(err.Error(), "spec.kprobes[0].selectors[0].matchArgs[0]") || !strings.Contains(err.Error(), "cred") {
		t.Errorf("a matchArgs on a cred: %v", err)
	}
}

// resolve follows kernel structures: kernel functions and LSM hooks take
// it (the kernel package checks the path against BTF at install); syscall
// arguments, user pointers, are refused.
func TestCompileResolve(t *testing.T) {
	k := func(syscall bool) *TracingPolicy {
		call := "security_bprm_check"
		if syscall {
			call = "sys_openat"
		}
		return &TracingPolicy{
			APIVersion: APIVersion, Kind: KindTracingPolicy, Metadata: ObjectMeta{Name: "resolve"},
			Spec: Spec{KProbes: []KProbeSpec{{
				Call: call, Syscall: syscall,
				Args: []ArgSpec{{Index: 0, Type: "string", Resolve: "mm.owner.real_parent.comm"}},
			}}},
		}
	}
	prog, err := Compile(k(false))
	if err != nil {
		t.Fatal(err)
	}
	if got := prog.Hooks[0].Args[0].Resolve; !slices.Equal(got, []string{"mm", "owner", "real_parent", "comm"}) {
		t.Errorf("resolve compiled to %q", got)
	}
	_, err = Compile(k(true))
	if err == nil || !strings.Contains(err.Error(), "spec.kprobes[0].args[0].resolve: resolve follows kernel structures") {
		t.Errorf("resolve on a syscall argument: %v", err)
	}
}

func TestCompileStackTraces(t *testing.T) {
	post := func(kernel, user bool) SelectorSpec {
		return SelectorSpec{MatchActions: []ActionSelector{{Action: "Post", KernelStackTrace: kernel, UserStackTrace: user}}}
	}
	p := selectorPolicy(post(true, false))
	p.Spec.KProbes[0].Selectors = append(p.Spec.KProbes[0].Selectors, post(false, true), post(true, true), post(false, false))
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]bool
	for _, s := range prog.Hooks[0].Selectors {
		got = append(got, [2]bool{s.KernelStack, s.UserStack})
	}
	if want := [][2]bool{{true, false}, {false, true}, {true, true}, {false, false}}; !reflect.DeepEqual(got, want) {
		t.Errorf("kernel, user stacks per selector %v, want %v", got, want)
	}

	// Where the kernel cannot take a stack, the policy is refused.
	connect := &TracingPolicy{
		APIVersion: APIVersion, Kind: KindTracingPolicy, Metadata: ObjectMeta{Name: "stacks"},
		Spec: Spec{
			KProbes: []KProbeSpec{{
				Call: "sys_connect", Syscall: true,
				Args:      []ArgSpec{{Index: 0, Type: "int"}, {Index: 1, Type: "sockaddr"}},
				Selectors: []SelectorSpec{post(false, true)},
			}},
			UProbes: []UProbeSpec{{Path: "/bin/sh", Symbols: []string{"main"}, Selectors: []SelectorSpec{post(true, true), post(false, true)}}},
		},
	}
	want := []string{
		"spec.kprobes[0].selectors[0].matchActions[0].userStackTrace: a connect hook runs in a cgroup program, which cannot read stacks",
		"spec.uprobes[0].selectors[0].matchActions[0].kernelStackTrace: a uprobe stops the process in user space, where there is no kernel stack; userStackTrace gives the process's",
	}
	if got := compileErrors(t, connect); !reflect.DeepEqual(got, want) {
		t.Errorf("refusals\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A kprobe on a list of type syscalls hooks syscalls, syscall: true or not.
func TestCompileSyscallListWithoutSyscallFlag(t *testing.T) {
	p := &TracingPolicy{
		APIVersion: APIVersion, Kind: KindTracingPolicy, Metadata: ObjectMeta{Name: "dups"},
		Spec: Spec{
			Lists:   []ListSpec{{Name: "dups", Type: "syscalls", Values: []string{"sys_dup", "sys_dup2"}}},
			KProbes: []KProbeSpec{{Call: "list:dups"}},
		},
	}
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if h := prog.Hooks[0]; h.Kind != HookSyscall || !slices.Equal(h.Calls, []string{"dup", "dup2"}) {
		t.Errorf("hook %v %q, want syscall dup, dup2", h.Kind, h.Calls)
	}
}

// TestCompileRequests: GetUrl and DnsLookup leave the kernel's part of the
// selector alone (it posts) and hand their targets to the collector; with
// NoPost nothing is posted, so nothing would be requested.
func TestCompileRequests(t *testing.T) {
	prog, err := Compile(selectorPolicy(SelectorSpec{MatchActions: []ActionSelector{
		{Action: "GetUrl", ArgURL: "https://canary.example/t"},
		{Action: "dnslookup", ArgFqdn: "canary.example"},
		{Action: "GetUrl", ArgURL: "http://10.0.0.1/"},
	}}))
	if err != nil {
		t.Fatal(err)
	}
	sel := prog.Hooks[0].Selectors[0]
	if !sel.Post || sel.Signal != 0 || sel.Override {
		t.Errorf("kernel part %+v: want a plain Post", sel)
	}
	if want := []string{"https://canary.example/t", "http://10.0.0.1/"}; !slices.Equal(sel.URLs, want) {
		t.Errorf("URLs %q, want %q", sel.URLs, want)
	}
	if want := []string{"canary.example"}; !slices.Equal(sel.Names, want) {
		t.Errorf("Names %q, want %q", sel.Names, want)
	}
	prog, err = Compile(selectorPolicy(SelectorSpec{MatchActions: []ActionSelector{
		{Action: "GetUrl", ArgURL: "https://canary.example/t"}, {Action: "NoPost"},
	}}))
	if err != nil {
		t.Fatal(err)
	}
	if prog.Hooks[0].Selectors[0].Post {
		t.Error("GetUrl with NoPost posts")
	}
}

// TestCompileCount: Count counts and leaves posting alone, as Tetragon's
// actions do: the selector posts unless NoPost says otherwise.
func TestCompileCount(t *testing.T) {
	for _, c := range []struct {
		actions []string
		post    bool
	}{
		{[]string{"Count"}, true},
		{[]string{"count", "Post"}, true},
		{[]string{"Count", "Sigkill"}, true},
		{[]string{"Count", "NoPost"}, false},
		{[]string{"NoPost", "count"}, false},
	} {
		var list []ActionSelector
		for _, a := range c.actions {
			list = append(list, ActionSelector{Action: a})
		}
		prog, err := Compile(selectorPolicy(SelectorSpec{MatchActions: list}))
		if err != nil {
			t.Fatalf("%v: %v", c.actions, err)
		}
		if sel := prog.Hooks[0].Selectors[0]; !sel.Count || sel.Post != c.post {
			t.Errorf("%v: Count %v Post %v, want Count true Post %v", c.actions, sel.Count, sel.Post, c.post)
		}
	}
}

// TestCompileMatchReturnActions: on a hook that reports at return, the
// actions of matchReturnActions are the selector's; with matchActions too,
// or Override, the selector is refused.
func TestCompileMatchReturnActions(t *testing.T) {
	p := selectorPolicy(SelectorSpec{
		MatchReturnArgs:    []ArgSelector{{Index: 0, Operator: "LT", Values: []string{"0"}}},
		MatchReturnActions: []ActionSelector{{Action: "Signal", ArgSig: 19}},
	})
	p.Spec.KProbes[0].Return = true
	p.Spec.KProbes[0].ReturnArg = &ArgSpec{Index: 0, Type: "int"}
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if sel := prog.Hooks[0].Selectors[0]; sel.Signal != 19 || !sel.Post || !slices.Equal(sel.Actions, []string{"Signal"}) {
		t.Errorf("selector %+v: want Signal 19, posted", sel)
	}
	p.Spec.KProbes[0].Selectors[0].MatchActions = []ActionSelector{{Action: "Post"}}
	p.Spec.KProbes[0].Selectors = append(p.Spec.KProbes[0].Selectors, SelectorSpec{
		MatchReturnActions: []ActionSelector{{Action: "Override", ArgError: -1}},
	})
	got := compileErrors(t, p)
	want := []string{
		"spec.kprobes[0].selectors[0].matchReturnActions: a selector with matchActions too: Vigil runs the actions of a hook with return: true at return, so give them in one list",
		"spec.kprobes[0].selectors[1].matchReturnActions[0].action: Override at return: the call has already run",
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("refusals %q: want %q", got, w)
		}
	}
}
