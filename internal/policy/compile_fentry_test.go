package policy

import (
	"strings"
	"testing"
)

// A fentries hook compiles as a kprobe marked Fentry; an enforcement
// action on it is refused, naming the action's path.
func TestCompileFentries(t *testing.T) {
	p := &TracingPolicy{
		APIVersion: APIVersion, Kind: KindTracingPolicy,
		Metadata: ObjectMeta{Name: "fentries"},
		Spec: Spec{Fentries: []KProbeSpec{{
			Call: "security_file_open", Args: []ArgSpec{{Index: 0, Type: "file"}},
		}}},
	}
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if h := prog.Hooks[0]; h.Kind != HookKprobe || !h.Fentry || h.Path != "spec.fentries[0]" {
		t.Errorf("hook %+v, want a kprobe hook marked Fentry at spec.fentries[0]", h)
	}
	for _, act := range []string{"Sigkill", "Override", "Signal", "NotifyEnforcer"} {
		p.Spec.Fentries[0].Selectors = []SelectorSpec{{MatchActions: []ActionSelector{{Action: "Post"}, {Action: act, ArgSig: 9, ArgError: -1}}}}
		_, err := Compile(p)
		if err == nil || !strings.Contains(err.Error(), "spec.fentries[0].selectors[0].matchActions[1].action: "+act+" on a fentries hook") {
			t.Errorf("%s: %v, want a refusal naming the action", act, err)
		}
	}
}
