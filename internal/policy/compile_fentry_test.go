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

// imaHash compiles on an LSM hook with a file (the hook says how to reach
// it), and is refused elsewhere, naming the field.
func TestCompileImaHash(t *testing.T) {
	p := &TracingPolicy{
		APIVersion: APIVersion, Kind: KindTracingPolicy,
		Metadata: ObjectMeta{Name: "ima"},
		Spec: Spec{LsmHooks: []LsmHookSpec{{
			Hook:      "bprm_check_security",
			Selectors: []SelectorSpec{{MatchActions: []ActionSelector{{Action: "Post", ImaHash: true}}}},
		}}},
	}
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if h := prog.Hooks[0]; h.ImaFile != "bprm" || !h.Selectors[0].ImaHash {
		t.Errorf("hook %+v: want imaHash on the bprm's file", h)
	}
	p.Spec.LsmHooks[0].Hook = "task_kill"
	if _, err := Compile(p); err == nil || !strings.Contains(err.Error(), "spec.lsmhooks[0].selectors[0].matchActions[0].imaHash: the LSM hook task_kill has no file") {
		t.Errorf("imaHash on task_kill: %v", err)
	}
}

// auto (no type) compiles on a tracepoint, whose format the node reads;
// Compile refuses it on a kprobe, as Tetragon does, and a filter on it.
func TestCompileAutoTypes(t *testing.T) {
	tp := &TracingPolicy{
		APIVersion: APIVersion, Kind: KindTracingPolicy,
		Metadata: ObjectMeta{Name: "auto"},
		Spec:     Spec{Tracepoints: []TracepointSpec{{Subsystem: "sched", Event: "sched_process_exec", Args: []ArgSpec{{Index: 4}}}}},
	}
	prog, err := Compile(tp)
	if err != nil {
		t.Fatal(err)
	}
	if a := prog.Hooks[0].Args[0]; a.Kind != ArgAuto {
		t.Errorf("argument %+v, want ArgAuto", a)
	}
	tp.Spec.Tracepoints[0].Selectors = []SelectorSpec{{MatchArgs: []ArgSelector{{Index: 4, Operator: "Equal", Values: []string{"x"}}}}}
	if _, err := Compile(tp); err == nil || !strings.Contains(err.Error(), "spec.tracepoints[0].selectors[0].matchArgs[0].index: 4: the argument has no type (auto)") {
		t.Errorf("a filter on an auto argument: %v", err)
	}
	kp := &TracingPolicy{
		APIVersion: APIVersion, Kind: KindTracingPolicy,
		Metadata: ObjectMeta{Name: "auto"},
		Spec:     Spec{KProbes: []KProbeSpec{{Call: "fd_install", Args: []ArgSpec{{Index: 0, Type: "auto"}}}}},
	}
	if _, err := Compile(kp); err == nil || !strings.Contains(err.Error(), "spec.kprobes[0].args[0].type: auto (no type): Tetragon takes it on tracepoints only") {
		t.Errorf("auto on a kprobe: %v", err)
	}
}
