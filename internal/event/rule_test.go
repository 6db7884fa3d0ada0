package event

import (
	"testing"

	"github.com/vigilsec/vigil/internal/policy"
)

// Every severity a policy may name has a log severity, ranked in order.
func TestEverySeverityHasALogSeverity(t *testing.T) {
	prev := 0
	for _, s := range policy.Severities {
		n, ok := severities[s]
		if !ok {
			t.Fatalf("no log severity for %q", s)
		}
		if int(n) <= prev {
			t.Errorf("%q ranks %d, not above the one before (%d)", s, n, prev)
		}
		prev = int(n)
	}
	if len(severities) != len(policy.Severities) {
		t.Errorf("%d log severities for %d policy severities", len(severities), len(policy.Severities))
	}
}
