package kernel_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
	"golang.org/x/sys/unix"
)

// tcpConnectPolicy is Tetragon's connect-only-private-addrs narrowed to
// bash and to loopback, where the test's traffic stays: tcp_connect of a
// TCP/IPv4 socket in SYN_SENT to port, from bash, anywhere but 127.0.0.1 is
// killed. A second hook on the same function only reports bash's connects
// to 127.0.0.1, from an unprivileged port of 127/8: between them they
// compare every field of the sock in the kernel.
func tcpConnectPolicy(port int) *policy.TracingPolicy {
	bash := []policy.BinarySelector{{Operator: "In", Values: []string{"/bin/bash"}}}
	sock := []policy.ArgSpec{{Index: 0, Type: "sock"}}
	return &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "connect-only-localhost"},
		Spec: policy.Spec{KProbes: []policy.KProbeSpec{{
			Call: "tcp_connect",
			Args: sock,
			Selectors: []policy.SelectorSpec{{
				MatchBinaries: bash,
				MatchArgs: []policy.ArgSelector{
					{Index: 0, Operator: "NotDAddr", Values: []string{"127.0.0.1"}},
					{Index: 0, Operator: "DPort", Values: []string{fmt.Sprint(port)}},
					{Index: 0, Operator: "Protocol", Values: []string{"IPPROTO_TCP"}},
					{Index: 0, Operator: "Family", Values: []string{"AF_INET"}},
					{Index: 0, Operator: "State", Values: []string{"TCP_SYN_SENT"}},
				},
				MatchActions: []policy.ActionSelector{{Action: "Sigkill"}},
			}},
		}, {
			Call: "tcp_connect",
			Args: sock,
			Selectors: []policy.SelectorSpec{{
				MatchBinaries: bash,
				MatchArgs: []policy.ArgSelector{
					{Index: 0, Operator: "DAddr", Values: []string{"127.0.0.1/32"}},
					{Index: 0, Operator: "NotDPort", Values: []string{"1:1023", fmt.Sprint(port + 1)}},
					{Index: 0, Operator: "SAddr", Values: []string{"127.0.0.0/8"}},
					{Index: 0, Operator: "NotSPortPriv"},
					{Index: 0, Operator: "NotSPort", Values: []string{"0"}},
				},
			}},
		}}},
	}
}

