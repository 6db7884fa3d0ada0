package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/policy"
)

const goodPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: open-shadow
spec:
  kprobes:
  - call: sys_openat
    syscall: true
    args: [{index: 1, type: string}]
    selectors:
    - matchArgs: [{index: 1, operator: Equal, values: [/etc/shadow]}]
      matchActions: [{action: Sigkill}]
`

// writeFiles creates files (name -> content) in a new directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runVigil(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestPolicyValidate(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a-good.yaml": goodPolicy,
		"b-mixed.yml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n" +
			strings.Replace(goodPolicy, "open-shadow", "fentry", 1) + "  fentries: [{call: fd_install, selectors: [{matchActions: [{action: Sigkill}]}]}]\n",
		"c-typo.yaml": strings.Replace(goodPolicy, "operator:", "opertor:", 1),
		"d-invalid.yaml": strings.Replace(strings.Replace(goodPolicy, "open-shadow", "bad-index", 1),
			"{index: 1, operator", "{index: 3, operator", 1),
		"e-dup.yaml": goodPolicy,
		// Valid, and refused only when compiled.
		"f-compile.yaml": strings.Replace(strings.Replace(goodPolicy, "open-shadow", "return-twice", 1),
			"matchActions: [{action: Sigkill}]", "matchActions: [{action: Sigkill}]\n      matchReturnActions: [{action: Post}]", 1) +
			"    return: true\n    returnArg: {index: 0, type: int}\n",
		"notes.txt": "not a policy",
	})
	code, stdout, stderr := runVigil("policy", "validate", dir)
	want := strings.Join([]string{
		"ok      DIR/a-good.yaml: TracingPolicy/open-shadow",
		"skipped DIR/b-mixed.yml: document 1: v1/ConfigMap is not a TracingPolicy",
		"refused DIR/b-mixed.yml: TracingPolicy/fentry: spec.fentries[0].selectors[0].matchActions[0].action: Sigkill on a fentries hook: fentry and fexit only observe a call (Tetragon refuses it too); enforce with kprobes or lsmhooks",
		"refused DIR/c-typo.yaml: document 1, line 11: spec.kprobes[0].selectors[0].matchArgs[0].opertor: unknown field",
		"refused DIR/d-invalid.yaml: TracingPolicy/bad-index: spec.kprobes[0].selectors[0].matchArgs[0].index: 3 is not a declared arg (declared: 1)",
		`refused DIR/e-dup.yaml: TracingPolicy/open-shadow: metadata.name: "open-shadow" is also the name of a TracingPolicy in DIR/a-good.yaml; loaded together, one would replace the other`,
		"refused DIR/f-compile.yaml: TracingPolicy/return-twice: spec.kprobes[0].selectors[0].matchReturnActions: a selector with matchActions too: Vigil runs the actions of a hook with return: true at return, so give them in one list",
		"",
	}, "\n")
	if got := strings.ReplaceAll(stdout, dir, "DIR"); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if stderr != "1 ok, 5 refused\n" {
		t.Errorf("stderr = %q", stderr)
	}
}

func TestPolicyValidateAllOK(t *testing.T) {
	dir := writeFiles(t, map[string]string{"p.yaml": goodPolicy})
	code, stdout, _ := runVigil("policy", "validate", filepath.Join(dir, "p.yaml"))
	if code != 0 || !strings.HasPrefix(stdout, "ok      ") {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	code, stdout, _ = runVigil("policy", "validate", "-q", dir)
	if code != 0 || stdout != "" {
		t.Errorf("-q: exit %d, stdout %q; want 0 and nothing", code, stdout)
	}
}

func TestPolicyValidateFileProblems(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"empty.yaml":  "# nothing\n",
		"broken.yaml": "spec: [\n",
		"sub/x.txt":   "",
	})
	code, stdout, _ := runVigil("policy", "validate",
		filepath.Join(dir, "empty.yaml"), filepath.Join(dir, "broken.yaml"),
		filepath.Join(dir, "missing.yaml"), filepath.Join(dir, "sub"))
	want := strings.Join([]string{
		"refused DIR/empty.yaml: no TracingPolicy or TracingPolicyNamespaced in the file",
		"refused DIR/broken.yaml: document 1, line 1: invalid YAML: did not find expected node content",
		"refused DIR/missing.yaml: no such file or directory",
		"refused DIR/sub: no *.yaml or *.yml file in the directory",
		"",
	}, "\n")
	if got := strings.ReplaceAll(stdout, dir, "DIR"); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
}

func TestPolicyUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"policy"},
		{"policy", "frobnicate"},
		{"policy", "validate"},
		{"policy", "validate", "-x", "f.yaml"},
	} {
		code, stdout, stderr := runVigil(args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "usage: vigil policy") {
			t.Errorf("vigil %s: exit %d, stdout %q, stderr %q; want 2 and usage on stderr", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	if _, _, stderr := runVigil("help"); !strings.Contains(stderr, "policy") {
		t.Errorf("vigil help does not list policy:\n%s", stderr)
	}
}

func TestPolicyStatusPrintsTheCollectorsReport(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policies.json")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"policy", "status", "-file", file}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "is the collector running") {
		t.Errorf("missing report: exit %d, stderr %q", code, stderr.String())
	}

	err := policy.WriteStatusFile(file, policy.StatusReport{Updated: time.Now(), Policies: []policy.Status{
		{Name: "open-shadow", Source: "/etc/vigil/policies/a.yaml", Running: true, Mode: "enforce",
			Hooks: []policy.HookStatus{{Path: "spec.kprobes[0]", Mechanism: "raw syscall tracepoints"}}},
		{Name: "team-b/ns-open", Source: "TracingPolicyNamespaced team-b/ns-open", Running: true, Mode: "monitor",
			Error: "spec.kprobes[0].selectors[0].matchArgs[0].operator: \"Equals\", want Equal"},
		{Name: "lsm", Source: "/etc/vigil/policies/b.yaml", Error: "spec.lsmhooks[0]: BPF LSM programs cannot load here"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	code := run([]string{"policy", "status", "-file", file}, &stdout, &stderr)
	out := stdout.String()
	if code != 1 {
		t.Errorf("exit %d with refusals, want 1", code)
	}
	for _, want := range []string{
		"open-shadow     running          enforce",
		"spec.kprobes[0]: raw syscall tracepoints",
		"team-b/ns-open  running+refused  monitor",
		"lsm             refused          -",
		"lsm refused:\n  spec.lsmhooks[0]: BPF LSM programs cannot load here",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	stdout.Reset()
	if code := run([]string{"policy", "status", "-file", file, "-o", "json"}, &stdout, &stderr); code != 1 {
		t.Errorf("json: exit %d", code)
	}
	var back policy.StatusReport
	if err := json.Unmarshal(stdout.Bytes(), &back); err != nil || len(back.Policies) != 3 {
		t.Errorf("json output %q: %v", stdout.String(), err)
	}
}
