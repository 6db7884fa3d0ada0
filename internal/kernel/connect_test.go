package kernel_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/vigilsec/vigil/internal/policy"
)

// TestConnectHookRefusesWithEPERM refuses bash's connects to anything but
// 127.0.0.1 through the cgroup connect hook; other binaries, and bash to
// 127.0.0.1, connect as usual. 127.0.0.2 stands for the forbidden address:
// the traffic never leaves loopback.
func TestConnectHookRefusesWithEPERM(t *testing.T) {
	port := loopbackListener(t)

	s, ph := install(t, &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "connect-only-localhost"},
		Spec: policy.Spec{KProbes: []policy.KProbeSpec{{
			Call: "sys_connect", Syscall: true,
			Args: []policy.ArgSpec{{Index: 0, Type: "int"}, {Index: 1, Type: "sockaddr"}},
			Selectors: []policy.SelectorSpec{{
				MatchBinaries: []policy.BinarySelector{{Operator: "In", Values: []string{"/bin/bash"}}},
				MatchArgs:     []policy.ArgSelector{{Index: 1, Operator: "NotSAddr", Values: []string{"127.0.0.1"}}},
				MatchActions:  []policy.ActionSelector{{Action: "Override", ArgError: -1}},
			}},
		}}},
	})
	if ph.Hooks[0].Hook.Kind != policy.HookConnect {
		t.Fatalf("compiled as %s, want a connect hook", ph.Hooks[0].Hook.Kind)
	}
	bash := func(addr string) (*exec.Cmd, string, error) {
		cmd := exec.Command("/bin/bash", "-c", fmt.Sprintf("echo > /dev/tcp/%s/%d", addr, port))
		out, err := cmd.CombinedOutput()
		return cmd, string(out), err
	}
	var denied *exec.Cmd
	recs := hookRecords(t, s, func() []int {
		cmd, out, err := bash("127.0.0.2")
		if err == nil || !strings.Contains(out, "Operation not permitted") {
			t.Errorf("bash to 127.0.0.2: %v, %q; want EPERM", err, out)
		}
		if cmd.ProcessState == nil {
			t.Fatalf("bash did not run: %v", err)
		}
		denied = cmd
		if _, out, err := bash("127.0.0.1"); err != nil {
			t.Errorf("bash to 127.0.0.1 was refused: %v %q", err, out)
		}
		if c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.2:%d", port)); err != nil {
			t.Errorf("this test's own connect to 127.0.0.2 was refused: %v", err)
		} else {
			c.Close()
		}
		return []int{denied.ProcessState.Pid()}
	})
	if len(recs) != 1 {
		t.Fatalf("records %+v: want the refused connect", recs)
	}
	if got := recs[0].Args[1].Str; got != fmt.Sprintf("127.0.0.2:%d", port) {
		t.Errorf("reported address %s", got)
	}
}

// loopbackListener accepts and closes TCP connections on every loopback
// address (127.0.0.1 and 127.0.0.2 alike) until the test ends, and returns
// its port.
func loopbackListener(t *testing.T) int { return acceptingListener(t, "tcp4", "0.0.0.0:0") }

