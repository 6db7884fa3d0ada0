package distribution_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/vigilsec/vigil/internal/testenv"
)

// alertRulesTestFile holds the promtool unit tests of alertRulesFile.
const alertRulesTestFile = "alerts/vigil.rules.test.yaml"

// prometheusBinary returns Debian's prometheus or promtool (name), which
// scripts/install-deps.sh prometheus installs, or stops the test as a
// missing kernel feature does.
func prometheusBinary(t *testing.T, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		testenv.Unavailable(t, "%s is missing: run `scripts/install-deps.sh prometheus`", name)
	}
	return bin
}

// TestAlertRulesPromtool: promtool checks the rule file (syntax, PromQL,
// templates) and runs its unit tests, in which each alert fires on made-up
// series and stays quiet on others.
func TestAlertRulesPromtool(t *testing.T) {
	promtool := prometheusBinary(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", alertRulesFile},
		{"test", "rules", alertRulesTestFile},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func readRuleFile(t *testing.T) ruleFile {
	t.Helper()
	data, err := os.ReadFile(alertRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		t.Fatalf("%s: %v", alertRulesFile, err)
	}
	return f
}

// TestAlertRulesEachFiresAndStaysQuiet: the unit tests give every alert a
// moment where it must fire and one where it must not, and every alert
// carries what a receiver routes and a person reads on.
func TestAlertRulesEachFiresAndStaysQuiet(t *testing.T) {
	data, err := os.ReadFile(alertRulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			Name          string `json:"name"`
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(data, &tests); err != nil {
		t.Fatalf("%s: %v", alertRulesTestFile, err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, c := range tests.Tests {
		for _, a := range c.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	var alerts []string
	for _, g := range readRuleFile(t).Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("%s: %s is tested firing %v, staying quiet %v; want both", alertRulesTestFile, r.Alert, fires[r.Alert], quiet[r.Alert])
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: annotations %v, want a summary and a description", r.Alert, r.Annotations)
			}
		}
	}
	for name := range fires {
		if !slices.Contains(alerts, name) {
			t.Errorf("%s tests %s, which %s does not define", alertRulesTestFile, name, alertRulesFile)
		}
	}
}

// TestAlertRulesAsDocumented: the alerts the metrics' documentation names
// (metadata.yaml, where the README's metrics table comes from) exist, and
// README "Dashboards and alerts" explains each alert of the rule file,
// once.
func TestAlertRulesAsDocumented(t *testing.T) {
	var alerts []string
	for _, g := range readRuleFile(t).Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
		}
	}
	named := regexp.MustCompile("`(Vigil[A-Za-z]+)`")
	metadata, _ := filepath.Glob("../*/*/metadata.yaml")
	if len(metadata) == 0 {
		t.Fatal("no component metadata.yaml found from distribution/")
	}
	for _, f := range metadata {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range named.FindAllStringSubmatch(string(data), -1) {
			if !slices.Contains(alerts, m[1]) {
				t.Errorf("%s names alert %s, which %s does not define", f, m[1], alertRulesFile)
			}
		}
	}

	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Dashboards and alerts\n")
	if !ok {
		t.Fatal(`README.md has no section "Dashboards and alerts"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var rows []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(Vigil[A-Za-z]+)` \\|").FindAllStringSubmatch(section, -1) {
		rows = append(rows, m[1])
	}
	if !slices.Equal(rows, alerts) {
		t.Errorf("README \"Dashboards and alerts\" explains %v, the rule file defines %v (in this order)", rows, alerts)
	}
}
