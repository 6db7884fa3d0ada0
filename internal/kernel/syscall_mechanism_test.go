package kernel_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/syscalls"
	"github.com/vigilsec/vigil/internal/testenv"
)

// syscallSensor loads a sensor with opts and installs p.
func syscallSensor(t *testing.T, opts kernel.SensorOptions, p *policy.TracingPolicy) (*kernel.Sensor, *kernel.PolicyHooks) {
	t.Helper()
	opts.RingBufferSize = 1 << 21
	return installWith(t, p, opts)
}

// wantSyscallMechanism is the mechanism a syscall hook must get on this
// kernel, from the feature probe: kprobe.multi, else kprobe, else (at entry
// only) fentry, else the raw syscall tracepoints. Kprobe programs find
// their hook by the attach cookie, fentry ones read arguments with
// bpf_get_func_arg: without those (5.10) only the tracepoints are left.
func wantSyscallMechanism(fs kernel.Features, atReturn bool) string {
	kprobes := fs.Has(kernel.FeatureKprobe) && fs.Has(kernel.FeatureAttachCookie)
	switch {
	case kprobes && fs.Has(kernel.FeatureKprobeMulti):
		return kernel.SyscallKprobeMulti
	case kprobes:
		return kernel.SyscallKprobe
	case syscallFentry(fs) && !atReturn:
		return kernel.SyscallFentry
	}
	return kernel.SyscallTracepoints
}

func syscallFentry(fs kernel.Features) bool {
	return fs.Has(kernel.FeatureFentry) && fs.Has(kernel.FeatureFuncArgs)
}

// TestSyscallHookMechanismIsWhatProbeReports: a `syscall: true` kprobe
// attaches to __x64_sys_* with kprobe.multi where the kernel has it, else
// with kprobes, and on the raw syscall tracepoints on a kernel with neither
// kprobes nor fentry (the development host); `vigil probe` (Mechanisms)
// says the same.
func TestSyscallHookMechanismIsWhatProbeReports(t *testing.T) {
	testenv.RequireBPF(t)
	fs := kernel.Probe()
	for _, ret := range []bool{false, true} {
		t.Run(fmt.Sprintf("return=%v", ret), func(t *testing.T) {
			_, ph := syscallSensor(t, kernel.SensorOptions{}, openatPolicy(ret))
			want := wantSyscallMechanism(fs, ret)
			if got := ph.Hooks[0].Mechanism; got != want {
				t.Fatalf("mechanism %q, want %q (kprobe %v, kprobe_multi %v, fentry %v)", got, want,
					fs.Has(kernel.FeatureKprobe), fs.Has(kernel.FeatureKprobeMulti), fs.Has(kernel.FeatureFentry))
			}
		})
	}
	var reported string
	for _, m := range fs.Mechanisms() {
		if m.Hook == "kprobes (syscall: true)" {
			reported = m.Mechanism
		}
	}
	want := wantSyscallMechanism(fs, false)
	if want == kernel.SyscallTracepoints {
		// Named as the process sensor's tracepoints are.
		if !strings.HasSuffix(reported, " sys_enter/sys_exit, by syscall number") {
			t.Errorf("vigil probe reports %q for syscall hooks, want the raw syscall tracepoints", reported)
		}
	} else if !strings.HasPrefix(reported, want) {
		t.Errorf("vigil probe reports %q for syscall hooks, want %q", reported, want)
	}
	if !fs.Has(kernel.FeatureKprobe) && !fs.Has(kernel.FeatureFentry) && want != kernel.SyscallTracepoints {
		t.Errorf("without kprobes and fentry, syscall hooks attach with %q", want)
	}
}

// syscallMechanisms are the ways the tests attach the same policy: the
// kernel's best, and the raw syscall tracepoints.
var syscallMechanisms = []struct {
	name string
	opts kernel.SensorOptions
}{
	{"best", kernel.SensorOptions{}},
	{"tracepoints", kernel.SensorOptions{SyscallTracepoints: true}},
	{"fentry", kernel.SensorOptions{PreferFentry: true}},
}

