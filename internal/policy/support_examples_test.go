package policy_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// -update regenerates docs/tetragon-examples.md:
//
//	go test ./internal/policy -run TestTetragonExamplesDoc -update
//
// The flag is defined here unless another golden test of this package's
// test binary defined it first; then both share it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files (docs/tetragon-examples.md) from the current code")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// invalidExamples are the examples that Validate refuses, with why: each is
// a policy Tetragon refuses as well, so refusing it is right.
var invalidExamples = map[string][]string{
	// Quickstart templates: ${PODCIDR} and ${SERVICECIDR} are for the user
	// to substitute; Tetragon fails to parse them as CIDRs too.
	"quickstart__network_egress_cluster.yaml": {
		`spec.kprobes[0].selectors[0].matchArgs[0].values[1]: "${PODCIDR}" is an unsubstituted template variable, not a value: substitute it (e.g. with envsubst) before loading`,
		`spec.kprobes[0].selectors[0].matchArgs[0].values[2]: "${SERVICECIDR}" is an unsubstituted template variable, not a value: substitute it (e.g. with envsubst) before loading`,
	},
	"quickstart__network_egress_cluster_enforce.yaml": {
		`spec.kprobes[0].selectors[0].matchArgs[0].values[1]: "${PODCIDR}" is an unsubstituted template variable, not a value: substitute it (e.g. with envsubst) before loading`,
		`spec.kprobes[0].selectors[0].matchArgs[0].values[2]: "${SERVICECIDR}" is an unsubstituted template variable, not a value: substitute it (e.g. with envsubst) before loading`,
	},
}

// repoRoot is the directory of go.mod above the test's directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// examplesDir is the compatibility corpus, shared/ beside the repository.
func examplesDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "..", "shared", "policies", "tetragon-examples")
	if _, err := os.Stat(dir); err != nil {
		testenv.Unavailable(t, "the Tetragon examples are not beside the repository: %v", err)
	}
	return dir
}

// example is what the pipeline made of one document of an example file.
type example struct {
	file   string
	doc    policy.Document
	status string // accepted, refused or invalid
	lines  []string
}

func examples(t *testing.T) []example {
	t.Helper()
	dir := examplesDir(t)
	files, err := policy.PolicyFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no example in %s", dir)
	}
	var out []example
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range policy.ParseDocuments(data, filepath.Base(f)) {
			ex := example{file: filepath.Base(f), doc: d}
			switch {
			case !d.IsPolicy():
				ex.status = "skipped"
			case len(d.Errors) > 0:
				ex.status = "malformed"
				for _, e := range d.Errors {
					ex.lines = append(ex.lines, e.Error())
				}
			default:
				if err := policy.Validate(d.Policy); err != nil {
					ex.status = "invalid"
					ex.lines = problems(t, err)
				} else if err := policy.Supported(d.Policy); err != nil {
					ex.status = "refused"
					ex.lines = problems(t, err)
				} else if _, err := policy.Compile(d.Policy); err != nil {
					ex.status = "not compiled"
					ex.lines = compileProblems(t, err)
				} else {
					ex.status = "accepted"
				}
			}
			out = append(out, ex)
		}
	}
	return out
}