// TestKprobeSockArgument hooks tcp_connect with its struct sock * and
// Tetragon's socket operators: bash's connect to 127.0.0.2 is killed in the
// kernel and reported with the socket read (addresses, ports, protocol,
// family, state); its connect to 127.0.0.1 goes through and only the
// reporting hook sees it. It runs with each mechanism of kernel functions
// the kernel offers. Where the kernel has no kprobes (nor usable fentry),
// the policy still compiles and is refused naming what is missing.
func TestKprobeSockArgument(t *testing.T) {
	testenv.RequireBPF(t)
	port := loopbackListener(t)
	prog, err := policy.Compile(tcpConnectPolicy(port))
	if err != nil {
		t.Fatal(err)
	}
	if prog.Hooks[0].Args[0].Kind != policy.ArgSock {
		t.Fatalf("argument compiled as %v", prog.Hooks[0].Args[0].Kind)
	}
	if !testenv.KernelHas(t, kernel.FeatureKprobe) {
		s, err := kernel.LoadSensor(kernel.SensorOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, err = s.InstallPolicy(prog, nil)
		if err == nil || !errors.Is(err, kernel.ErrMissingFeature) ||
			!strings.Contains(err.Error(), "spec.kprobes[0].call: kprobes are not available on this kernel") || !strings.Contains(err.Error(), "CONFIG_KPROBES") {
			t.Fatalf("install on a kernel without kprobes: %v", err)
		}
		return
	}
	for _, fentry := range []bool{false, true} {
		name := "kprobe"
		if fentry {
			name = "fentry"
		}
		t.Run(name, func(t *testing.T) {
			if fentry && !testenv.KernelHas(t, kernel.FeatureFentry) {
				testenv.Unavailable(t, "this kernel cannot load fentry programs")
			}
			testSockArgument(t, prog, port, fentry)
		})
	}
}

func testSockArgument(t *testing.T, prog *policy.Program, port int, fentry bool) {
	s, err := kernel.LoadSensor(kernel.SensorOptions{RingBufferSize: 1 << 21, PreferFentry: fentry})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ph, err := s.InstallPolicy(prog, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ih := range ph.Hooks {
		if got := ih.Mechanism; fentry != (got == "fentry") {
			t.Errorf("%s attached with %s", ih.Hook.Path, got)
		}
	}
	bash := func(addr string) (*exec.Cmd, error) {
		cmd := exec.Command("/bin/bash", "-c", fmt.Sprintf("echo > /dev/tcp/%s/%d", addr, port))
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil {
			t.Fatalf("bash did not run: %v %s", err, out)
		}
		return cmd, err
	}
	var killed, allowed *exec.Cmd
	recs := hookRecords(t, s, func() []int {
		killed, _ = bash("127.0.0.2")
		if ws := killed.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("bash connecting to 127.0.0.2: %v, want killed by SIGKILL", killed.ProcessState)
		}
		var err error
		if allowed, err = bash("127.0.0.1"); err != nil {
			t.Errorf("bash connecting to 127.0.0.1: %v", err)
		}
		return []int{killed.ProcessState.Pid(), allowed.ProcessState.Pid()}
	})
	byHook := map[uint32][]*kernel.HookRecord{}
	for _, r := range recs {
		byHook[r.HookID] = append(byHook[r.HookID], r)
	}
	check := func(what string, recs []*kernel.HookRecord, cmd *exec.Cmd, dst string, signal uint32) {
		t.Helper()
		if len(recs) != 1 {
			t.Errorf("%s: records %+v, want one", what, recs)
			return
		}
		r := recs[0]
		if int(r.PID) != cmd.ProcessState.Pid() || r.Signal != signal {
			t.Errorf("%s: record of pid %d with signal %d, want pid %d, signal %d", what, r.PID, r.Signal, cmd.ProcessState.Pid(), signal)
		}
		sk := r.Args[0].Sock
		if sk == nil {
			t.Fatalf("%s: no sock decoded: %+v", what, r.Args[0])
		}
		if sk.Family != syscall.AF_INET || sk.Protocol != syscall.IPPROTO_TCP || sk.State != 2 /* TCP_SYN_SENT */ {
			t.Errorf("%s: family %d, protocol %d, state %d; want AF_INET, IPPROTO_TCP, TCP_SYN_SENT", what, sk.Family, sk.Protocol, sk.State)
		}
		if want := netip.MustParseAddrPort(fmt.Sprintf("%s:%d", dst, port)); sk.Destination != want {
			t.Errorf("%s: destination %v, want %v", what, sk.Destination, want)
		}
		if src := sk.Source; !netip.MustParsePrefix("127.0.0.0/8").Contains(src.Addr()) || src.Port() < 1024 {
			t.Errorf("%s: source %v, want an ephemeral port of 127/8", what, src)
		}
		if want := "tcp " + sk.Source.String() + " -> " + sk.Destination.String(); r.Args[0].Str != want {
			t.Errorf("%s: argument text %q, want %q", what, r.Args[0].Str, want)
		}
	}
	check("kill hook", byHook[ph.Hooks[0].ID], killed, "127.0.0.2", uint32(syscall.SIGKILL))
	check("report hook", byHook[ph.Hooks[1].ID], allowed, "127.0.0.1", 0)
}

// TestSockString: a sock argument reads as tetra prints a connection.
func TestSockString(t *testing.T) {
	for _, tt := range []struct {
		sock kernel.Sock
		want string
	}{
		{kernel.Sock{Family: syscall.AF_INET, Protocol: syscall.IPPROTO_TCP, State: 2,
			Source: netip.MustParseAddrPort("10.0.0.5:43122"), Destination: netip.MustParseAddrPort("104.198.14.52:443")},
			"tcp 10.0.0.5:43122 -> 104.198.14.52:443"},
		{kernel.Sock{Family: syscall.AF_INET6, Protocol: syscall.IPPROTO_UDP,
			Source: netip.MustParseAddrPort("[fd00::5]:5353"), Destination: netip.MustParseAddrPort("[2001:db8::1]:53")},
			"udp [fd00::5]:5353 -> [2001:db8::1]:53"},
		{kernel.Sock{Family: syscall.AF_INET, Protocol: 99,
			Source: netip.MustParseAddrPort("0.0.0.0:0"), Destination: netip.MustParseAddrPort("0.0.0.0:0")},
			"ipproto-99 0.0.0.0:0 -> 0.0.0.0:0"},
		{kernel.Sock{Family: syscall.AF_UNIX}, "family 1 protocol 0"},
	} {
		if got := tt.sock.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.sock, got, tt.want)
		}
	}
}

