package kernel_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/testenv"
)

// denySensor loads a sensor pinning its deny lists in a directory of its
// own, and opens them as another process would.
func denySensor(t *testing.T) (*kernel.Sensor, *kernel.DenyLists) {
	t.Helper()
	testenv.RequireBPF(t)
	// The directory is made before the load can fail: removed either way.
	pin := testenv.PinPath(t)
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

// TestDenyConnectRefusesIPv6AndMappedDestinations denies ::1 on one port,
// then 127.0.0.2 to an IPv6 socket that reaches it by its v4-mapped
// address (a dual-stack socket): both connects fail with EPERM, and the
// same connects work once the entries are gone.
func TestDenyConnectRefusesIPv6AndMappedDestinations(t *testing.T) {
	s, d := denySensor(t)
	if err := s.EnableConnectDeny(); err != nil {
		t.Fatal(err)
	}
	// Dual-stack: it accepts IPv6 and v4-mapped connects.
	port := acceptingListener(t, "tcp", "[::]:0")
	connect6 := func(addr string) error {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		return unix.Connect(fd, &unix.SockaddrInet6{Port: port, Addr: netip.MustParseAddr(addr).As16()})
	}
	for _, c := range []struct{ entry, dial, other string }{
		{"::1/128", "::1", "::ffff:127.0.0.1"},
		// The IPv4 list, met through the v4-mapped address.
		{"127.0.0.2/32", "::ffff:127.0.0.2", "::1"},
	} {
		prefix, err := kernel.ParseDestination(c.entry)
		if err != nil {
			t.Fatal(err)
		}
		entry := kernel.DenyEntry{Kind: kernel.DenyConnect, Prefix: prefix, Port: uint16(port), Rule: uint64(port)}
		if err := d.Add(entry); err != nil {
			t.Fatal(err)
		}
		if err := connect6(c.dial); !errors.Is(err, syscall.EPERM) {
			t.Errorf("deny %s: connect to %s: %v, want EPERM", c.entry, c.dial, err)
		}
		// The IPv4 entry is reported with the IPv4 address it refused.
		want := netip.AddrPortFrom(netip.MustParseAddr(c.dial).Unmap(), uint16(port))
		if r := connectRefusal(t, s); r.PID != uint32(os.Getpid()) || r.Destination != want || r.Rule != entry.Rule {
			t.Errorf("deny %s: refusal record %+v, want pid %d, destination %s, rule %d", c.entry, r, os.Getpid(), want, entry.Rule)
		}
		if err := connect6(c.other); err != nil {
			t.Errorf("deny %s: connect to %s: %v", c.entry, c.other, err)
		}
		listed, err := d.List()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(listed, func(e kernel.DenyEntry) bool { return e.Prefix == prefix && e.Port == uint16(port) }) {
			t.Errorf("deny %s: not in the listed entries %v", c.entry, listed)
		}
		if err := d.Remove(entry); err != nil {
			t.Fatal(err)
		}
		if err := connect6(c.dial); err != nil {
			t.Errorf("deny %s removed: connect to %s: %v", c.entry, c.dial, err)
		}
	}
}

// connectRefusal reads records until the sensor reports a refused connect.
func connectRefusal(t *testing.T, s *kernel.Sensor) *kernel.ConnectDeniedRecord {
	t.Helper()
	s.SetDeadline(time.Now().Add(5 * time.Second))
	defer s.SetDeadline(time.Time{})
	for {
		r, err := s.Read()
		if err != nil {
			t.Fatalf("no record of the refused connect: %v", err)
		}
		if c, ok := r.(*kernel.ConnectDeniedRecord); ok {
			return c
		}
	}
}
