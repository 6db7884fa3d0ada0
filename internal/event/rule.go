package event

import (
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/internal/policy"
)

// severities maps a policy's severity to the log record's: the number
// that backends rank by (and the Falco encoding turns into a priority:
// critical, error, warning, notice, informational), and the policy's own
// word as the text.
var severities = map[string]plog.SeverityNumber{
	"info":     plog.SeverityNumberInfo,
	"low":      plog.SeverityNumberInfo2,
	"medium":   plog.SeverityNumberWarn,
	"high":     plog.SeverityNumberError,
	"critical": plog.SeverityNumberFatal,
}

// ruleFill puts what the policy says of itself on a record of one of its
// hooks.
func ruleFill(r *policy.Rule, lr plog.LogRecord) {
	attrs := lr.Attributes()
	for _, a := range [...]struct{ key, value string }{
		{AttrSecurityRuleCategory, r.Category},
		{AttrSecurityRuleDescription, r.Description},
		{AttrSecurityRuleReference, r.Reference},
		{AttrSecurityRuleRulesetName, r.Ruleset},
	} {
		if a.value != "" {
			attrs.PutStr(a.key, a.value)
		}
	}
	if n, ok := severities[r.Severity]; ok {
		lr.SetSeverityNumber(n)
		lr.SetSeverityText(r.Severity)
	}
}
