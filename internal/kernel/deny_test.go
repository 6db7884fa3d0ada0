package kernel_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/testenv"
)

// denySensor loads a sensor pinning its deny lists in a directory of its
// own, and opens them as another process would.
func denySensor(t *testing.T) (*kernel.Sensor, *kernel.DenyLists) {
	t.Helper()
	testenv.RequireBPF(t)
	pin := fmt.Sprintf("/sys/fs/bpf/vigil-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	// The directory is made before the load can fail: remove it either way.
	t.Cleanup(func() { os.RemoveAll(pin) })
	s, err := kernel.LoadSensor(kernel.SensorOptions{PinPath: pin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	d, err := kernel.OpenDenyLists(pin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return s, d
}

func TestDenyExecKillsAtExec(t *testing.T) {
	s, d := denySensor(t)
	entry := kernel.DenyEntry{Kind: kernel.DenyExec, Binary: "/usr/bin/printenv", Rule: 7}
	if err := d.Add(entry); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/printenv", "HOME")
	out, err := cmd.Output()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL || len(out) != 0 {
		t.Fatalf("a denied binary ran: %v, output %q", err, out)
	}
	ex := collect(t, s, func(r any) bool { e, ok := r.(*kernel.ExecRecord); return ok && e.PID == uint32(cmd.Process.Pid) }).(*kernel.ExecRecord)
	if !ex.Denied {
		t.Errorf("the exec record does not say it was denied")
	}
	list, err := d.List()
	if err != nil || len(list) != 1 || list[0].Binary != entry.Binary || list[0].Rule != 7 {
		t.Fatalf("list %+v, %v", list, err)
	}
	if err := d.Remove(entry); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/bin/printenv", "HOME").Output(); err != nil || len(out) == 0 {
		t.Errorf("after removal: %v %q", err, out)
	}
}

func TestDenyExecEntriesExpire(t *testing.T) {
	_, d := denySensor(t)
	if err := d.Add(kernel.DenyEntry{Kind: kernel.DenyExec, Binary: "/usr/bin/printenv", Expires: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("/usr/bin/printenv", "HOME").Run(); err != nil {
		t.Errorf("an expired entry still applies: %v", err)
	}
	if n, err := d.Expire(time.Now()); n != 1 || err != nil {
		t.Errorf("Expire removed %d, %v", n, err)
	}
}

func TestDenyConnectRefusesTheDestination(t *testing.T) {
	s, d := denySensor(t)
	if err := s.EnableConnectDeny(); err != nil {
		t.Fatal(err)
	}
	port := loopbackListener(t)
	entry := kernel.DenyEntry{Kind: kernel.DenyConnect, Prefix: netip.MustParsePrefix("127.0.0.2/32"), Port: uint16(port)}
	if err := d.Add(entry); err != nil {
		t.Fatal(err)
	}
	dial := func(addr string) error {
		c, err := net.Dial("tcp4", net.JoinHostPort(addr, strconv.Itoa(port)))
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial("127.0.0.2"); !errors.Is(err, syscall.EPERM) {
		t.Errorf("connect to a denied destination: %v, want EPERM", err)
	}
	if err := dial("127.0.0.1"); err != nil {
		t.Errorf("connect to 127.0.0.1: %v", err)
	}
	if err := d.Remove(entry); err != nil {
		t.Fatal(err)
	}
	if err := dial("127.0.0.2"); err != nil {
		t.Errorf("after removal: %v", err)
	}
}
