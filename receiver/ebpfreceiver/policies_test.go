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

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.uber.org/zap/zaptest/observer"

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
	waitForStatus(t, r, "watch-open", func(st policy.Status) bool { return st.Running && st.Error == "" }, 0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		// The switch happens within a reload interval; until then the
		// second file is not watched yet.
		pid := catFile(t, second)
		if appearsWithin(300*time.Millisecond, sink, isEvent(event.NameProcessKprobe, pid)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edited policy never reported the second file; statuses %+v", r.engine.Statuses())
		}
	}
	if pid := catFile(t, first); appearsWithin(500*time.Millisecond, sink, isEvent(event.NameProcessKprobe, pid)) {
		t.Error("the first file is still reported after the edit")
	}

	// A broken edit is refused and the running version stays.
	writePolicy(t, policies, "watch.yaml", strings.Replace(fmt.Sprintf(openPolicy, second), `operator: "Equal"`, `operator: "Equals"`, 1))
	st := waitForStatus(t, r, "watch-open", func(st policy.Status) bool { return st.Error != "" }, 5*time.Second)
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
	waitForStatus(t, r, "", func(policy.Status) bool { return len(r.engine.Statuses()) == 0 }, 5*time.Second)
	if pid := catFile(t, second); appearsWithin(500*time.Millisecond, sink, isEvent(event.NameProcessKprobe, pid)) {
		t.Error("a removed policy still reports")
	}
}

