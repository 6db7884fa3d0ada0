package kernel_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// TestCompatObject runs the process sensor's and the hooks' tests on the
// compat object, the one kernels before 5.17 load (bounded path walks,
// global functions that take no pointers), on this kernel: every global
// function and argument reader of bpf/hook_*.h runs in one of them. The
// 5.10 guest of the VM lane runs these tests on its own verifier.
func TestCompatObject(t *testing.T) {
	testenv.RequireBPF(t)
	kernel.ForceCompat(t)
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"ProcessSensorReportsExecForkExit", TestProcessSensorReportsExecForkExit},
		{"SyscallHookMechanismsReportTheSameEvents", TestSyscallHookMechanismsReportTheSameEvents},
		{"SyscallHookFileType", TestSyscallHookFileType},
		{"SyscallHookPrefixPostfixAndBinaries", TestSyscallHookPrefixPostfixAndBinaries},
		{"SyscallHookReturnValueSelector", TestSyscallHookReturnValueSelector},
		{"SyscallHookMatchPIDsFollowForks", TestSyscallHookMatchPIDsFollowForks},
		{"SyscallHookSeveralMatchPIDs", TestSyscallHookSeveralMatchPIDs},
		{"SyscallHookNamespaceChanges", TestSyscallHookNamespaceChanges},
		{"MatchCapabilitiesEffective", TestMatchCapabilitiesEffective},
		{"MatchNamespacesInodes", TestMatchNamespacesInodes},
		{"MatchCapabilityChanges", TestMatchCapabilityChanges},
		{"SyscallSockaddrArgument", TestSyscallSockaddrArgument},
		{"CharIovecArgument", TestCharIovecArgument},
		{"SockaddrUnArgument", TestSockaddrUnArgument},
		{"ConnectHookRefusesWithEPERM", TestConnectHookRefusesWithEPERM},
		{"SyscallHookSigkillStopsTheProcessAtTheCall", TestSyscallHookSigkillStopsTheProcessAtTheCall},
		{"ExactStringMatchAtEveryLength", TestExactStringMatchAtEveryLength},
	} {
		t.Run(tc.name, tc.run)
	}
	t.Run("SubStringIsRefused", TestSubStringNeedsBPFLoop)
	// read_sock and read_cred serve kernel-function kprobes, and
	// TestInMap's hooks are tracepoints: kernels without attach cookies
	// (5.10) refuse them, and TestCookieHooksAreRefused checks that.
	if kernel.Probe().Has(kernel.FeatureAttachCookie) {
		t.Run("KprobeSockArgument", TestKprobeSockArgument)
		t.Run("KprobeArgumentTypes", TestKprobeArgumentTypes)
		t.Run("InMap", TestInMap)
	}
}

// TestSubStringNeedsBPFLoop: a substring operator installs where the
// sensor runs the object with bpf_loop, and is refused, naming the helper,
// where it runs the compat one (before 5.17), in which it would never match.
func TestSubStringNeedsBPFLoop(t *testing.T) {
	_, _, err := tryInstall(t, openatPolicy(false, policy.SelectorSpec{MatchArgs: []policy.ArgSelector{pathIs("SubString", "vigil")}}),
		kernel.SensorOptions{RingBufferSize: 1 << 20})
	if !kernel.CompatObject() {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if !errors.Is(err, kernel.ErrMissingFeature) || !strings.Contains(err.Error(), "bpf_loop") {
		t.Fatalf("a SubString selector on the compat object: %v; want it refused for want of bpf_loop", err)
	}
}

// TestCookieHooksNeedAttachCookies: tracepoints and uprobes (and kprobes
// on kernel functions, USDTs) install where the kernel has attach cookies,
// and are refused, naming bpf_get_attach_cookie, where it has none (5.10):
// their programs find their hook by the cookie.
func TestCookieHooksNeedAttachCookies(t *testing.T) {
	cookies := kernel.Probe().Has(kernel.FeatureAttachCookie)
	bin := buildC(t, uprobeTarget)
	// Kinds this machine hosts, whatever its kernel lacks besides: kprobes
	// share the check (and the development host has none).
	for name, spec := range map[string]policy.Spec{
		"tracepoint": {Tracepoints: []policy.TracepointSpec{{Subsystem: "raw_syscalls", Event: "sys_enter",
			Args: []policy.ArgSpec{{Index: 4, Type: "syscall64"}}}}},
		"uprobe": {UProbes: []policy.UProbeSpec{{Path: bin, Symbols: []string{"vigil_target"}}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := tryInstall(t, &policy.TracingPolicy{
				APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
				Metadata: policy.ObjectMeta{Name: "cookie-" + name}, Spec: spec,
			}, kernel.SensorOptions{RingBufferSize: 1 << 20})
			switch {
			case cookies && err != nil:
				t.Fatal(err)
			case !cookies && (!errors.Is(err, kernel.ErrMissingFeature) || !strings.Contains(err.Error(), "bpf_get_attach_cookie")):
				t.Fatalf("a %s hook without attach cookies: %v; want it refused naming bpf_get_attach_cookie", name, err)
			}
		})
	}
}
