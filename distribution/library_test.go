package distribution

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/vigilsec/vigil/distribution/policies"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/syscalls"
)

// TestChartListsEveryLibraryPolicy: the chart's values and schema name the
// library's policies, no more and no fewer (the library is the source).
func TestChartListsEveryLibraryPolicy(t *testing.T) {
	names := policies.Names()
	var values struct {
		Library struct {
			Policies map[string]struct{ Enabled, Enforce bool }
		}
	}
	data, err := os.ReadFile(filepath.Join("helm", "vigil", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	var inValues []string
	for n, p := range values.Library.Policies {
		inValues = append(inValues, n)
		if !p.Enabled || p.Enforce {
			t.Errorf("values.yaml library.policies.%s: want enabled and not enforcing by default", n)
		}
	}
	slices.Sort(inValues)
	if !slices.Equal(inValues, names) {
		t.Errorf("values.yaml library.policies: %v, the library has %v", inValues, names)
	}
	var schema struct {
		Properties struct {
			Library struct {
				Properties struct {
					Policies struct {
						PropertyNames struct{ Enum []string }
					}
				}
			}
		}
	}
	data, err = os.ReadFile(filepath.Join("helm", "vigil", "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	if enum := schema.Properties.Library.Properties.Policies.PropertyNames.Enum; !slices.Equal(enum, names) {
		t.Errorf("values.schema.json library.policies names %v, the library has %v", enum, names)
	}
}

// TestLibraryPoliciesAreComplete: every library policy is valid, named as
// its file, in monitor mode, and describes itself as a rule (category,
// severity, reference, ruleset vigil); every hook has a message and MITRE
// ATT&CK tags.
func TestLibraryPoliciesAreComplete(t *testing.T) {
	for _, name := range policies.Names() {
		data, _ := policies.YAML(name)
		ps, err := policy.Parse(data, name+".yaml")
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 1 {
			t.Fatalf("%s: %d policies, want 1", name, len(ps))
		}
		p := ps[0]
		if err := policy.Validate(p); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := policy.Supported(p); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if p.Metadata.Name != name {
			t.Errorf("%s.yaml holds policy %q", name, p.Metadata.Name)
		}
		if policy.Mode(p) != policy.ModeMonitor {
			t.Errorf("%s: not in monitor mode", name)
		}
		r := policy.RuleOf(p)
		if r.Category == "" || r.Severity == "" || r.Reference == "" || r.Description == "" || r.Ruleset != "vigil" {
			t.Errorf("%s: incomplete rule %+v", name, r)
		}
		prog, err := policy.Compile(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, h := range prog.Hooks {
			if h.Message == "" || !slices.ContainsFunc(h.Tags, isTechnique) {
				t.Errorf("%s %s: message %q, tags %v: want a message and a MITRE ATT&CK technique", name, h.Path, h.Message, h.Tags)
			}
		}
		librarySyscallsExist(t, name, prog)
	}
}

// librarySyscallsExist checks the library's syscall hooks against each
// architecture's table: a syscall that one of them lacks (open, rename and
// the other pre-*at calls are x86-64's alone) must be ignored
// (ignore.callNotFound), or the policy would be refused on those nodes;
// and every hook must watch something on each.
func librarySyscallsExist(t *testing.T, name string, prog *policy.Program) {
	t.Helper()
	for _, h := range prog.Hooks {
		if h.Kind != policy.HookSyscall {
			continue
		}
		for _, arch := range syscalls.Arches() {
			var have []string
			for _, call := range h.Calls {
				if _, ok := syscalls.NumberOn(arch, call); ok {
					have = append(have, call)
				} else if !h.IgnoreNotFound {
					t.Errorf("%s %s: %s has no syscall %q: list it with ignore.callNotFound", name, h.Path, arch, call)
				}
			}
			if len(have) == 0 && len(h.Calls) > 0 && !h.IgnoreNotFound {
				t.Errorf("%s %s: none of %v is a syscall on %s", name, h.Path, h.Calls, arch)
			}
		}
	}
}

// isTechnique reports whether tag is a MITRE ATT&CK technique id, T1234
// or T1234.001.
func isTechnique(tag string) bool {
	if len(tag) != 5 && len(tag) != 9 || tag[0] != 'T' {
		return false
	}
	for i, c := range tag[1:] {
		if (i == 4 && c != '.') || (i != 4 && (c < '0' || c > '9')) {
			return false
		}
	}
	return true
}

// libraryTable renders the README's table of the library, from the
// policies themselves.
func libraryTable(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("| policy | category | severity | reports | hooks | MITRE ATT&CK |\n|---|---|---|---|---|---|\n")
	for _, name := range policies.Names() {
		data, _ := policies.YAML(name)
		ps, err := policy.Parse(data, name+".yaml")
		if err != nil {
			t.Fatal(err)
		}
		prog, err := policy.Compile(ps[0])
		if err != nil {
			t.Fatal(err)
		}
		var calls, techniques []string
		for _, h := range prog.Hooks {
			for _, c := range h.Calls {
				if !slices.Contains(calls, c) {
					calls = append(calls, c)
				}
			}
			for _, tag := range h.Tags {
				if isTechnique(tag) && !slices.Contains(techniques, tag) {
					techniques = append(techniques, tag)
				}
			}
		}
		slices.Sort(techniques)
		r := policy.RuleOf(ps[0])
		fmt.Fprintf(&b, "| [%s](distribution/policies/%s.yaml) | %s | %s | %s | %s | %s |\n",
			name, name, r.Category, r.Severity, r.Description, strings.Join(calls, ", "), strings.Join(techniques, ", "))
	}
	return b.String()
}

const (
	tableBegin = "<!-- library table: generated by TestReadmeLibraryTable from distribution/policies -->\n"
	tableEnd   = "<!-- end of library table -->\n"
)

// TestReadmeLibraryTable: the README's table of the library is the one
// the policies give. VIGIL_UPDATE_README=1 rewrites it.
func TestReadmeLibraryTable(t *testing.T) {
	checkReadmeSection(t, "library table", tableBegin, tableEnd, libraryTable(t))
}

// checkReadmeSection checks that the README holds want between the lines
// begin and end: a section generated from a source, what (library table,
// metrics table) naming it. VIGIL_UPDATE_README=1 rewrites it instead.
func checkReadmeSection(t *testing.T, what, begin, end, want string) {
	t.Helper()
	path := filepath.Join("..", "README.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %s between %q and %q", what, begin, end)
	}
	if got := readme[i+len(begin) : j]; got != want {
		if os.Getenv("VIGIL_UPDATE_README") != "" {
			if err := os.WriteFile(path, []byte(readme[:i+len(begin)]+want+readme[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README.md's %s is stale; run VIGIL_UPDATE_README=1 go test ./distribution/ -run %s\nwant:\n%s", what, t.Name(), want)
	}
}
