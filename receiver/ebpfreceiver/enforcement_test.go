package ebpfreceiver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// openatPolicy is a policy named name on openat of path, whose selector
// takes the given matchActions entry (YAML under "- action:").
func openatPolicy(name, path, action string) string {
	return fmt.Sprintf(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: %s
spec:
  kprobes:
  - call: "sys_openat"
    syscall: true
    args:
    - index: 1
      type: "string"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "%s"
      matchActions:
      - action: %s
`, name, path, action)
}

// startWithPolicy starts a receiver on a policy directory holding text,
// and waits until the policy named name runs.
func startWithPolicy(t *testing.T, name, text string) (*ebpfReceiver, *consumertest.LogsSink) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "policies")
	os.Mkdir(dir, 0o755)
	writePolicy(t, dir, "policy.yaml", text)
	cfg := createDefaultConfig().(*Config)
	cfg.Policies = []string{dir}
	r, sink, _ := startReceiver(t, cfg)
	waitForStatus(t, r, name, func(st policy.Status) bool { return st.Running }, 5*time.Second)
	return r, sink
}

// kernelAudits are the enforcement.action records aimed at pid.
func kernelAudits(pid int) func(record) bool {
	return func(r record) bool {
		return r.lr.EventName() == event.NameEnforcementAction && r.int(event.AttrTargetPID) == int64(pid)
	}
}

// kernelAudit waits for the enforcement.action record of pid, then for a
// marker, and returns it with how many such records arrived in all.
func kernelAudit(t *testing.T, sink *consumertest.LogsSink, pid int) (record, int) {
	t.Helper()
	a := waitFor(t, sink, "enforcement.action", kernelAudits(pid))
	passMarker(t, sink)
	n := 0
	findRecord(sink, func(r record) bool {
		if kernelAudits(pid)(r) {
			n++
		}
		return false
	})
	return a, n
}

// TestKernelSigkillIsAuditedOnce: a TracingPolicy's in-kernel Sigkill
// yields its hook event and exactly one enforcement.action record.
func TestKernelSigkillIsAuditedOnce(t *testing.T) {
	dir := t.TempDir()
	forbidden := filepath.Join(dir, "forbidden")
	os.WriteFile(forbidden, []byte("x"), 0o644)
	name := fmt.Sprintf("kill-on-open-%d", time.Now().UnixNano())
	_, sink := startWithPolicy(t, name, openatPolicy(name, forbidden, "Sigkill"))

	cmd := exec.Command("/bin/cat", forbidden)
	err := cmd.Run()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("cat was not killed: %v", err)
	}
	pid := cmd.ProcessState.Pid()
	hook := waitFor(t, sink, "process.kprobe", isEvent(event.NameProcessKprobe, pid))
	a, n := kernelAudit(t, sink, pid)
	if n != 1 {
		t.Fatalf("%d enforcement.action records, want exactly 1", n)
	}
	for k, want := range map[string]string{
		event.AttrSecurityRuleName: name, event.AttrEnforcementSource: "kernel",
		event.AttrEnforcementAction: "Sigkill", event.AttrEnforcementSignal: "SIGKILL",
		event.AttrEnforcementResult: "taken", event.AttrEnforcementReason: "policy_selector",
		event.AttrEnforcementMode: "enforce", event.AttrTargetBinary: "/bin/cat",
		event.AttrExecID: hook.str(event.AttrExecID),
	} {
		if got := a.str(k); got != want {
			t.Errorf("audit %s = %q, want %q", k, got, want)
		}
	}
	t.Logf("audit record: %s %v", a.lr.Body().Str(), a.lr.Attributes().AsRaw())
}

// TestDeniedExecIsAudited: an exec the exec deny list kills at exec yields
// one enforcement.action record. The entry is for a copy of a binary of the
// test's own, in the receiver's deny list, pinned in the test's own directory.
func TestDeniedExecIsAudited(t *testing.T) {
	r, sink, _ := startReceiver(t, createDefaultConfig().(*Config))
	bin := filepath.Join(t.TempDir(), fmt.Sprintf("printenv-%d", time.Now().UnixNano()))
	data, err := os.ReadFile("/usr/bin/printenv")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bin, data, 0o755)
	d, err := kernel.OpenDenyLists(r.cfg.PinPath)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	entry := kernel.DenyEntry{Kind: kernel.DenyExec, Binary: bin, Expires: time.Now().Add(time.Minute)}
	if err := d.Add(entry); err != nil {
		t.Fatal(err)
	}
	defer d.Remove(entry)

	cmd := exec.Command(bin, "HOME")
	err = cmd.Run()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the denied binary ran: %v", err)
	}
	pid := cmd.ProcessState.Pid()
	a, n := kernelAudit(t, sink, pid)
	if n != 1 || a.str(event.AttrSecurityRuleName) != "deny_exec" || a.str(event.AttrEnforcementAction) != "deny_exec" ||
		a.str(event.AttrEnforcementReason) != "deny_list" || a.str(event.AttrTargetBinary) != bin {
		t.Fatalf("%d records; audit %v", n, a.lr.Attributes().AsRaw())
	}
}

// TestDeniedConnectIsAudited refuses an IPv6 connect of the test's own
// through the connect deny list: the receiver audits the refusal.
func TestDeniedConnectIsAudited(t *testing.T) {
	r, sink, _ := startReceiver(t, createDefaultConfig().(*Config))
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	d, err := kernel.OpenDenyLists(r.cfg.PinPath)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	entry := kernel.DenyEntry{Kind: kernel.DenyConnect, Prefix: netip.MustParsePrefix("::1/128"), Port: uint16(port),
		Expires: time.Now().Add(time.Minute)}
	if err := d.Add(entry); err != nil {
		t.Fatal(err)
	}
	defer d.Remove(entry)

	if c, err := net.Dial("tcp6", ln.Addr().String()); !errors.Is(err, syscall.EPERM) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("connect to a denied destination: %v, want EPERM", err)
	}
	a, n := kernelAudit(t, sink, os.Getpid())
	if n != 1 || a.str(event.AttrSecurityRuleName) != "deny_connect" || a.str(event.AttrEnforcementAction) != "deny_connect" ||
		a.str(event.AttrEnforcementReason) != "deny_list" || a.str(event.AttrTargetDestination) != fmt.Sprintf("[::1]:%d", port) {
		t.Fatalf("%d records; audit %v", n, a.lr.Attributes().AsRaw())
	}
}

const overridePolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: %s
spec:
  kprobes:
  - call: "sys_connect"
    syscall: true
    args:
    - index: 0
      type: "int"
    - index: 1
      type: "sockaddr"
    selectors:
    - matchBinaries:
      - operator: "In"
        values:
        - "%s"
      matchArgs:
      - index: 1
        operator: "NotSAddr"
        values:
        - "127.0.0.1"
      matchActions:
      - action: Override
        argError: -1
`

// TestKernelConnectRefusalIsAudited: a connect refused by a policy's
// Override on the cgroup connect hook yields one enforcement.action record.
func TestKernelConnectRefusalIsAudited(t *testing.T) {
	dir := t.TempDir()
	// A bash of the test's own, so that the policy refuses no one else.
	bash := filepath.Join(dir, "bash")
	data, err := os.ReadFile("/usr/bin/bash")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bash, data, 0o755)
	name := fmt.Sprintf("refuse-connect-%d", time.Now().UnixNano())
	_, sink := startWithPolicy(t, name, fmt.Sprintf(overridePolicy, name, bash))

	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	cmd := exec.Command(bash, "-c", fmt.Sprintf("echo > /dev/tcp/127.0.0.2/%d", port))
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "Operation not permitted") {
		t.Fatalf("connect to 127.0.0.2: %v %q, want EPERM", err, out)
	}
	pid := cmd.ProcessState.Pid()
	a, n := kernelAudit(t, sink, pid)
	if n != 1 || a.str(event.AttrSecurityRuleName) != name || a.str(event.AttrEnforcementAction) != "Override" ||
		a.str(event.AttrTargetDestination) != fmt.Sprintf("127.0.0.2:%d", port) {
		t.Fatalf("%d records; audit %v", n, a.lr.Attributes().AsRaw())
	}
}

