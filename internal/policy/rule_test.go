package policy

import (
	"strings"
	"testing"
)

func TestRuleAnnotationsAreCheckedAndRead(t *testing.T) {
	const doc = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: rule
  annotations:
    description: "reads of a file"
    vigil.dev/category: credential-access
    vigil.dev/severity: %s
    vigil.dev/reference: %s
    vigil.dev/ruleset: mine
spec:
  kprobes:
  - call: sys_openat
    syscall: true
`
	ps, err := Parse([]byte(strings.NewReplacer("%s", "High", "%r", "").Replace(strings.Replace(doc, "reference: %s", "reference: https://attack.mitre.org/tactics/TA0006/", 1))), "rule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(ps[0]); err != nil {
		t.Fatal(err)
	}
	want := Rule{Description: "reads of a file", Category: "credential-access", Severity: "high",
		Reference: "https://attack.mitre.org/tactics/TA0006/", Ruleset: "mine"}
	if got := RuleOf(ps[0]); got != want {
		t.Errorf("RuleOf = %+v, want %+v", got, want)
	}
	bad, err := Parse([]byte(strings.Replace(strings.Replace(doc, "severity: %s", "severity: urgent", 1), "reference: %s", "reference: T1003", 1)), "rule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = Validate(bad[0])
	for _, want := range []string{
		`metadata.annotations["vigil.dev/severity"]: "urgent" is not a severity: one of info, low, medium, high, critical`,
		`metadata.annotations["vigil.dev/reference"]: "T1003" is not an http(s) URL`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
}
