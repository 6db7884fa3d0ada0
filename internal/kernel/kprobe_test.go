package kernel_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

func filePermissionPolicy(actions ...policy.ActionSelector) func(path string) *policy.TracingPolicy {
	return func(path string) *policy.TracingPolicy {
		return &policy.TracingPolicy{
			APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
			Metadata: policy.ObjectMeta{Name: "file-permission"},
			Spec: policy.Spec{KProbes: []policy.KProbeSpec{{
				Call: "security_file_permission",
				Args: []policy.ArgSpec{{Index: 0, Type: "file"}, {Index: 1, Type: "int"}},
				Selectors: []policy.SelectorSpec{{
					MatchArgs:    []policy.ArgSelector{{Index: 0, Operator: "Equal", Values: []string{path}}},
					MatchActions: actions,
				}},
			}}},
		}
	}
}

// TestKprobeHookOnAKernelFunction watches security_file_permission, as
// Tetragon's file monitoring examples do: reads of one file are reported,
// reads of another are not. Where the kernel has no kprobes the policy is
// refused, naming what is missing.
func TestKprobeHookOnAKernelFunction(t *testing.T) {
	testenv.RequireBPF(t)
	_, f := files(t, "watched", "other")
	p := filePermissionPolicy()(f[0])
	if !testenv.KernelHas(t, kernel.FeatureKprobe) {
		s, err := kernel.LoadSensor(kernel.SensorOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		prog, err := policy.Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.InstallPolicy(prog, nil)
		if err == nil || !strings.Contains(err.Error(), "spec.kprobes[0].call: kprobes are not available on this kernel") || !strings.Contains(err.Error(), "CONFIG_KPROBES") {
			t.Fatalf("install on a kernel without kprobes: %v", err)
		}
		return
	}
	s, ph := install(t, p)
	want := "kprobe"
	if testenv.KernelHas(t, kernel.FeatureKprobeMulti) {
		want = "kprobe.multi"
	}
	if got := ph.Hooks[0].Mechanism; got != want {
		t.Errorf("mechanism %q, want %q", got, want)
	}
	recs := hookRecords(t, s, func() []int { return []int{runCmd(t, "/bin/cat", f[1], f[0])} })
	if len(recs) == 0 {
		t.Fatal("no record for the watched file")
	}
	for _, r := range recs {
		if r.Args[0].Str != f[0] {
			t.Errorf("record for %q", r.Args[0].Str)
		}
	}
}

// TestKprobeHookWithKprobeMultiDisabled: the option disable-kprobe-multi
// attaches one kprobe per function where kprobe.multi is there, and the
// hook still reports.
func TestKprobeHookWithKprobeMultiDisabled(t *testing.T) {
	testenv.RequireBPF(t)
	_, f := files(t, "watched")
	p := filePermissionPolicy()(f[0])
	p.Spec.Options = []policy.OptionSpec{{Name: "disable-kprobe-multi", Value: "true"}}
	s, ph, ok := installIfSupported(t, p, testenv.KernelHas(t, kernel.FeatureKprobe), "kprobes are not available on this kernel")
	if !ok {
		return
	}
	if got := ph.Hooks[0].Mechanism; got != "kprobe" {
		t.Errorf("mechanism %q, want kprobe", got)
	}
	if recs := hookRecords(t, s, func() []int { return []int{runCmd(t, "/bin/cat", f[0])} }); len(recs) == 0 {
		t.Fatal("no record for the watched file")
	}
}

// TestKprobeHookOnAListOfKernelFunctions: a kprobe on list:NAME (a list
// without a type) watches each function, a missing one skipped under
// ignore.callNotFound, and each record names the function that ran.
func TestKprobeHookOnAListOfKernelFunctions(t *testing.T) {
	testenv.RequireBPF(t)
	_, f := files(t, "watched", "other")
	p := filePermissionPolicy()(f[0])
	p.Spec.Lists = []policy.ListSpec{{Name: "file-fns", Values: []string{"security_file_open", "vigil_no_such_function", "security_file_permission"}}}
	p.Spec.KProbes[0].Call = "list:file-fns"
	p.Spec.KProbes[0].Args = p.Spec.KProbes[0].Args[:1]
	p.Spec.KProbes[0].Ignore = &policy.IgnoreSpec{CallNotFound: true}
	if _, err := policy.Load(p); err != nil {
		t.Fatal(err)
	}
	s, ph, ok := installIfSupported(t, p, testenv.KernelHas(t, kernel.FeatureKprobe), "kprobes are not available on this kernel")
	if !ok {
		return
	}
	if got := ph.Hooks[0].Hook.Calls; len(got) != 3 {
		t.Fatalf("hook calls %q, want the list's three", got)
	}
	recs := hookRecords(t, s, func() []int { return []int{runCmd(t, "/bin/cat", f[1], f[0])} })
	ran := map[string]bool{}
	for _, r := range recs {
		if r.Args[0].Str != f[0] {
			t.Errorf("record for %q", r.Args[0].Str)
		}
		calls := ph.Hooks[0].Hook.Calls
		if int(r.Call) >= len(calls) {
			t.Fatalf("record call %d, out of the hook's %d functions", r.Call, len(calls))
		}
		ran[calls[r.Call]] = true
	}
	// cat opens the file, then reads it.
	if !ran["security_file_open"] || !ran["security_file_permission"] || len(ran) != 2 {
		t.Errorf("records named %v, want security_file_open and security_file_permission", ran)
	}
}

// TestKprobeHookOnAGeneratedFtraceList: a generated_ftrace list is filled
// at install with the running kernel's functions its pattern matches
// (available_filter_functions), as Tetragon's list-generated-ftrace
// example asks; each record names the function that ran.
func TestKprobeHookOnAGeneratedFtraceList(t *testing.T) {
	testenv.RequireBPF(t)
	_, f := files(t, "watched")
	p := filePermissionPolicy()(f[0])
	pattern := "^security_file_(open|permission)$"
	p.Spec.Lists = []policy.ListSpec{{Name: "file-fns", Type: "generated_ftrace", Pattern: &pattern}}
	p.Spec.KProbes[0].Call = "list:file-fns"
	p.Spec.KProbes[0].Args = p.Spec.KProbes[0].Args[:1]
	if _, err := policy.Load(p); err != nil {
		t.Fatal(err)
	}
	s, ph, ok := installIfSupported(t, p, testenv.KernelHas(t, kernel.FeatureKprobe), "kprobes are not available on this kernel")
	if !ok {
		return
	}
	calls := ph.Hooks[0].Hook.Calls
	if len(calls) != 2 {
		t.Fatalf("the list was filled with %q, want the two functions", calls)
	}
	recs := hookRecords(t, s, func() []int { return []int{runCmd(t, "/bin/cat", f[0])} })
	ran := map[string]bool{}
	for _, r := range recs {
		if int(r.Call) < len(calls) {
			ran[calls[r.Call]] = true
		}
	}
	if !ran["security_file_open"] || !ran["security_file_permission"] {
		t.Errorf("records named %v, want security_file_open and security_file_permission", ran)
	}
}

// TestKprobeOverrideIsRefusedWithoutTheKernelFeature: Override on a
// function that is not a security_* one (fmod_ret serves those) needs
// bpf_override_return, which none of the kernels Vigil is tested on has;
// the refusal names it.
func TestKprobeOverrideIsRefusedWithoutTheKernelFeature(t *testing.T) {
	_, f := files(t, "file")
	p := filePermissionPolicy(policy.ActionSelector{Action: "Override", ArgError: -1})(f[0])
	p.Spec.KProbes[0].Call = "vfs_open"
	testenv.RequireBPF(t)
	s, err := kernel.LoadSensor(kernel.SensorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	prog, err := policy.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.InstallPolicy(prog, nil)
	if err == nil {
		t.Fatal("an Override kprobe installed")
	}
	if testenv.KernelHas(t, kernel.FeatureKprobe) && !strings.Contains(err.Error(), "bpf_override_return") {
		t.Errorf("refusal does not name bpf_override_return: %v", err)
	}
}

// TestFentryHookOnAKernelFunction attaches the file monitoring kprobe with
// fentry, the mechanism for kernels without kprobes: reads of one file are
// reported, of another not. Where fentry is refused, so is the policy,
// naming it.
func TestFentryHookOnAKernelFunction(t *testing.T) {
	testenv.RequireBPF(t)
	_, f := files(t, "watched", "other")
	prog, err := policy.Compile(filePermissionPolicy()(f[0]))
	if err != nil {
		t.Fatal(err)
	}
	s, err := kernel.LoadSensor(kernel.SensorOptions{RingBufferSize: 1 << 21, PreferFentry: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ph, err := s.InstallPolicy(prog, nil)
	if !testenv.KernelHas(t, kernel.FeatureFentry) {
		if !errors.Is(err, kernel.ErrMissingFeature) {
			t.Fatalf("on a kernel that refuses fentry: %v, want a refusal naming it", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := ph.Hooks[0].Mechanism; got != "fentry" {
		t.Fatalf("mechanism %q, want fentry", got)
	}
	recs := hookRecords(t, s, func() []int { return []int{runCmd(t, "/bin/cat", f[1], f[0])} })
	if len(recs) == 0 {
		t.Fatal("no record for the watched file")
	}
	for _, r := range recs {
		if r.Args[0].Str != f[0] {
			t.Errorf("record for %q", r.Args[0].Str)
		}
	}
}

// TestFentriesHook: a hook of spec.fentries is attached with fentry, and
// with fexit when it reports at return, which sees the arguments and the
// return value together. Where the kernel refuses fentry the policy is
// refused, naming it.
func TestFentriesHook(t *testing.T) {
	testenv.RequireBPF(t)
	_, f := files(t, "watched", "other")
	for _, ret := range []bool{false, true} {
		name := "fentry"
		if ret {
			name = "fexit"
		}
		t.Run(name, func(t *testing.T) {
			k := policy.KProbeSpec{
				Call: "security_file_open", Return: ret,
				Args:      []policy.ArgSpec{{Index: 0, Type: "file"}},
				Selectors: []policy.SelectorSpec{{MatchArgs: []policy.ArgSelector{{Index: 0, Operator: "Equal", Values: []string{f[0]}}}}},
			}
			if ret {
				k.ReturnArg = &policy.ArgSpec{Index: 0, Type: "int"}
			}
			s, ph, ok := installIfSupported(t, &policy.TracingPolicy{
				APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
				Metadata: policy.ObjectMeta{Name: "fentries"},
				Spec:     policy.Spec{Fentries: []policy.KProbeSpec{k}},
			}, testenv.KernelHas(t, kernel.FeatureFentry), "fentries need fentry")
			if !ok {
				return
			}
			if got := ph.Hooks[0].Mechanism; got != name {
				t.Errorf("mechanism %q, want %s", got, name)
			}
			recs := hookRecords(t, s, func() []int { return []int{runCmd(t, "/bin/cat", f[1], f[0])} })
			if len(recs) != 1 || recs[0].Args[0].Str != f[0] || recs[0].Return != ret || recs[0].Ret != 0 {
				t.Fatalf("records %+v, want one open of %s (at return: %v, returning 0)", recs, f[0], ret)
			}
		})
	}
}