// TestKernelSyscallOverrideIsAudited: an openat refused by a syscall
// hook's Override (fmod_ret on the syscall's function) reports the event
// with vigil.action Override and one enforcement.action record. Where the
// kernel has no fmod_ret, the policy is refused naming it and nothing runs.
func TestKernelSyscallOverrideIsAudited(t *testing.T) {
	dir := t.TempDir()
	forbidden := filepath.Join(dir, "forbidden")
	os.WriteFile(forbidden, []byte("x"), 0o644)
	policies := filepath.Join(dir, "policies")
	os.Mkdir(policies, 0o755)
	name := fmt.Sprintf("refuse-open-%d", time.Now().UnixNano())
	writePolicy(t, policies, "open.yaml", fmt.Sprintf(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: %s
spec:
  kprobes:
  - call: sys_openat
    syscall: true
    args: [{index: 1, type: string}]
    selectors:
    - matchArgs: [{index: 1, operator: Equal, values: [%q]}]
      matchActions: [{action: Override, argError: -13}]
`, name, forbidden))
	cfg := createDefaultConfig().(*Config)
	cfg.Policies = []string{policies}
	r, sink, _ := startReceiver(t, cfg)
	st := waitForStatus(t, r, name, func(st policy.Status) bool { return st.Running || st.Error != "" }, 5*time.Second)
	if !testenv.KernelHas(t, kernel.FeatureSyscallFmodRet) {
		if st.Running || !strings.Contains(st.Error, "fmod_ret") {
			t.Fatalf("on a kernel without fmod_ret: %+v, want a refusal naming it", st)
		}
		return
	}
	if !st.Running || st.Hooks[0].Mechanism != kernel.SyscallFmodRet {
		t.Fatalf("status %+v", st)
	}
	cmd := exec.Command("/bin/cat", forbidden)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Fatalf("cat of the forbidden file: %v %q, want EACCES", err, out)
	}
	pid := cmd.ProcessState.Pid()
	ev := waitFor(t, sink, "the refused open", func(r record) bool {
		return r.lr.EventName() == event.NameProcessKprobe && r.int(event.AttrProcessPID) == int64(pid)
	})
	if got := ev.str(event.AttrAction); got != "Override" {
		t.Errorf("vigil.action %q, want Override", got)
	}
	a, n := kernelAudit(t, sink, pid)
	if n != 1 || a.str(event.AttrSecurityRuleName) != name || a.str(event.AttrEnforcementAction) != "Override" {
		t.Fatalf("%d records; audit %v", n, a.lr.Attributes().AsRaw())
	}
}
