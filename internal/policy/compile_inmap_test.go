package policy

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// inMapPolicy is a syscall kprobe on dup with an int and a uint32
// argument, one selector of the given matchArgs, and a list of syscalls.
func inMapPolicy(args ...ArgSelector) *TracingPolicy {
	return &TracingPolicy{
		APIVersion: APIVersion, Kind: KindTracingPolicy,
		Metadata: ObjectMeta{Name: "inmap"},
		Spec: Spec{
			Lists: []ListSpec{{Name: "dups", Type: "syscalls", Values: []string{"sys_dup", "__x64_sys_dup2"}}},
			KProbes: []KProbeSpec{{
				Call: "sys_dup", Syscall: true,
				Args:      []ArgSpec{{Index: 0, Type: "int"}, {Index: 1, Type: "uint32"}},
				Selectors: []SelectorSpec{{MatchArgs: args}},
			}},
		},
	}
}

// TestCompileInMap: the values of InMap and NotInMap become the set the
// kernel looks up, ranges expanded (either way round) and duplicates once;
// list: values stay syscall names for the node to number.
func TestCompileInMap(t *testing.T) {
	for _, tt := range []struct {
		name  string
		match ArgSelector
		want  Filter
	}{
		{"signed", ArgSelector{Index: 0, Operator: "InMap", Values: []string{"-2:0", "5", "0"}},
			Filter{Op: OpInMap, Ints: []int64{-2, -1, 0, 5}}},
		{"unsigned reversed", ArgSelector{Index: 1, Operator: "NotInMap", Values: []string{"4294967295:4294967293"}},
			Filter{Arg: 1, Op: OpNotInMap, Unsigned: true, Ints: []int64{4294967293, 4294967294, 4294967295}}},
		{"list", ArgSelector{Index: 0, Operator: "InMap", Values: []string{"list:dups", "3"}},
			Filter{Op: OpInMap, Ints: []int64{3}, Strings: []string{"dup", "dup2"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prog, err := Compile(inMapPolicy(tt.match))
			if err != nil {
				t.Fatal(err)
			}
			got := prog.Hooks[0].Selectors[0].Filters[0]
			slices.Sort(got.Ints)
			if !filterEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestCompileInMapRefusals: InMap on a string, values that are not
// integers, and sets past MaxInMapEntries are refused with their path.
func TestCompileInMapRefusals(t *testing.T) {
	half := strconv.Itoa(MaxInMapEntries/2 - 1)
	for _, tt := range []struct {
		name   string
		policy *TracingPolicy
		want   string
	}{
		{"string argument", selectorPolicy(SelectorSpec{MatchArgs: []ArgSelector{{Index: 1, Operator: "InMap", Values: []string{"1"}}}}),
			"spec.kprobes[0].selectors[0].matchArgs[0].operator: InMap compares integers; the argument is a string"},
		{"not an integer", inMapPolicy(ArgSelector{Index: 0, Operator: "InMap", Values: []string{"1", "x:2"}}),
			`spec.kprobes[0].selectors[0].matchArgs[0].values[1]: "x:2" is neither an integer nor a range lo:hi`},
		{"too many", inMapPolicy(ArgSelector{Index: 0, Operator: "NotInMap", Values: []string{"0:" + half, "100000:" + strconv.Itoa(100000+MaxInMapEntries/2), "list:dups"}}),
			"spec.kprobes[0].selectors[0].matchArgs[0].values: more than 65536 integers once ranges and lists are expanded (MaxInMapEntries)"},
		{"unknown list", inMapPolicy(ArgSelector{Index: 0, Operator: "InMap", Values: []string{"list:nope"}}),
			`spec.kprobes[0].selectors[0].matchArgs[0].values[0]: no list named "nope" in spec.lists`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := compileErrors(t, tt.policy)
			if !slices.Contains(got, tt.want) {
				t.Errorf("refusals:\n%s\nwant among them:\n%s", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}
