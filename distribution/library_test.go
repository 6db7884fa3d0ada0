package distribution

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/vigilsec/vigil/distribution/policies"
	"github.com/vigilsec/vigil/internal/policy"
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
