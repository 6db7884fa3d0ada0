package distribution_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// TestPolicyModeSwitchesARunningPolicy: `vigil policy mode NAME enforce`
// turns a monitoring policy of the running collector into an enforcing one
// without editing its file, as tetra tracingpolicy set-mode does, and
// `source` gives it back the file's mode.
func TestPolicyModeSwitchesARunningPolicy(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.CollectorBinary(t, "../bin/otelcol-vigil")
	cli := vigilCLI(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "forbidden")
	os.WriteFile(target, []byte("x\n"), 0o644)
	policies := filepath.Join(dir, "policies")
	os.Mkdir(policies, 0o755)
	os.WriteFile(filepath.Join(policies, "forbidden.yaml"), []byte(fmt.Sprintf(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: forbidden-file}
spec:
  options: [{name: policy-mode, value: monitor}]
  kprobes:
  - call: sys_openat
    syscall: true
    args: [{index: 1, type: string}]
    selectors:
    - matchArgs: [{index: 1, operator: Equal, values: [%q]}]
      matchActions: [{action: Sigkill}]
`, target)), 0o644)
	status := filepath.Join(t.TempDir(), "run", "policies.json")
	testenv.StartCollector(t, bin, []string{
		"VIGIL_EVENTS_FILE=" + filepath.Join(dir, "events.jsonl"),
		"VIGIL_METRICS_ENDPOINT=127.0.0.1:0", "VIGIL_HEALTH_ENDPOINT=127.0.0.1:0", "VIGIL_TELEMETRY_PORT=0",
		"VIGIL_EVENTS_SOCKET=" + filepath.Join(dir, "events.sock"),
	}, "--config", "vigil:default",
		"--set", "receivers::ebpf::status_file="+status,
		"--set", "receivers::ebpf::policies=["+policies+"]")

	vigil := func(args ...string) (int, string) {
		t.Helper()
		out, err := exec.Command(cli, append([]string{"policy", "mode", "-file", status, "-wait", "60s"}, args...)...).CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return exitCode(err), string(out)
	}
	killed := func() bool {
		t.Helper()
		err := exec.Command("/bin/cat", target).Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return ee != nil && ee.ProcessState.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
	}
	eventually(t, "the policy runs in monitor mode", func() (bool, string) {
		r, err := policy.ReadStatusFile(status)
		i := slices.IndexFunc(r.Policies, func(s policy.Status) bool { return s.Name == "forbidden-file" })
		return err == nil && i >= 0 && r.Policies[i].Running && r.Policies[i].Mode == policy.ModeMonitor, fmt.Sprint(r, err)
	})
	if killed() {
		t.Fatal("killed under policy-mode monitor")
	}

	if code, out := vigil("forbidden-file", "enforce"); code != 0 || out != "forbidden-file: enforce (was monitor)\n" {
		t.Fatalf("vigil policy mode forbidden-file enforce: exit %d: %s", code, out)
	}
	if !killed() {
		t.Fatal("not killed once vigil policy mode said enforce")
	}
	if data, _ := os.ReadFile(filepath.Join(policies, "forbidden.yaml")); !strings.Contains(string(data), "value: monitor") {
		t.Errorf("the policy's file was edited:\n%s", data)
	}
	if code, out := vigil("no-such-policy", "enforce"); code != 1 || !strings.Contains(out, `no running policy "no-such-policy"`) || !strings.Contains(out, "forbidden-file") {
		t.Errorf("an unknown policy: exit %d: %s", code, out)
	}
	if code, out := vigil("forbidden-file", "audit"); code != 2 {
		t.Errorf("an unknown mode: exit %d: %s", code, out)
	}

	if code, out := vigil("forbidden-file", "source"); code != 0 {
		t.Fatalf("vigil policy mode forbidden-file source: exit %d: %s", code, out)
	}
	eventually(t, "the policy is back in its file's mode", func() (bool, string) {
		r, err := policy.ReadStatusFile(status)
		i := slices.IndexFunc(r.Policies, func(s policy.Status) bool { return s.Name == "forbidden-file" })
		return err == nil && i >= 0 && r.Policies[i].Mode == policy.ModeMonitor, fmt.Sprint(r, err)
	})
	if killed() {
		t.Fatal("killed after the mode went back to the file's monitor")
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return 0
}
