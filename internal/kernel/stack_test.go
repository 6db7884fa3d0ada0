package kernel_test

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/stack"
	"github.com/vigilsec/vigil/internal/testenv"
)

var (
	kernelSymbols = stack.NewKernel("/proc/kallsyms")
	userSymbols   = stack.NewUser("/proc")
)

func symbols(frames []stack.Frame) []string {
	var out []string
	for _, f := range frames {
		out = append(out, f.Symbol)
	}
	return out
}

func hasPrefix(names []string, prefix string) bool {
	return slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, prefix) })
}

// checkSyscallKernelStack checks a kernel stack taken on the syscall path:
// it starts past BPF's own frames and leads back to the syscall entry.
func checkSyscallKernelStack(t *testing.T, r *kernel.HookRecord) {
	t.Helper()
	if err := kernelSymbols.Err(); err != nil {
		t.Fatal(err)
	}
	frames := kernelSymbols.Frames(r.KernelStack)
	names := symbols(frames)
	if len(frames) == 0 || frames[0].Module == "bpf" || !slices.Contains(names, "do_syscall_64") ||
		!hasPrefix(names, "entry_SYSCALL_64") {
		t.Errorf("pid %d kernel stack %v: want the syscall path, do_syscall_64 to entry_SYSCALL_64*, without BPF's frames", r.PID, names)
	}
	if len(r.KernelStack) > policy.MaxStackFrames {
		t.Errorf("%d kernel frames, at most %d", len(r.KernelStack), policy.MaxStackFrames)
	}
}

func TestStackTracesOfASyscallHook(t *testing.T) {
	_, f := files(t, "traced")
	s, _ := install(t, openatPolicy(false, policy.SelectorSpec{
		MatchArgs:    []policy.ArgSelector{pathIs("Equal", f[0])},
		MatchActions: []policy.ActionSelector{{Action: "Post", KernelStackTrace: true, UserStackTrace: true}},
	}))

	// A C program: a shell that stays alive while its stack is named
	// (sleep runs as its child, not in its place).
	sh := exec.Command("/bin/sh", "-c", ": < "+f[0]+"; sleep 5; :")
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Process.Kill(); sh.Wait() })
	recs := hookRecords(t, s, func() []int { return []int{sh.Process.Pid} })
	if len(recs) != 1 {
		t.Fatalf("%d records of the shell, want 1", len(recs))
	}
	checkSyscallKernelStack(t, recs[0])
	// Debian's dash and libc keep no frame pointers: the walk may go
	// astray after the first frame, which is exact, the syscall in libc.
	user := userSymbols.Frames(recs[0].PID, "sh", recs[0].UserStack)
	if len(user) == 0 || !strings.HasSuffix(user[0].Module, "/libc.so.6") || !strings.Contains(user[0].Symbol, "open") {
		t.Errorf("shell's user stack %+v: want libc's open first", user)
	}

	// A Go program, with frame pointers: this test itself.
	recs = hookRecords(t, s, func() []int {
		fd, err := os.Open(f[0])
		if err != nil {
			t.Fatal(err)
		}
		fd.Close()
		return []int{os.Getpid()}
	})
	if len(recs) != 1 {
		t.Fatalf("%d records of the test, want 1", len(recs))
	}
	checkSyscallKernelStack(t, recs[0])
	user = userSymbols.Frames(recs[0].PID, "test", recs[0].UserStack)
	exe, _ := os.Executable()
	names := symbols(user)
	if !slices.Contains(names, "syscall.openat") || !hasPrefix(names, "github.com/vigilsec/vigil/internal/kernel_test.TestStackTracesOfASyscallHook") {
		t.Errorf("test's user stack %v: want syscall.openat up to this test", names)
	}
	for _, fr := range user {
		if fr.Module != exe {
			t.Errorf("frame %+v: want it in %s", fr, exe)
		}
	}
}