// TestTetragonExamples runs every example of the corpus through Parse,
// Validate and Supported: each file parses, each policy is valid (or is
// one of the few Tetragon refuses too), and each is either supported or
// refused with the path of what is not.
func TestTetragonExamples(t *testing.T) {
	seen := map[string]bool{}
	perFile := map[string]int{}
	for _, ex := range examples(t) {
		t.Run(ex.file+"#"+fmt.Sprint(ex.doc.Index), func(t *testing.T) {
			switch ex.status {
			case "malformed":
				t.Fatalf("does not parse:\n%s", strings.Join(ex.lines, "\n"))
			case "skipped":
				return
			case "invalid":
				want, ok := invalidExamples[ex.file]
				if !ok {
					t.Fatalf("Validate refuses a Tetragon example:\n%s", strings.Join(ex.lines, "\n"))
				}
				seen[ex.file] = true
				if !slices.Equal(ex.lines, want) {
					t.Errorf("Validate:\n%s\nwant:\n%s", strings.Join(ex.lines, "\n"), strings.Join(want, "\n"))
				}
			case "refused":
				err := policy.Supported(ex.doc.Policy)
				var fe policy.FieldErrors
				if !errors.As(err, &fe) {
					t.Fatalf("Supported returned %T", err)
				}
				for _, e := range fe {
					if e.Path != "kind" && !strings.HasPrefix(e.Path, "spec.") {
						t.Errorf("refusal without a precise path: %v", e)
					}
					if !strings.HasSuffix(e.Reason, "not supported by Vigil yet") && !strings.Contains(e.Reason, "not supported by Vigil yet;") {
						t.Errorf("refusal reason does not say what: %v", e)
					}
					if !errors.Is(e, policy.ErrNotSupported) {
						t.Errorf("refusal does not wrap ErrNotSupported: %v", e)
					}
				}
			}
		})
		if ex.doc.IsPolicy() {
			perFile[ex.file]++
		}
	}
	for file := range invalidExamples {
		if !seen[file] && !t.Failed() {
			t.Errorf("%s is listed as invalid but Validate accepts it (or it is gone): update invalidExamples", file)
		}
	}
	for file, n := range perFile {
		if n == 0 {
			t.Errorf("%s holds no policy", file)
		}
	}
}

// TestTetragonExamplesDoc keeps docs/tetragon-examples.md equal to what
// the code says of the corpus; -update rewrites it.
func TestTetragonExamplesDoc(t *testing.T) {
	got := examplesDoc(examples(t))
	path := filepath.Join(repoRoot(t), "docs", "tetragon-examples.md")
	if updating() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate: go test ./internal/policy -run TestTetragonExamplesDoc -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/tetragon-examples.md is out of date; regenerate it: go test ./internal/policy -run TestTetragonExamplesDoc -update\n--- generated:\n%s", got)
	}
}

