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
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// syscallSensor loads a sensor with opts and installs p.
func syscallSensor(t *testing.T, opts kernel.SensorOptions, p *policy.TracingPolicy) (*kernel.Sensor, *kernel.PolicyHooks) {
	t.Helper()
	testenv.RequireBPF(t)
	prog, err := policy.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	opts.RingBufferSize = 1 << 21
	s, err := kernel.LoadSensor(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ph, err := s.InstallPolicy(prog, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, ph
}

// wantSyscallMechanism is the mechanism a syscall hook must get on this
// kernel, from the feature probe: kprobe.multi, else kprobe, else (at entry
// only) fentry, else the raw syscall tracepoints.
func wantSyscallMechanism(fs kernel.Features, atReturn bool) string {
	switch {
	case fs.Has(kernel.FeatureKprobe) && fs.Has(kernel.FeatureKprobeMulti):
		return kernel.SyscallKprobeMulti
	case fs.Has(kernel.FeatureKprobe):
		return kernel.SyscallKprobe
	case fs.Has(kernel.FeatureFentry) && !atReturn:
		return kernel.SyscallFentry
	}
	return kernel.SyscallTracepoints
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
			case m.opts.PreferFentry && fs.Has(kernel.FeatureFentry) && mech != kernel.SyscallFentry:
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
				got[kernel.SyscallName(r.Call)] = r.Args[1].Str
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

// recursionMisses lists the runs the kernel skipped of Vigil's kprobe
// programs: a kprobe program does not run on a CPU where another BPF
// program, or a map operation from user space, is under way
// (bpf_prog_active).
func recursionMisses() string {
	var out []string
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			break
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err1 := p.Info()
		st, err2 := p.Stats()
		p.Close()
		if err1 == nil && err2 == nil && strings.HasPrefix(info.Name, "vigil_k") {
			out = append(out, fmt.Sprintf("%s %d", info.Name, st.RecursionMisses))
		}
	}
	return strings.Join(out, ", ")
}

// TestReplacingASyscallPolicyOnProbesLeavesNoGap replaces a syscall policy
// over and over while the test opens a file in a loop, each open with its
// own number as the mode: every open is reported, by one version or the
// other. On the wrapper functions the new version's probes attach before
// the old ones detach, and the old ones wait for the hits under way: an
// open in that instant may be reported twice, none is missed. (On the raw
// tracepoints each is reported exactly once, as
// TestReplacingAPolicyLeavesNoGap counts.)
func TestReplacingASyscallPolicyOnProbesLeavesNoGap(t *testing.T) {
	testenv.RequireBPF(t)
	file := filepath.Join(t.TempDir(), "f")
	version := func(values ...string) *policy.TracingPolicy {
		p := openatPolicy(false, policy.SelectorSpec{MatchArgs: []policy.ArgSelector{pathIs("Equal", values...)}})
		p.Spec.KProbes[0].Args = []policy.ArgSpec{{Index: 1, Type: "string"}, {Index: 3, Type: "int"}}
		return p
	}
	versions := []*policy.TracingPolicy{version(file, "/nonexistent"), version(file)}
	s, ph := installRing(t, versions[1], 64<<20)
	t.Logf("mechanism %s", ph.Hooks[0].Mechanism)

	seen := make(chan map[int64]int)
	go func() {
		m := map[int64]int{}
		for {
			r, err := s.Read()
			if err != nil {
				seen <- m
				return
			}
			if h, ok := r.(*kernel.HookRecord); ok && h.PID == uint32(os.Getpid()) {
				m[h.Args[1].Int]++
			}
		}
	}()
	// The file does not exist: the hook reports the call at entry all the
	// same, and the mode is never used.
	stop, opened := make(chan struct{}), make(chan int)
	go func() {
		const most = 200000
		i := 1
		for ; i < most; i++ {
			select {
			case <-stop:
				opened <- i
				return
			default:
			}
			if fd, err := unix.Openat(unix.AT_FDCWD, file, unix.O_RDONLY, uint32(i)); err == nil {
				unix.Close(fd)
			}
		}
		<-stop
		opened <- i
	}()
	const replacements = 30
	ph = replaceAlternately(t, s, ph, replacements, versions...)
	close(stop)
	n := <-opened
	s.SetDeadline(time.Now().Add(time.Second))
	m := <-seen
	var missed []string
	twice := 0
	for i := int64(1); i < int64(n); i++ {
		switch m[i] {
		case 0:
			missed = append(missed, fmt.Sprint(i))
		case 1:
		default:
			twice++
		}
	}
	t.Logf("%d opens, %d replacements, %d reported twice", n-1, replacements, twice)
	if len(missed) > 0 {
		drops, _ := s.Drops()
		t.Fatalf("%d of %d opens unreported across %d replacements (%d records dropped for a full ring buffer; runs of kprobe programs the kernel skipped: %s), first %s",
			len(missed), n-1, replacements, drops, recursionMisses(), strings.Join(missed[:min(len(missed), 5)], " "))
	}
	if ph.Hooks[0].Mechanism == kernel.SyscallTracepoints && twice > 0 {
		t.Errorf("on the raw tracepoints %d opens were reported twice", twice)
	}
}