// acceptingListener listens on addr, accepts and closes every connection
// until the test ends, and returns its port.
func acceptingListener(t *testing.T, network, addr string) int {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestConnectHookIPv6 runs the connect hook on IPv4 and IPv6 connects with
// one SAddr list that mixes both families, as Tetragon allows: bash's
// connects to 127.0.0.2, [::2] and the v4-mapped [::ffff:127.0.0.3] are
// refused in the kernel; to [::1] and [::ffff:127.0.0.2] they go through,
// the v4-mapped address meeting only the IPv6 CIDRs (127.0.0.2 is an IPv4
// one). A second selector reports IPv6 connects outside 127/8, which every
// IPv6 address is: a family the filter lists no CIDR of is in none.
func TestConnectHookIPv6(t *testing.T) {
	port := dualStackListener(t)
	s, ph := install(t, &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "connect-ipv6"},
		Spec: policy.Spec{KProbes: []policy.KProbeSpec{{
			Call: "sys_connect", Syscall: true,
			Args: []policy.ArgSpec{{Index: 0, Type: "int"}, {Index: 1, Type: "sockaddr"}},
			Selectors: []policy.SelectorSpec{{
				MatchBinaries: []policy.BinarySelector{{Operator: "In", Values: []string{"/bin/bash"}}},
				MatchArgs: []policy.ArgSelector{{Index: 1, Operator: "SAddr",
					Values: []string{"127.0.0.2", "::2/128", "::ffff:127.0.0.3"}}},
				MatchActions: []policy.ActionSelector{{Action: "Override", ArgError: -1}},
			}, {
				MatchBinaries: []policy.BinarySelector{{Operator: "In", Values: []string{"/bin/bash"}}},
				MatchArgs: []policy.ArgSelector{
					{Index: 1, Operator: "NotSAddr", Values: []string{"127.0.0.0/8"}},
					{Index: 1, Operator: "Family", Values: []string{"AF_INET6"}},
					{Index: 1, Operator: "SPort", Values: []string{fmt.Sprint(port)}},
				},
			}},
		}}},
	})
	if got := ph.Hooks[0].Mechanism; got != "cgroup connect" {
		t.Fatalf("attached with %s", got)
	}
	refused := map[string]bool{"127.0.0.2": true, "::2": true, "::ffff:127.0.0.3": true,
		"::1": false, "::ffff:127.0.0.2": false}
	pids := map[int]string{}
	recs := hookRecords(t, s, func() []int {
		var out []int
		for addr, refuse := range refused {
			cmd := exec.Command("/bin/bash", "-c", fmt.Sprintf("echo > /dev/tcp/%s/%d", addr, port))
			msg, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil {
				t.Fatalf("bash did not run: %v", err)
			}
			if denied := err != nil && strings.Contains(string(msg), "Operation not permitted"); denied != refuse {
				t.Errorf("bash to %s: %v %q; refused: %v, want %v", addr, err, msg, denied, refuse)
			}
			pids[cmd.ProcessState.Pid()] = addr
			out = append(out, cmd.ProcessState.Pid())
		}
		return out
	})
	got := map[string]uint32{}
	for _, r := range recs {
		addr := pids[int(r.PID)]
		got[addr] = r.Selector
		want := netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port))
		family := uint16(syscall.AF_INET6)
		if want.Addr().Is4() {
			family = syscall.AF_INET
		}
		if sk := r.Args[1].Sock; sk == nil || sk.Family != family || sk.Source != want || r.Args[1].Str != want.String() {
			t.Errorf("bash to %s: sockaddr %+v %q, want family %d, %v", addr, sk, r.Args[1].Str, family, want)
		}
	}
	want := map[string]uint32{"127.0.0.2": 0, "::2": 0, "::ffff:127.0.0.3": 0, "::1": 1, "::ffff:127.0.0.2": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records by address (selector) %v, want %v", got, want)
	}
}

// dualStackListener accepts and closes TCP connections on every loopback
// address, IPv4 and IPv6, until the test ends, and returns its port.
func dualStackListener(t *testing.T) int { return acceptingListener(t, "tcp", "[::]:0") }

// TestSyscallSockaddrArgument reads a sockaddr from user memory at a
// syscall hook other than connect (bind, on whatever mechanism the kernel
// offers): the kernel matches the address of each family against its own
// CIDRs, so that only this test's bind to [::1] is reported, not the one to
// 127.0.0.1.
func TestSyscallSockaddrArgument(t *testing.T) {
	// Go probes the stack's IPv6 support once per process, binding to
	// [::1] itself: done before the hook, so that only the test's bind
	// is seen, whichever test runs first.
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
	}
	s, ph := install(t, &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "bind-ipv6"},
		Spec: policy.Spec{KProbes: []policy.KProbeSpec{{
			Call: "sys_bind", Syscall: true,
			Args: []policy.ArgSpec{{Index: 0, Type: "int"}, {Index: 1, Type: "sockaddr"}},
			Selectors: []policy.SelectorSpec{{
				MatchArgs: []policy.ArgSelector{
					{Index: 1, Operator: "SAddr", Values: []string{"10.0.0.0/8", "::1"}},
					{Index: 1, Operator: "Family", Values: []string{"AF_INET6"}},
				},
			}},
		}}},
	})
	t.Logf("bind hook on %s", ph.Hooks[0].Mechanism)
	recs := hookRecords(t, s, func() []int {
		for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			ln.Close()
		}
		return []int{os.Getpid()}
	})
	if len(recs) != 1 {
		t.Fatalf("records %+v: want the bind to [::1]", recs)
	}
	// Go binds to port 0: the kernel picks the port after the call.
	sk := recs[0].Args[1].Sock
	if sk == nil || sk.Family != syscall.AF_INET6 || sk.Source != netip.MustParseAddrPort("[::1]:0") || recs[0].Args[1].Str != "[::1]:0" {
		t.Errorf("sockaddr %+v %q, want AF_INET6 [::1]:0", sk, recs[0].Args[1].Str)
	}
}
