package main

import (
	"bytes"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/testenv"
)

func enforcementCmd(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(append([]string{"enforcement"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestEnforcementListAndRemove(t *testing.T) {
	testenv.RequireBPF(t)
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
	defer d.Close()
	for _, e := range []kernel.DenyEntry{
		{Kind: kernel.DenyExec, Binary: "/opt/vigil-test/miner", Rule: 0xba933ed3831adc78, Expires: time.Now().Add(time.Hour)},
		{Kind: kernel.DenyConnect, Prefix: netip.MustParsePrefix("10.0.0.0/8"), Port: 443, Cgroup: 25, Rule: 7},
	} {
		if err := d.Add(e); err != nil {
			t.Fatal(err)
		}
	}

	code, out, errOut := enforcementCmd("list", "--pin-path", pin)
	if code != 0 {
		t.Fatalf("list: %d %s", code, errOut)
	}
	for _, want := range []string{
		"KIND", "exec     /opt/vigil-test/miner", "(in ", "0xba933ed3831adc78",
		"connect  10.0.0.0/8 --port 443 --cgroup 25", "never", "0x0000000000000007",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("vigil enforcement list:\n%s", out)

	if code, out, errOut := enforcementCmd("remove", "--pin-path", pin, "connect", "10.0.0.0/8", "--port", "443", "--cgroup", "25"); code != 0 {
		t.Fatalf("remove connect: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := enforcementCmd("remove", "--pin-path", pin, "exec", "/opt/vigil-test/miner"); code != 0 {
		t.Fatalf("remove exec: %d %s", code, errOut)
	}
	if code, _, errOut := enforcementCmd("remove", "--pin-path", pin, "exec", "/opt/vigil-test/miner"); code != 1 || !strings.Contains(errOut, "not in the deny list") {
		t.Errorf("removing a missing entry: %d %q", code, errOut)
	}
	if list, _ := d.List(); len(list) != 0 {
		t.Errorf("left %+v", list)
	}
}

func TestEnforcementErrors(t *testing.T) {
	if os.Geteuid() == 0 {
		code, _, errOut := enforcementCmd("list", "--pin-path", "/sys/fs/bpf/vigil-not-there")
		if code != 1 || !strings.Contains(errOut, "is the collector running") {
			t.Errorf("no pins: %d %q", code, errOut)
		}
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"remove", "exec"}, {"remove", "socket", "x"}, {"remove", "connect", "not-an-ip"}} {
		if code, _, errOut := enforcementCmd(args...); code != 2 || !strings.Contains(errOut, "usage") && !strings.Contains(errOut, "address or CIDR") {
			t.Errorf("%q: %d %q", args, code, errOut)
		}
	}
}