func waitForStatus(t *testing.T, r *ebpfReceiver, name string, ok func(policy.Status) bool, within time.Duration) policy.Status {
	t.Helper()
	if within == 0 {
		within = 5 * time.Second
	}
	deadline := time.Now().Add(within)
	for {
		for _, st := range r.engine.Statuses() {
			if (name == "" || st.Name == name) && ok(st) {
				return st
			}
		}
		if name == "" && ok(policy.Status{}) {
			return policy.Status{}
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy %q: status %+v", name, r.engine.Statuses())
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
	st := waitForStatus(t, r, "watch-open", func(st policy.Status) bool { return st.Error != "" }, 5*time.Second)
	if st.Running || !strings.HasPrefix(st.Error, "spec.podSelector: ") || !strings.Contains(st.Error, "k8s_metadata") {
		t.Errorf("status %+v: want refused at spec.podSelector, naming k8s_metadata", st)
	}
}

// logCount counts the receiver's log lines with message msg whose field
// key is value.
func logCount(logs *observer.ObservedLogs, msg, key, value string) int {
	n := 0
	for _, e := range logs.FilterMessage(msg).All() {
		if e.ContextMap()[key] == value {
			n++
		}
	}
	return n
}

// namedOpenPolicy is openPolicy under another name.
func namedOpenPolicy(name, file string) string {
	return strings.Replace(fmt.Sprintf(openPolicy, file), "name: watch-open", "name: "+name, 1)
}

// reportedBy runs cat on file and reports whether a process.kprobe event of
// policy name comes of it.
func reportedBy(t *testing.T, sink *consumertest.LogsSink, name, file string) bool {
	t.Helper()
	pid := catFile(t, file)
	return appearsWithin(time.Second, sink, func(r record) bool {
		return isEvent(event.NameProcessKprobe, pid)(r) && r.str(event.AttrSecurityRuleName) == name
	})
}

// Two files defining a policy of one name: the first by path order loads,
// once; the other is refused, once, naming both; nothing reloads until a
// file's content changes.
func TestPolicyNameInTwoFilesLoadsTheFirstOnce(t *testing.T) {
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies")
	os.Mkdir(policies, 0o755)
	a, a2, b := filepath.Join(dir, "a"), filepath.Join(dir, "a2"), filepath.Join(dir, "b")
	for _, f := range []string{a, a2, b} {
		os.WriteFile(f, []byte("x"), 0o644)
	}
	first, second := filepath.Join(policies, "10-first.yaml"), filepath.Join(policies, "20-second.yaml")
	bad := filepath.Join(policies, "30-bad.yaml")
	writePolicy(t, policies, "10-first.yaml", namedOpenPolicy("syscalls", a))
	writePolicy(t, policies, "20-second.yaml", namedOpenPolicy("syscalls", b))
	writePolicy(t, policies, "30-bad.yaml", strings.Replace(namedOpenPolicy("broken", a), `"Equal"`, `"Equals"`, 1))

	cfg := createDefaultConfig().(*Config)
	cfg.Policies = []string{policies}
	cfg.PolicyReloadInterval = 100 * time.Millisecond
	r, sink, logs := startReceiverLogged(t, cfg)
	// Fifteen reload passes: each must find what the first found.
	waitSyncs(t, r, 15)

	if n := logCount(logs, "policy loaded", "policy", "syscalls"); n != 1 {
		t.Errorf("syscalls loaded %d times, want once", n)
	}
	if n := logCount(logs, "policy replaced", "policy", "syscalls"); n != 0 {
		t.Errorf("syscalls replaced %d times with no file changed, want 0", n)
	}
	if n := logCount(logs, "policy refused", "file", second); n != 1 {
		t.Errorf("the second file was refused %d times, want once", n)
	}
	if n := logCount(logs, "policy refused", "file", bad); n != 1 {
		t.Errorf("the invalid file was refused %d times, want once", n)
	}
	if !reportedBy(t, sink, "syscalls", a) {
		t.Error("the first file's policy does not report its open")
	}
	if reportedBy(t, sink, "syscalls", b) {
		t.Error("the second file's policy of the same name reports: it was loaded")
	}
	// The refusal is in the status file `vigil policy status` reads,
	// naming both files.
	report, err := policy.ReadStatusFile(r.cfg.StatusFile)
	if err != nil {
		t.Fatal(err)
	}
	var loser, winner *policy.Status
	for i, st := range report.Policies {
		switch {
		case st.Name == "syscalls" && st.Source == second:
			loser = &report.Policies[i]
		case st.Name == "syscalls" && st.Source == first:
			winner = &report.Policies[i]
		}
	}
	if winner == nil || !winner.Running || winner.Error != "" {
		t.Errorf("status of %s: %+v, want running", first, winner)
	}
	if loser == nil || loser.Running || !strings.HasPrefix(loser.Error, "metadata.name: ") ||
		!strings.Contains(loser.Error, first) || !strings.Contains(loser.Error, second) {
		t.Errorf("status of %s: %+v, want refused at metadata.name naming both files", second, loser)
	}

	// Rewriting a file with the same bytes (a new mtime, a new inode)
	// changes nothing.
	writePolicy(t, policies, "10-first.yaml", namedOpenPolicy("syscalls", a))
	writePolicy(t, policies, "20-second.yaml", namedOpenPolicy("syscalls", b))
	waitSyncs(t, r, 5)
	if n := logCount(logs, "policy replaced", "policy", "syscalls"); n != 0 {
		t.Errorf("rewriting the same bytes replaced syscalls %d times", n)
	}
	if n := logCount(logs, "policy refused", "file", second); n != 1 {
		t.Errorf("rewriting the same bytes refused the second file again (%d refusals)", n)
	}

	// Editing the winner replaces it exactly once.
	writePolicy(t, policies, "10-first.yaml", namedOpenPolicy("syscalls", a2))
	eventually(t, "the edited winner reports its new file", func() bool { return reportedBy(t, sink, "syscalls", a2) })
	waitSyncs(t, r, 10)
	if n := logCount(logs, "policy replaced", "policy", "syscalls"); n != 1 {
		t.Errorf("one edit of the winner replaced it %d times, want once", n)
	}

	// Renaming the loser's policy makes it load beside the winner.
	writePolicy(t, policies, "20-second.yaml", namedOpenPolicy("syscalls-2", b))
	waitForStatus(t, r, "syscalls-2", func(st policy.Status) bool { return st.Running }, 0)
	if !reportedBy(t, sink, "syscalls-2", b) {
		t.Error("the renamed policy does not report its open")
	}
	if !reportedBy(t, sink, "syscalls", a2) {
		t.Error("the winner stopped reporting when the loser was renamed")
	}
	for _, st := range r.engine.Statuses() {
		if st.Error != "" && st.Source != bad {
			t.Errorf("a refusal outlived its cause: %+v", st)
		}
	}
	if n := logCount(logs, "policy replaced", "policy", "syscalls"); n != 1 {
		t.Errorf("renaming the loser replaced the winner (%d replacements)", n)
	}
}

// With several configured paths, their order decides, not the file names:
// a file listed first wins over a directory's file of the same policy name.
func TestPolicyNameInTwoConfiguredPathsLoadsTheFirstPath(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("x"), 0o644)
	os.WriteFile(b, []byte("x"), 0o644)
	single, policies := filepath.Join(dir, "single"), filepath.Join(dir, "policies")
	os.Mkdir(single, 0o755)
	os.Mkdir(policies, 0o755)
	writePolicy(t, single, "z-listed-first.yaml", namedOpenPolicy("syscalls", b))
	writePolicy(t, policies, "a-listed-second.yaml", namedOpenPolicy("syscalls", a))

	cfg := createDefaultConfig().(*Config)
	cfg.Policies = []string{filepath.Join(single, "z-listed-first.yaml"), policies}
	cfg.PolicyReloadInterval = 100 * time.Millisecond
	r, sink, logs := startReceiverLogged(t, cfg)
	waitSyncs(t, r, 10)
	if !reportedBy(t, sink, "syscalls", b) {
		t.Error("the policy of the path listed first does not report")
	}
	if reportedBy(t, sink, "syscalls", a) {
		t.Error("the policy of the path listed second was loaded")
	}
	if n := logCount(logs, "policy refused", "file", filepath.Join(policies, "a-listed-second.yaml")); n != 1 {
		t.Errorf("the second path's file was refused %d times, want once", n)
	}
	if n := logCount(logs, "policy replaced", "policy", "syscalls"); n != 0 {
		t.Errorf("syscalls replaced %d times, want 0", n)
	}
}

// waitSyncs waits until the policy manager has made n more passes over its
// sources: what they did not change by then, they keep as it is.
func waitSyncs(t *testing.T, r *ebpfReceiver, n uint64) {
	t.Helper()
	want := r.engine.Syncs() + n
	for deadline := time.Now().Add(time.Minute); r.engine.Syncs() < want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d policy passes in a minute, want %d", r.engine.Syncs()-(want-n), n)
		}
	}
}
