package kernel_test

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
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
	if got := kernel.SockaddrString(uint64(recs[0].Args[1].Int)); got != fmt.Sprintf("127.0.0.2:%d", port) {
		t.Errorf("reported address %s", got)
	}
}

// loopbackListener accepts and closes TCP connections on every loopback
// address (127.0.0.1 and 127.0.0.2 alike) until the test ends, and returns
// its port.
func loopbackListener(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
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