func TestStackTracesOnlyWhereTheSelectorAsks(t *testing.T) {
	_, f := files(t, "kernel-only", "user-at-return", "none")
	p := openatPolicy(true,
		policy.SelectorSpec{
			MatchArgs:    []policy.ArgSelector{pathIs("Equal", f[0])},
			MatchActions: []policy.ActionSelector{{Action: "Post", KernelStackTrace: true}},
		},
		policy.SelectorSpec{
			MatchArgs:    []policy.ArgSelector{pathIs("Equal", f[1])},
			MatchActions: []policy.ActionSelector{{Action: "Post", UserStackTrace: true}},
		},
		policy.SelectorSpec{MatchArgs: []policy.ArgSelector{pathIs("Equal", f[2])}},
	)
	s, _ := install(t, p)
	recs := hookRecords(t, s, func() []int { return []int{runCmd(t, "/bin/cat", f[0], f[1], f[2])} })
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	for _, r := range recs {
		switch r.Args[1].Str {
		case f[0]:
			// Taken at return, on sys_exit: still the syscall path.
			checkSyscallKernelStack(t, r)
			t.Logf("kernel stack at return: %v", symbols(kernelSymbols.Frames(r.KernelStack)))
			if len(r.UserStack) != 0 {
				t.Errorf("%s: user stack of %d frames, none asked", f[0], len(r.UserStack))
			}
		case f[1]:
			if len(r.KernelStack) != 0 || len(r.UserStack) == 0 {
				t.Errorf("%s: kernel stack of %d frames, user of %d: want only a user stack", f[1], len(r.KernelStack), len(r.UserStack))
			}
		case f[2]:
			if len(r.KernelStack) != 0 || len(r.UserStack) != 0 {
				t.Errorf("%s: stacks of %d and %d frames, none asked", f[2], len(r.KernelStack), len(r.UserStack))
			}
		}
		if !r.Return {
			t.Errorf("record %+v not made at return", r)
		}
	}
}

// uprobeStackTarget is a C target in testdata/ (see buildC).
const uprobeStackTarget = "uprobe_stack.c"

func TestStackTraceOfAUprobe(t *testing.T) {
	testenv.RequireBPF(t)
	bin := buildC(t, uprobeStackTarget)
	s, _ := install(t, &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "uprobe-stack"},
		Spec: policy.Spec{UProbes: []policy.UProbeSpec{{
			Path: bin, Symbols: []string{"vigil_inner"},
			Selectors: []policy.SelectorSpec{{MatchActions: []policy.ActionSelector{{Action: "Post", UserStackTrace: true}}}},
		}}},
	})
	cmd := exec.Command(bin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	recs := hookRecords(t, s, func() []int { return []int{cmd.Process.Pid} })
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	if len(recs[0].KernelStack) != 0 {
		t.Errorf("kernel stack of %d frames, none asked", len(recs[0].KernelStack))
	}
	frames := userSymbols.Frames(recs[0].PID, "target", recs[0].UserStack)
	names := symbols(frames)
	if len(frames) < 2 || frames[0].Symbol != "vigil_inner" || frames[0].Offset != 0 || frames[0].Module != bin || !slices.Contains(names, "main") {
		t.Errorf("user stack %+v: want vigil_inner+0 in %s first, then up to main", frames, bin)
	}
	t.Logf("user stack %v", names)
}