// TestKprobeSockIPv6 hooks tcp_connect with address lists that mix IPv4 and
// IPv6 CIDRs. The kill hook's NotDAddr spares 127/8 and [::1]: bash's
// connects to 127.0.0.1 and [::1] go through, while its connect to the
// v4-mapped [::ffff:127.0.0.2], an AF_INET6 socket whose address meets only
// the IPv6 CIDRs, is killed. The report hook sees the [::1] connect alone,
// by its IPv6 source and destination.
func TestKprobeSockIPv6(t *testing.T) {
	testenv.RequireBPF(t)
	port := dualStackListener(t)
	bash := []policy.BinarySelector{{Operator: "In", Values: []string{"/bin/bash"}}}
	sock := []policy.ArgSpec{{Index: 0, Type: "sock"}}
	s, ph, ok := installIfSupported(t, &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "connect-ipv6"},
		Spec: policy.Spec{KProbes: []policy.KProbeSpec{{
			Call: "tcp_connect", Args: sock,
			Selectors: []policy.SelectorSpec{{
				MatchBinaries: bash,
				MatchArgs: []policy.ArgSelector{
					{Index: 0, Operator: "NotDAddr", Values: []string{"127.0.0.0/8", "::1"}},
					{Index: 0, Operator: "DPort", Values: []string{fmt.Sprint(port)}},
				},
				MatchActions: []policy.ActionSelector{{Action: "Sigkill"}},
			}},
		}, {
			Call: "tcp_connect", Args: sock,
			Selectors: []policy.SelectorSpec{{
				MatchBinaries: bash,
				MatchArgs: []policy.ArgSelector{
					{Index: 0, Operator: "DAddr", Values: []string{"10.0.0.0/8", "::1/128"}},
					{Index: 0, Operator: "SAddr", Values: []string{"::1"}},
					{Index: 0, Operator: "Family", Values: []string{"AF_INET6"}},
				},
			}},
		}}},
	}, testenv.KernelHas(t, kernel.FeatureKprobe) || testenv.KernelHas(t, kernel.FeatureFentry), "kprobe")
	if !ok {
		return
	}
	run := func(addr string) *exec.Cmd {
		cmd := exec.Command("/bin/bash", "-c", fmt.Sprintf("echo > /dev/tcp/%s/%d", addr, port))
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil {
			t.Fatalf("bash did not run: %v %s", err, out)
		}
		return cmd
	}
	cmds := map[string]*exec.Cmd{}
	recs := hookRecords(t, s, func() []int {
		var pids []int
		for _, addr := range []string{"127.0.0.1", "::1", "::ffff:127.0.0.2"} {
			cmds[addr] = run(addr)
			pids = append(pids, cmds[addr].ProcessState.Pid())
		}
		return pids
	})
	for addr, cmd := range cmds {
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if killed := ws.Signaled() && ws.Signal() == syscall.SIGKILL; killed != (addr == "::ffff:127.0.0.2") {
			t.Errorf("bash to %s: %v", addr, cmd.ProcessState)
		}
	}
	got := map[string]string{}
	for _, r := range recs {
		for addr, cmd := range cmds {
			if int(r.PID) == cmd.ProcessState.Pid() {
				hook := "kill"
				if r.HookID == ph.Hooks[1].ID {
					hook = "report"
				}
				got[addr] = hook
				if sk := r.Args[0].Sock; sk == nil || sk.Family != syscall.AF_INET6 || sk.Destination != netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port)) {
					t.Errorf("bash to %s: sock %+v", addr, r.Args[0].Sock)
				}
			}
		}
	}
	if want := map[string]string{"::1": "report", "::ffff:127.0.0.2": "kill"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records by destination %v, want %v", got, want)
	}
}

