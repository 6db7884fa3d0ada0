package kernel

import (
	"testing"

	"github.com/vigilsec/vigil/internal/policy"
)

// TestEveryHookKindHasOneAttacher: each kind the policy package compiles
// to has exactly one row in hookKinds, so a new kind cannot compile into
// hooks nothing attaches.
func TestEveryHookKindHasOneAttacher(t *testing.T) {
	seen := map[policy.HookKind]int{}
	for _, hk := range hookKinds {
		seen[hk.kind]++
	}
	for k := policy.HookKind(1); k.String() != "unknown"; k++ {
		if seen[k] != 1 {
			t.Errorf("hook kind %s has %d rows in hookKinds, want 1", k, seen[k])
		}
		delete(seen, k)
	}
	if len(seen) > 0 {
		t.Errorf("hookKinds has rows for kinds the policy package does not know: %v", seen)
	}
	if _, ok := kindOf(0).(unknownKind); !ok {
		t.Error("kind 0 has an attacher")
	}
}