// TestSyscallHookMechanismsReportTheSameEvents runs the same policies with
// each mechanism the kernel offers syscall hooks: the records are the same,
// the syscall number included, at entry and at return.
func TestSyscallHookMechanismsReportTheSameEvents(t *testing.T) {
	testenv.RequireBPF(t)
	dir, f := files(t, "target", "other")
	missing := filepath.Join(dir, "missing")
	fs := kernel.Probe()
	type record struct {
		call   uint32
		path   string
		ret    int64
		atRet  bool
		signal uint32
	}
	for _, m := range syscallMechanisms {
		t.Run(m.name, func(t *testing.T) {
			// At entry: one of cat's opens is selected.
			s, ph := syscallSensor(t, m.opts, openatPolicy(false, policy.SelectorSpec{MatchArgs: []policy.ArgSelector{pathIs("Equal", f[0])}}))
			mech := ph.Hooks[0].Mechanism
			switch {
			case m.opts.SyscallTracepoints && mech != kernel.SyscallTracepoints:
				t.Fatalf("forced to the raw tracepoints, attached with %q", mech)
			case m.opts.PreferFentry && syscallFentry(fs) && mech != kernel.SyscallFentry:
				t.Fatalf("with PreferFentry on a kernel with fentry, attached with %q", mech)
			}
			t.Logf("mechanism %s", mech)
			var got []record
			recs := hookRecords(t, s, func() []int { return []int{runCmd(t, "/bin/cat", f[1], f[0])} })
			for _, r := range recs {
				got = append(got, record{r.Call, r.Args[1].Str, r.Ret, r.Return, r.Signal})
			}
			c, err := s.Counters(ph.Hooks[0])
			if err != nil {
				t.Fatal(err)
			}
			if c.Hits < 2 || c.Matched != 1 || c.Posted != 1 {
				t.Errorf("counters %+v: want hits >= 2, matched 1, posted 1", c)
			}

			// At return: the failed open, with its error. fentry
			// reports at entry only: the raw tracepoints serve it.
			s, ph = syscallSensor(t, m.opts, openatPolicy(true, policy.SelectorSpec{
				MatchArgs:       []policy.ArgSelector{pathIs("Prefix", dir)},
				MatchReturnArgs: []policy.ArgSelector{{Index: 0, Operator: "LT", Values: []string{"0"}}},
			}))
			if m.opts.PreferFentry && ph.Hooks[0].Mechanism == kernel.SyscallFentry {
				t.Error("a hook that reports at return attached with fentry")
			}
			recs = hookRecords(t, s, func() []int { return []int{runCmd(t, "/bin/cat", f[0], missing)} })
			for _, r := range recs {
				got = append(got, record{r.Call, r.Args[1].Str, r.Ret, r.Return, r.Signal})
			}
			want := []record{
				{257, f[0], 0, false, 0},
				{257, missing, -int64(syscall.ENOENT), true, 0},
			}
			if !slices.Equal(got, want) {
				t.Fatalf("records %+v, want %+v", got, want)
			}
		})
	}
}

