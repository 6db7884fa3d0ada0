package kernel_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// usdtTarget has one USDT probe, vigil_test:tick, written out as
// <sys/sdt.h> would write it (a .note.stapsdt entry, so that the test needs
// no systemtap header): four arguments, in a register (32 and 64 bits), in
// memory on the stack and a constant. The probe has a semaphore and is
// only reached while a tracer has raised it, which proves that attaching
// does: the target prints the semaphore when it ends.
const usdtTarget = "usdt_tick.c"

// buildC builds the C target testdata/name into a temporary directory
// (testenv.CompileC). Where there is no gcc (the VM lane's guests) it
// takes the binary vmtest built from it on the host.
func buildC(t *testing.T, name string) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		bin, errAbs := filepath.Abs(testenv.PrebuiltC(name))
		if _, errStat := os.Stat(bin); errAbs == nil && errStat == nil {
			return bin
		}
		testenv.Unavailable(t, "no gcc to build the target, and no %s built for this machine: %v", testenv.PrebuiltC(name), err)
	}
	bin := filepath.Join(t.TempDir(), "target")
	if err := testenv.CompileC(filepath.Join("testdata", name), bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

func usdtPolicy(spec policy.UsdtSpec) *policy.TracingPolicy {
	return &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "usdt-test"},
		Spec:     policy.Spec{Usdts: []policy.UsdtSpec{spec}},
	}
}

func TestUsdtHookReadsProbeArguments(t *testing.T) {
	testenv.RequireBPF(t)
	bin := buildC(t, usdtTarget)
	s, ph := install(t, usdtPolicy(policy.UsdtSpec{
		Path: bin, Provider: "vigil_test", Name: "tick",
		Args: []policy.ArgSpec{{Index: 0, Type: "int32"}, {Index: 1, Type: "int64"}, {Index: 2, Type: "int64"}, {Index: 3, Type: "int32"}},
		Selectors: []policy.SelectorSpec{{MatchArgs: []policy.ArgSelector{
			{Index: 0, Operator: "Equal", Values: []string{"-6"}},
		}}},
	}))
	if m := ph.Hooks[0].Mechanism; m != "uprobe (usdt)" {
		t.Errorf("mechanism %q", m)
	}
	var out []byte
	recs := hookRecords(t, s, func() []int {
		cmd := exec.Command(bin, "3")
		var err error
		if out, err = cmd.Output(); err != nil {
			t.Fatal(err)
		}
		return []int{cmd.ProcessState.Pid()}
	})
	if got := strings.TrimSpace(string(out)); got != "1" {
		t.Errorf("the target saw its semaphore at %s, want 1 (raised by the attached probe)", got)
	}
	// Calls a = -5, -6, -7: the selector wants the second.
	want := []int64{-6, 1<<40 + 1, 1<<40 + 2, 7}
	if len(recs) != 1 {
		t.Fatalf("records %+v: want one, the tick with a = -6", recs)
	}
	for i, w := range want {
		if got := recs[0].Args[i].Int; got != w {
			t.Errorf("argument %d = %d, want %d", i, got, w)
		}
	}
}

func TestUsdtHookOnAMissingProbeIsRefused(t *testing.T) {
	testenv.RequireBPF(t)
	bin := buildC(t, usdtTarget)
	_, _, err := tryInstall(t, usdtPolicy(policy.UsdtSpec{Path: bin, Provider: "vigil_test", Name: "tock"}), kernel.SensorOptions{RingBufferSize: 1 << 21})
	if err == nil || !strings.Contains(err.Error(), "spec.usdts[0].path") || !strings.Contains(err.Error(), "no USDT probe vigil_test:tock (it has vigil_test:tick)") {
		t.Fatalf("install: %v; want a refusal naming the probes the binary has", err)
	}
}

// usdtSetTarget has a USDT probe, vigil_test:set, whose one argument is a
// 32-bit local in memory, which the program reads back after the probe and
// prints: what a Set action wrote over it shows.
const usdtSetTarget = "usdt_set.c"

// Set writes its value over a USDT probe's argument in the traced
// process's memory, on the calls its selector matches; in monitor mode it
// writes nothing. Set on an argument a site keeps in a register is refused.
func TestUsdtSetAction(t *testing.T) {
	testenv.RequireBPF(t)
	bin := buildC(t, usdtSetTarget)
	spec := func(mode string) *policy.TracingPolicy {
		p := usdtPolicy(policy.UsdtSpec{
			Path: bin, Provider: "vigil_test", Name: "set",
			Args: []policy.ArgSpec{{Index: 0, Type: "int32"}},
			Selectors: []policy.SelectorSpec{{
				MatchArgs:    []policy.ArgSelector{{Index: 0, Operator: "Equal", Values: []string{"1"}}},
				MatchActions: []policy.ActionSelector{{Action: "Set", ArgIndex: 0, ArgValue: 32}},
			}},
		})
		if mode != "" {
			p.Spec.Options = []policy.OptionSpec{{Name: "policy-mode", Value: mode}}
		}
		return p
	}
	for _, tc := range []struct{ mode, want string }{
		{"", "0 32 2"},
		{"monitor", "0 1 2"},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			// Monitor mode writes nothing, and needs no
			// bpf_probe_write_user.
			s, _, ok := installIfSupported(t, spec(tc.mode), tc.mode == "monitor" || !lockedDown(t), "bpf_probe_write_user")
			if !ok {
				return
			}
			var out []byte
			recs := hookRecords(t, s, func() []int {
				cmd := exec.Command(bin, "3")
				var err error
				if out, err = cmd.Output(); err != nil {
					t.Fatal(err)
				}
				return []int{cmd.ProcessState.Pid()}
			})
			if got := strings.Join(strings.Fields(string(out)), " "); got != tc.want {
				t.Errorf("the target printed %q, want %q", got, tc.want)
			}
			// The event reports the value the probe passed.
			if len(recs) != 1 || recs[0].Args[0].Int != 1 {
				t.Errorf("records %+v, want one of the probe with 1", recs)
			}
		})
	}
	t.Run("register", func(t *testing.T) {
		_, _, err := tryInstall(t, usdtPolicy(policy.UsdtSpec{
			Path: buildC(t, usdtTarget), Provider: "vigil_test", Name: "tick",
			Args:      []policy.ArgSpec{{Index: 0, Type: "int32"}},
			Selectors: []policy.SelectorSpec{{MatchActions: []policy.ActionSelector{{Action: "Set", ArgIndex: 0, ArgValue: 1}}}},
		}), kernel.SensorOptions{RingBufferSize: 1 << 21})
		if err == nil || !strings.Contains(err.Error(), "spec.usdts[0].selectors[0]: Set on argument 0") || !strings.Contains(err.Error(), "a register") {
			t.Fatalf("install: %v; want a refusal naming the selector and the register", err)
		}
	})
}

// lockedDown reports whether the kernel's lockdown (integrity or
// confidentiality) forbids BPF programs to write user memory, from
// securityfs, mounted if need be.
func lockedDown(t *testing.T) bool {
	const path = "/sys/kernel/security/lockdown"
	if _, err := os.Stat(path); err != nil {
		unix.Mount("securityfs", "/sys/kernel/security", "securityfs", 0, "")
	}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false // no lockdown LSM
	}
	if err != nil {
		t.Fatal(err)
	}
	return !strings.Contains(string(data), "[none]")
}
