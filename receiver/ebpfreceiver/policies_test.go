package ebpfreceiver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
)

const openPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: watch-open
spec:
  kprobes:
  - call: "sys_openat"
    syscall: true
    message: "watched file opened"
    tags: ["test"]
    args:
    - index: 1
      type: "string"
    - index: 2
      type: "int"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "%s"
`

func writePolicy(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	// Rename, as editors and ConfigMap updates do: the file is never seen
	// half written.
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func catFile(t *testing.T, path string) int {
	t.Helper()
	cmd := exec.Command("/bin/cat", path)
	cmd.Stdout = nil
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.Pid()
}

func TestPolicyEventsAndHotReload(t *testing.T) {
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies")
	os.Mkdir(policies, 0o755)
	first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")
	os.WriteFile(first, []byte("1"), 0o644)
	os.WriteFile(second, []byte("2"), 0o644)
	writePolicy(t, policies, "watch.yaml", fmt.Sprintf(openPolicy, first))

	cfg := createDefaultConfig().(*Config)
	cfg.Policies = []string{policies}
	cfg.PolicyReloadInterval = 100 * time.Millisecond
	r, sink, _ := startReceiver(t, cfg)

	pid := catFile(t, first)
	ev := waitFor(t, sink, "process.kprobe", isEvent(event.NameProcessKprobe, pid))
	for k, want := range map[string]string{
		event.AttrSecurityRuleName:      "watch-open",
		event.AttrHook:                  "sys_openat",
		event.AttrAction:                "Post",
		event.AttrFilePath:              first,
		event.AttrMessage:               "watched file opened",
		event.AttrProcessExecutablePath: "/bin/cat",
	} {
		if got := ev.str(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if line := event.Compact(ev.resource, ev.lr, false); !strings.HasPrefix(line, "📬 open ") || !strings.HasSuffix(line, " /bin/cat "+first) {
		t.Errorf("compact line %q", line)
	}

	// A change takes effect without a restart.
	writePolicy(t, policies, "watch.yaml", fmt.Sprintf(openPolicy, second))
	waitForStatus(t, r, "watch-open", func(st policyStatus) bool { return st.Running && st.Error == "" }, 0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		// The switch happens within a reload interval; until then the
		// second file is not watched yet.
		pid := catFile(t, second)
		if appearsWithin(300*time.Millisecond, sink, isEvent(event.NameProcessKprobe, pid)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edited policy never reported the second file; statuses %+v", r.policies.statuses())
		}
	}
	if pid := catFile(t, first); appearsWithin(500*time.Millisecond, sink, isEvent(event.NameProcessKprobe, pid)) {
		t.Error("the first file is still reported after the edit")
	}

	// A broken edit is refused and the running version stays.
	writePolicy(t, policies, "watch.yaml", strings.Replace(fmt.Sprintf(openPolicy, second), `operator: "Equal"`, `operator: "Equals"`, 1))
	st := waitForStatus(t, r, "watch-open", func(st policyStatus) bool { return st.Error != "" }, 5*time.Second)
	if !st.Running || !strings.Contains(st.Error, "spec.kprobes[0].selectors[0].matchArgs[0].operator") {
		t.Errorf("status after a broken edit: %+v", st)
	}
	// `vigil policy status` reads the same from the status file.
	report, err := policy.ReadStatusFile(r.cfg.StatusFile)
	if err != nil {
		t.Fatal(err)
	}
	syscallMechanisms := []string{kernel.SyscallKprobeMulti, kernel.SyscallKprobe, kernel.SyscallFentry, kernel.SyscallTracepoints}
	if len(report.Policies) != 1 || report.Policies[0].Error != st.Error || !report.Policies[0].Running ||
		len(report.Policies[0].Hooks) != 1 || !slices.Contains(syscallMechanisms, report.Policies[0].Hooks[0].Mechanism) {
		t.Errorf("status file %s: %+v, want the running policy with the refusal %q", r.cfg.StatusFile, report, st.Error)
	}
	if pid := catFile(t, second); !appearsWithin(5*time.Second, sink, isEvent(event.NameProcessKprobe, pid)) {
		t.Error("the running version stopped after a broken edit")
	}

	// Removing the file removes the policy.
	os.Remove(filepath.Join(policies, "watch.yaml"))
	waitForStatus(t, r, "", func(policyStatus) bool { return len(r.policies.statuses()) == 0 }, 5*time.Second)
	if pid := catFile(t, second); appearsWithin(500*time.Millisecond, sink, isEvent(event.NameProcessKprobe, pid)) {
		t.Error("a removed policy still reports")
	}
}

func waitForStatus(t *testing.T, r *ebpfReceiver, name string, ok func(policyStatus) bool, within time.Duration) policyStatus {
	t.Helper()
	if within == 0 {
		within = 5 * time.Second
	}
	deadline := time.Now().Add(within)
	for {
		for _, st := range r.policies.statuses() {
			if (name == "" || st.Name == name) && ok(st) {
				return st
			}
		}
		if name == "" && ok(policyStatus{}) {
			return policyStatus{}
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy %q: status %+v", name, r.policies.statuses())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A policy for some pods cannot be honoured without the cluster's metadata:
// it is refused by the field that asks for pods, and nothing else changes.
func TestPodScopedPolicyWithoutKubernetesIsRefused(t *testing.T) {
	dir := t.TempDir()
	scoped := strings.Replace(fmt.Sprintf(openPolicy, "/nonexistent"), "spec:\n", "spec:\n  podSelector: {matchLabels: {app: web}}\n", 1)
	writePolicy(t, dir, "scoped.yaml", scoped)
	cfg := createDefaultConfig().(*Config)
	cfg.Policies = []string{dir}
	r, _, _ := startReceiver(t, cfg)
	st := waitForStatus(t, r, "watch-open", func(st policyStatus) bool { return st.Error != "" }, 5*time.Second)
	if st.Running || !strings.HasPrefix(st.Error, "spec.podSelector: ") || !strings.Contains(st.Error, "k8s_metadata") {
		t.Errorf("status %+v: want refused at spec.podSelector, naming k8s_metadata", st)
	}
}