// TestStackTraceOfAKernelFunctionHook: the kernel stack starts at the
// hooked function, on a kprobe as on fentry, whose trampolines are left
// out. The VM lane runs it: the development kernel has neither.
func TestStackTraceOfAKernelFunctionHook(t *testing.T) {
	testenv.RequireBPF(t)
	for _, mech := range []struct {
		name    string
		feature string
		fentry  bool
	}{{"kprobe", kernel.FeatureKprobe, false}, {"fentry", kernel.FeatureFentry, true}} {
		t.Run(mech.name, func(t *testing.T) {
			supported := testenv.KernelHas(t, mech.feature)
			_, f := files(t, "watched")
			prog, err := policy.Compile(filePermissionPolicy(policy.ActionSelector{Action: "Post", KernelStackTrace: true})(f[0]))
			if err != nil {
				t.Fatal(err)
			}
			s, err := kernel.LoadSensor(kernel.SensorOptions{RingBufferSize: 1 << 21, PreferFentry: mech.fentry})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, err = s.InstallPolicy(prog, nil)
			if !supported {
				// Refused, saying which feature the kernel lacks.
				if !errors.Is(err, kernel.ErrMissingFeature) {
					t.Fatalf("install on a kernel without %s: %v, want a refusal naming the missing feature", mech.feature, err)
				}
				t.Logf("refused as it should be: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			recs := hookRecords(t, s, func() []int { return []int{runCmd(t, "/bin/cat", f[0])} })
			if len(recs) == 0 {
				t.Fatal("no record for the watched file")
			}
			frames := kernelSymbols.Frames(recs[0].KernelStack)
			names := symbols(frames)
			t.Logf("kernel stack %v", names)
			if len(frames) == 0 || frames[0].Module == "bpf" || !slices.Contains(names, "do_syscall_64") {
				t.Errorf("kernel stack %v: want the path from the syscall, without BPF's frames", names)
			}
			if frames[0].Symbol != "security_file_permission" {
				t.Errorf("kernel stack %v: want security_file_permission first", names)
			}
		})
	}
}

// TestStackTracesOfATracepointAndOfTwoPoliciesOnOneCall: a classic
// tracepoint takes its stacks from the tracepoint's registers, and two
// policies' hooks on one syscall each get their own, from the one program
// that runs both.
func TestStackTracesOfATracepointAndOfTwoPoliciesOnOneCall(t *testing.T) {
	_, f := files(t, "traced")
	post := []policy.ActionSelector{{Action: "Post", KernelStackTrace: true, UserStackTrace: true}}
	s, _ := install(t, tracepointPolicy(policy.TracepointSpec{
		Subsystem: "syscalls", Event: "sys_enter_openat",
		Args: []policy.ArgSpec{{Index: 6, Type: "string"}},
		Selectors: []policy.SelectorSpec{{
			MatchArgs:    []policy.ArgSelector{{Index: 6, Operator: "Equal", Values: []string{f[0]}}},
			MatchActions: post,
		}},
	}))
	for _, name := range []string{"first", "second"} {
		p := openatPolicy(false, policy.SelectorSpec{MatchArgs: []policy.ArgSelector{pathIs("Equal", f[0])}, MatchActions: post})
		p.Metadata.Name = name
		prog, err := policy.Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.InstallPolicy(prog, nil); err != nil {
			t.Fatal(err)
		}
	}
	recs := hookRecords(t, s, func() []int {
		fd, err := os.Open(f[0])
		if err != nil {
			t.Fatal(err)
		}
		fd.Close()
		return []int{os.Getpid()}
	})
	if len(recs) != 3 {
		t.Fatalf("%d records, want the tracepoint's and two policies'", len(recs))
	}
	hooks := map[uint32]bool{}
	for _, r := range recs {
		hooks[r.HookID] = true
		ih, _ := s.Hook(r.HookID)
		switch k := kernelSymbols.Frames(r.KernelStack); {
		case ih.Hook.Kind != policy.HookTracepoint:
			checkSyscallKernelStack(t, r)
		case len(k) == 0:
			// On older kernels (6.1; 6.12 has it) a syscall
			// tracepoint's program is given the syscall's user
			// registers: there is no kernel stack to walk.
			t.Logf("no kernel stack on the syscall tracepoint")
		case k[0].Symbol != "syscall_trace_enter" && k[0].Symbol != "trace_syscall_enter":
			// Where the tracepoint is: syscall_trace_enter, or
			// trace_syscall_enter, its name on 7.3.
			t.Errorf("tracepoint's kernel stack %v: want it from syscall_trace_enter (trace_syscall_enter), where the tracepoint is", symbols(k))
		default:
			checkSyscallKernelStack(t, r)
		}
		names := symbols(userSymbols.Frames(r.PID, "test", r.UserStack))
		if !slices.Contains(names, "syscall.openat") {
			t.Errorf("hook %d: user stack %v: want syscall.openat", r.HookID, names)
		}
	}
	if len(hooks) != 3 {
		t.Errorf("records of hooks %v: want three hooks", hooks)
	}
}
