package policy

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Annotations a policy may carry to describe the detection it is, beside
// Tetragon's own "description". Events of the policy carry them as the
// semantic conventions' security_rule.* attributes and the log severity, so
// that a SIEM can rank and group them without knowing Vigil.
const (
	AnnotationDescription = "description"
	AnnotationCategory    = "vigil.dev/category"
	AnnotationSeverity    = "vigil.dev/severity"
	AnnotationReference   = "vigil.dev/reference"
	AnnotationRuleset     = "vigil.dev/ruleset"
)

// Severities, lowest first: the values of the vigil.dev/severity
// annotation.
var Severities = []string{"info", "low", "medium", "high", "critical"}

// Rule is what a policy says about itself as a detection rule.
type Rule struct {
	Description string
	Category    string
	// Severity is one of Severities, empty when the policy has none.
	Severity  string
	Reference string
	Ruleset   string
}

// RuleOf reads the rule annotations of p. Validate has checked them.
func RuleOf(p *TracingPolicy) Rule {
	a := p.Metadata.Annotations
	return Rule{
		Description: a[AnnotationDescription],
		Category:    a[AnnotationCategory],
		Severity:    strings.ToLower(a[AnnotationSeverity]),
		Reference:   a[AnnotationReference],
		Ruleset:     a[AnnotationRuleset],
	}
}

// ruleProblems returns what is wrong with the rule annotations, by
// annotation key.
func ruleProblems(a map[string]string) map[string]string {
	out := map[string]string{}
	if s, ok := a[AnnotationSeverity]; ok && !slices.Contains(Severities, strings.ToLower(s)) {
		out[AnnotationSeverity] = fmt.Sprintf("%q is not a severity: one of %s", s, strings.Join(Severities, ", "))
	}
	if r, ok := a[AnnotationReference]; ok {
		if u, err := url.Parse(r); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			out[AnnotationReference] = fmt.Sprintf("%q is not an http(s) URL", r)
		}
	}
	for _, k := range []string{AnnotationCategory, AnnotationRuleset} {
		if v, ok := a[k]; ok && (v == "" || len(v) > 128) {
			out[k] = "must be 1 to 128 characters"
		}
	}
	return out
}
