package event

import (
	"testing"

	"github.com/vigilsec/vigil/internal/policy"
)

// A new kind of hook needs a name for its events: without one its events
// would pass for kprobes.
func TestEveryHookKindNamesItsEvents(t *testing.T) {
	for k := policy.HookSyscall; k.String() != "unknown"; k++ {
		if int(k) >= len(hookEventNames) || hookEventNames[k] == "" {
			t.Errorf("hook kind %s has no event name in hookEventNames", k)
		}
	}
}