// TestSyscallHookOnAListOfSyscalls: a hook on a list of syscalls attaches
// to each one's function, and each record names its syscall.
func TestSyscallHookOnAListOfSyscalls(t *testing.T) {
	dir := t.TempDir()
	for _, m := range syscallMechanisms[:2] {
		t.Run(m.name, func(t *testing.T) {
			p := openatPolicy(false, policy.SelectorSpec{MatchArgs: []policy.ArgSelector{pathIs("Prefix", dir+"/"+m.name)}})
			p.Spec.Lists = []policy.ListSpec{{Name: "made", Type: "syscalls", Values: []string{"sys_openat", "sys_mkdirat"}}}
			p.Spec.KProbes[0].Call = "list:made"
			s, ph := syscallSensor(t, m.opts, p)
			t.Logf("mechanism %s", ph.Hooks[0].Mechanism)
			file, sub := filepath.Join(dir, m.name+"-file"), filepath.Join(dir, m.name+"-dir")
			recs := hookRecords(t, s, func() []int {
				fd, err := unix.Openat(unix.AT_FDCWD, file, unix.O_CREAT|unix.O_WRONLY, 0o600)
				if err != nil {
					t.Fatal(err)
				}
				unix.Close(fd)
				if err := unix.Mkdirat(unix.AT_FDCWD, sub, 0o700); err != nil {
					t.Fatal(err)
				}
				return []int{os.Getpid()}
			})
			got := map[string]string{}
			for _, r := range recs {
				got[syscalls.Name(r.Call)] = r.Args[1].Str
			}
			if len(recs) != 2 || got["openat"] != file || got["mkdirat"] != sub {
				t.Fatalf("records by syscall %v (%d records), want openat %s and mkdirat %s", got, len(recs), file, sub)
			}
		})
	}
}

// TestSyscallHookOnASyscallTheKernelLacks: a syscall in the table that this
// kernel does not implement (create_module, gone since 2.6) has no function
// to attach to: the policy is refused naming it. On the raw tracepoints it
// loads and never fires.
func TestSyscallHookOnASyscallTheKernelLacks(t *testing.T) {
	testenv.RequireBPF(t)
	p := openatPolicy(false)
	p.Spec.KProbes[0].Call = "sys_create_module"
	prog, err := policy.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	s, err := kernel.LoadSensor(kernel.SensorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ph, err := s.InstallPolicy(prog, nil)
	if wantSyscallMechanism(kernel.Probe(), false) == kernel.SyscallTracepoints {
		if err != nil {
			t.Fatalf("on the raw tracepoints: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("installed with %s", ph.Hooks[0].Mechanism)
	}
	if !errors.Is(err, kernel.ErrMissingFeature) || !strings.Contains(err.Error(), `spec.kprobes[0].call: "create_module"`) || !strings.Contains(err.Error(), "__x64_sys_create_module") {
		t.Fatalf("refusal %q: want one naming the syscall and its function", err)
	}
}

// TestSyscallHookOnGeneratedSyscalls: a kprobe on a generated_syscalls list
// watches every syscall of the architecture, as Tetragon's
// list-syscalls-generated example does, skipping those this kernel lacks;
// each record names the syscall made.
func TestSyscallHookOnGeneratedSyscalls(t *testing.T) {
	testenv.RequireBPF(t)
	bin := copyBinary(t, "/bin/true", "watched-true")
	ps, err := policy.Parse([]byte(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: all-syscalls}
spec:
  lists:
  - {name: all-syscalls, type: generated_syscalls}
  kprobes:
  - call: "list:all-syscalls"
    selectors:
    - matchBinaries: [{operator: In, values: [`+bin+`]}]
`), "all.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Load(ps[0]); err != nil {
		t.Fatal(err)
	}
	s, ph := install(t, ps[0])
	if n := len(ph.Hooks[0].Hook.Calls); n < 300 {
		t.Fatalf("the generated list has %d syscalls", n)
	}
	var pid int
	recs := allHookRecords(t, s, func() { pid = runCmd(t, bin) })
	got := map[string]bool{}
	for _, r := range recs {
		if r.PID != uint32(pid) {
			t.Errorf("a record of pid %d, not the watched binary's %d", r.PID, pid)
			continue
		}
		got[syscalls.Name(r.Call)] = true
	}
	// How every program ends, and the many calls of its start (a
	// dynamically linked one's here, a static busybox's in the VM lane).
	if !got["exit_group"] || len(got) < 5 {
		t.Errorf("syscalls recorded %v: want exit_group among at least five", got)
	}
}