// TestTrackSock ties a socket to the process that connected it: TrackSock
// on bash's tcp_connect to port, then the socket's tcp_close runs in the
// child that held it last (bash left it to a background sleep), and the
// tcp_close event reports bash, not the child. The same connect to an
// untracked port (control) reports the child, as without tracking;
// UntrackSock at tcp_close forgets the tracked socket.
func TestTrackSock(t *testing.T) {
	testenv.RequireBPF(t)
	port, control := loopbackListener(t), loopbackListener(t)
	sock := []policy.ArgSpec{{Index: 0, Type: "sock"}}
	ports := []string{fmt.Sprint(port), fmt.Sprint(control)}
	s, ph, ok := installIfSupported(t, &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "track-sock"},
		Spec: policy.Spec{KProbes: []policy.KProbeSpec{{
			Call: "tcp_connect", Args: sock,
			Selectors: []policy.SelectorSpec{{
				MatchArgs:    []policy.ArgSelector{{Index: 0, Operator: "DPort", Values: []string{fmt.Sprint(port)}}},
				MatchActions: []policy.ActionSelector{{Action: "TrackSock", ArgSock: 0}},
			}},
		}, {
			Call: "tcp_close", Args: sock,
			Selectors: []policy.SelectorSpec{{
				MatchArgs:    []policy.ArgSelector{{Index: 0, Operator: "DPort", Values: ports}},
				MatchActions: []policy.ActionSelector{{Action: "UntrackSock", ArgSock: 0}},
			}},
		}}},
	}, testenv.KernelHas(t, kernel.FeatureKprobe) || testenv.KernelHas(t, kernel.FeatureFentry), "kprobe")
	if !ok {
		return
	}
	// bash connects, starts a sleep that inherits the socket, and exits:
	// the socket closes when the sleep does. Output waits for the sleep,
	// which holds the pipe too.
	run := func(port int) (bash, child int) {
		cmd := exec.Command("/bin/bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d; /bin/sh -c 'exec sleep 0.3' & echo $!", port))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bash: %v %s", err, out)
		}
		if _, err := fmt.Sscan(string(out), &child); err != nil {
			t.Fatalf("bash printed %q", out)
		}
		return cmd.ProcessState.Pid(), child
	}
	var bash, child, ctlBash, ctlChild int
	recs := hookRecords(t, s, func() []int {
		bash, child = run(port)
		ctlBash, ctlChild = run(control)
		return []int{bash, child, ctlBash, ctlChild}
	})
	closes := map[int]int{} // destination port -> reported pid
	for _, r := range recs {
		if r.HookID == ph.Hooks[1].ID && r.Args[0].Sock != nil {
			closes[int(r.Args[0].Sock.Destination.Port())] = int(r.PID)
		}
	}
	if got := closes[port]; got != bash {
		t.Errorf("tracked socket's close reported by pid %d, want bash (%d), not the child (%d)", got, bash, child)
	}
	if got := closes[control]; got != ctlChild {
		t.Errorf("untracked socket's close reported by pid %d, want the child (%d)", got, ctlChild)
	}
}

// TestTrackReturnedSock: Tetragon's sk_alloc pattern. The sock sk_alloc
// returns is read at return (returnArg of type sock) and tracked
// (returnArgAction: TrackSock): when it closes later in the child bash
// left it to, tcp_close reports bash, which made it. The returned sock is
// the event's last argument, its family read from the kernel.
func TestTrackReturnedSock(t *testing.T) {
	testenv.RequireBPF(t)
	port := loopbackListener(t)
	s, ph, ok := installIfSupported(t, &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "track-returned-sock"},
		Spec: policy.Spec{KProbes: []policy.KProbeSpec{{
			Call: "sk_alloc", Return: true,
			Args:            []policy.ArgSpec{{Index: 1, Type: "int", Label: "family"}},
			ReturnArg:       &policy.ArgSpec{Index: 0, Type: "sock"},
			ReturnArgAction: "TrackSock",
			Selectors: []policy.SelectorSpec{{
				MatchArgs:     []policy.ArgSelector{{Index: 1, Operator: "Equal", Values: []string{"2"}}},
				MatchBinaries: []policy.BinarySelector{{Operator: "Postfix", Values: []string{"/bash"}}},
			}},
		}, {
			Call: "tcp_close", Args: []policy.ArgSpec{{Index: 0, Type: "sock"}},
			Selectors: []policy.SelectorSpec{{
				MatchArgs:    []policy.ArgSelector{{Index: 0, Operator: "DPort", Values: []string{fmt.Sprint(port)}}},
				MatchActions: []policy.ActionSelector{{Action: "UntrackSock", ArgSock: 0}},
			}},
		}}},
	}, testenv.KernelHas(t, kernel.FeatureKprobe), "kprobe")
	if !ok {
		return
	}
	var bash, child int
	recs := hookRecords(t, s, func() []int {
		cmd := exec.Command("/bin/bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d; /bin/sh -c 'exec sleep 0.3' & echo $!", port))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bash: %v %s", err, out)
		}
		if _, err := fmt.Sscan(string(out), &child); err != nil {
			t.Fatalf("bash printed %q", out)
		}
		bash = cmd.ProcessState.Pid()
		return []int{bash, child}
	})
	allocs, closedBy := 0, 0
	for _, r := range recs {
		switch r.HookID {
		case ph.Hooks[0].ID:
			if sk := r.Args[1].Sock; sk != nil && sk.Family == unix.AF_INET && r.Args[0].Int == unix.AF_INET {
				allocs++
			}
		case ph.Hooks[1].ID:
			closedBy = int(r.PID)
		}
	}
	if allocs == 0 {
		t.Errorf("no sk_alloc of bash's AF_INET socket reported with the returned sock among %d records", len(recs))
	}
	if closedBy != bash {
		t.Errorf("the returned and tracked socket's close reported by pid %d, want bash (%d), not the child (%d)", closedBy, bash, child)
	}
}