func examplesDoc(exs []example) []byte {
	var b bytes.Buffer
	counts := map[string]int{}
	files := map[string]bool{}
	for _, ex := range exs {
		counts[ex.status]++
		files[ex.file] = true
	}
	policies := len(exs) - counts["skipped"]
	b.WriteString(`# Tetragon's example policies on Vigil

<!-- Generated by TestTetragonExamplesDoc (internal/policy/support_examples_test.go):
     do not edit. Regenerate with
     go test ./internal/policy -run TestTetragonExamplesDoc -update -->

The compatibility corpus ` + "`shared/policies/tetragon-examples`" + ` holds the example
TracingPolicies of the cilium/tetragon repository (its ` + "`examples/`" + ` folder, Apache License
2.0), file names flattened with ` + "`__`" + ` for folders. Each policy goes through what
` + "`vigil policy validate`" + ` and the collector run before loading a policy:

- **Parse** reads the YAML strictly: an unknown field is an error naming its path.
- **Validate** checks Tetragon's semantics and Vigil's limits (` + "`internal/policy/limits.go`" + `).
  *invalid* marks a policy Tetragon refuses as well.
- **Supported** checks the engine's support matrix (` + "`internal/policy/support.go`" + `).
  *refused* lists every field the engine does not handle yet; the policy is valid Tetragon.
- **Compile** builds the kernel's selector tables (` + "`internal/policy/compile.go`" + `).
  *not compiled* lists what the kernel side of this version cannot build yet; *accepted*
  policies compile. A test (` + "`internal/kernel/examples_test.go`" + `) installs and removes
  each of them on the host and on every kernel of the VM lane: each loads, or is refused
  naming the kernel feature it lacks (kprobes on the development kernel,
  ` + "`bpf_override_return`" + ` everywhere).

Whether the running kernel can host a hook (kprobes, BPF LSM, return-value override) is
decided when the policy loads, not here: see ` + "`vigil probe`" + `. Two pairs of examples share
a name (` + "`fd-install`" + `, ` + "`syscalls`" + `); ` + "`vigil policy validate`" + ` over the whole folder refuses the
second of each, since loaded together one would replace the other.

`)
	fmt.Fprintf(&b, "**%d files, %d policies: %d accepted, %d not compiled yet, %d refused (not supported yet), %d invalid.**\n\n",
		len(files), policies, counts["accepted"], counts["not compiled"], counts["refused"], counts["invalid"]+counts["malformed"])
	b.WriteString("| File | Policy | Hooks | Status on Vigil |\n|---|---|---|---|\n")
	for _, ex := range exs {
		name, hooks := "—", "—"
		status := ex.status
		switch ex.status {
		case "skipped":
			status = fmt.Sprintf("skipped: document %d is a %s, not a policy", ex.doc.Index, kindOf(ex.doc))
		case "accepted":
		default:
			var parts []string
			for _, l := range ex.lines {
				path, reason, ok := strings.Cut(l, ": ")
				if ok && !strings.Contains(path, " ") {
					parts = append(parts, "`"+path+"`: "+reason)
				} else {
					parts = append(parts, l)
				}
			}
			status = ex.status + ": " + strings.Join(parts, "<br>")
		}
		if ex.doc.Name != "" && ex.doc.IsPolicy() {
			name = "`" + ex.doc.Name + "`"
		}
		if ex.doc.Policy != nil {
			hooks = hookSummary(ex.doc.Policy)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", ex.file, name, cell(hooks), cell(status))
	}
	return b.Bytes()
}

func kindOf(d policy.Document) string {
	if d.APIVersion == "" {
		return d.Kind
	}
	return d.APIVersion + " " + d.Kind
}

// cell escapes a table cell.
func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

// hookSummary names the hooks of a policy, one per line of the cell.
func hookSummary(p *policy.TracingPolicy) string {
	var hooks []string
	for _, k := range p.Spec.KProbes {
		kind := "kprobe"
		if k.Syscall {
			kind = "syscall"
		}
		h := kind + " `" + k.Call + "`"
		if name, ok := strings.CutPrefix(k.Call, "list:"); ok {
			for _, l := range p.Spec.Lists {
				if l.Name == name && len(l.Values) > 0 {
					h += " (" + strings.Join(l.Values, ", ") + ")"
				}
			}
		}
		hooks = append(hooks, h)
	}
	for _, f := range p.Spec.Fentries {
		hooks = append(hooks, "fentry `"+f.Call+"`")
	}
	for _, tp := range p.Spec.Tracepoints {
		kind := "tracepoint"
		if tp.Raw {
			kind = "raw tracepoint"
		}
		hooks = append(hooks, kind+" `"+tp.Subsystem+"/"+tp.Event+"`")
	}
	for _, u := range p.Spec.UProbes {
		h := "uprobe `" + u.Path + "`"
		if len(u.Symbols) > 0 {
			h += " (" + strings.Join(u.Symbols, ", ") + ")"
		}
		hooks = append(hooks, h)
	}
	for _, l := range p.Spec.LsmHooks {
		hooks = append(hooks, "LSM `"+l.Hook+"`")
	}
	for _, u := range p.Spec.Usdts {
		hooks = append(hooks, "usdt `"+u.Provider+":"+u.Name+"`")
	}
	if p.Spec.Loader {
		hooks = append(hooks, "loader events")
	}
	if len(hooks) == 0 {
		return "—"
	}
	return strings.Join(hooks, "<br>")
}

// compileProblems lists a Compile error one refusal per line; each must name
// the field it refuses.
func compileProblems(t *testing.T, err error) []string {
	t.Helper()
	var lines []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *policy.CompileError
		if !errors.As(e, &ce) || ce.Path == "" {
			t.Errorf("compile refusal without a field path: %v", e)
		}
		lines = append(lines, e.Error())
	}
	return lines
}
