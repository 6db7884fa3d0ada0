package kernel_test

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
	"golang.org/x/sys/unix"
)

func overridePolicy(lsm bool, path string) *policy.TracingPolicy {
	sel := []policy.SelectorSpec{{
		MatchArgs:    []policy.ArgSelector{{Index: 0, Operator: "Equal", Values: []string{path}}},
		MatchActions: []policy.ActionSelector{{Action: "Override", ArgError: -1}},
	}}
	args := []policy.ArgSpec{{Index: 0, Type: "file"}}
	p := &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "override-open"},
	}
	if lsm {
		p.Spec.LsmHooks = []policy.LsmHookSpec{{Hook: "file_open", Args: args, Selectors: sel}}
	} else {
		p.Spec.KProbes = []policy.KProbeSpec{{Call: "security_file_open", Args: args, Selectors: sel}}
	}
	return p
}

// testOverride installs an Override policy on opens of one file: the open
// fails with EPERM, another file opens. A kernel that cannot run the
// mechanism refuses the policy naming what it lacks.
func testOverride(t *testing.T, lsm bool, mechanism, feature string) {
	_, f := files(t, "forbidden", "allowed")
	// Refused, the error names what is missing: the BPF LSM (not built,
	// not in the active LSMs, or refused), or the kernel function hooks
	// (kprobes, fentry) an fmod_ret override attaches through.
	missing := "kprobe"
	if lsm {
		missing = "lsm"
	}
	s, ph, ok := installIfSupported(t, overridePolicy(lsm, f[0]), testenv.KernelHas(t, feature), missing)
	if !ok {
		return
	}
	if got := ph.Hooks[0].Mechanism; got != mechanism {
		t.Errorf("mechanism %q, want %q", got, mechanism)
	}
	if _, err := os.Open(f[0]); !errors.Is(err, syscall.EPERM) {
		t.Errorf("open of the forbidden file: %v, want EPERM", err)
	}
	fd, err := os.Open(f[1])
	if err != nil {
		t.Errorf("open of another file: %v", err)
	} else {
		fd.Close()
	}
	if err := s.RemovePolicy(ph); err != nil {
		t.Fatal(err)
	}
	if fd, err := os.Open(f[0]); err != nil {
		t.Errorf("after removal: %v", err)
	} else {
		fd.Close()
	}
}

func TestLSMHookOverrideRefusesTheOpen(t *testing.T) {
	testOverride(t, true, "bpf_lsm", kernel.FeatureLSM)
}

func TestFmodRetOverrideOnASecurityFunction(t *testing.T) {
	testOverride(t, false, "fmod_ret", kernel.FeatureFentry)
}

// Override on a syscall hook skips the syscall through fmod_ret on its
// function and returns argError to the caller: an openat of one path fails
// with EPERM before the kernel looks at the file, others go through, and
// the record says so. A kernel without fmod_ret refuses the policy naming
// it.
func TestSyscallOverrideSkipsTheCall(t *testing.T) {
	_, f := files(t, "forbidden", "allowed")
	s, ph, ok := installIfSupported(t, openatPolicy(false, policy.SelectorSpec{
		MatchArgs:    []policy.ArgSelector{pathIs("Equal", f[0])},
		MatchActions: []policy.ActionSelector{{Action: "Override", ArgError: -1}},
	}), testenv.KernelHas(t, kernel.FeatureSyscallFmodRet), "fmod_ret")
	if !ok {
		return
	}
	if got := ph.Hooks[0].Mechanism; got != kernel.SyscallFmodRet {
		t.Errorf("mechanism %q, want %q", got, kernel.SyscallFmodRet)
	}
	recs := hookRecords(t, s, func() []int {
		if _, err := os.Open(f[0]); !errors.Is(err, syscall.EPERM) {
			t.Errorf("open of the forbidden file: %v, want EPERM", err)
		}
		fd, err := os.Open(f[1])
		if err != nil {
			t.Errorf("open of another file: %v", err)
		} else {
			fd.Close()
		}
		return []int{os.Getpid()}
	})
	if len(recs) != 1 || recs[0].Args[1].Str != f[0] {
		t.Errorf("records %+v, want the refused open", recs)
	}
}

// TestEnforcerFailsTheNotifiedCall: Tetragon's killer pattern. A
// tracepoint on raw_syscalls/sys_enter leaves a note (NotifyEnforcer) when
// this process calls a syscall of the list, and the policy's enforcer on
// that syscall's function fails the call with the note's error. A syscall
// off the list passes.
func TestEnforcerFailsTheNotifiedCall(t *testing.T) {
	testenv.RequireBPF(t)
	ps, err := policy.Parse([]byte(fmt.Sprintf(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: kill-dups}
spec:
  lists:
  - {name: dups, type: syscalls, values: [sys_dup, __ia32_sys_dup]}
  enforcers:
  - calls: ["list:dups"]
  tracepoints:
  - subsystem: raw_syscalls
    event: sys_enter
    args: [{index: 4, type: syscall64}]
    selectors:
    - matchArgs: [{index: 0, operator: InMap, values: ["list:dups"]}]
      matchPIDs: [{operator: In, values: [%d]}]
      matchActions: [{action: NotifyEnforcer, argError: -1}]
`, os.Getpid())), "killer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Load(ps[0]); err != nil {
		t.Fatal(err)
	}
	_, ph, ok := installIfSupported(t, ps[0], testenv.KernelHas(t, kernel.FeatureSyscallFmodRet), "fmod_ret")
	if !ok {
		return
	}
	if got := ph.Hooks[1].Mechanism; got != kernel.SyscallFmodRet {
		t.Errorf("enforcer attached with %q, want %q", got, kernel.SyscallFmodRet)
	}
	if fd, err := syscall.Dup(1); !errors.Is(err, syscall.EPERM) {
		syscall.Close(fd)
		t.Errorf("dup: %d, %v; want EPERM from the enforcer", fd, err)
	}
	fd, err := syscall.Open("/dev/null", syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Dup2(fd, fd+100); err != nil {
		t.Errorf("dup2, not enforced: %v", err)
	}
	syscall.Close(fd)
	syscall.Close(fd + 100)
}
