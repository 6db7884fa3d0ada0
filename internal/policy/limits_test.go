package policy_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/internal/policy"
)

// limitBase is a valid policy with one kprobe (an int, a string, a uint64
// and a sock argument, one selector), one tracepoint and one uprobe, for
// the limit tests to grow.
func limitBase() *policy.TracingPolicy {
	return &policy.TracingPolicy{
		APIVersion: policy.APIVersion,
		Kind:       policy.KindTracingPolicy,
		Metadata:   policy.ObjectMeta{Name: "limits"},
		Spec: policy.Spec{
			KProbes: []policy.KProbeSpec{{
				Call: "security_file_open",
				Args: []policy.ArgSpec{
					{Index: 0, Type: "int"}, {Index: 1, Type: "string"}, {Index: 2, Type: "uint64"}, {Index: 3, Type: "sock"},
				},
				Return:    true,
				ReturnArg: &policy.ArgSpec{Index: 0, Type: "int"},
				Selectors: []policy.SelectorSpec{{}},
			}},
			Tracepoints: []policy.TracepointSpec{{Subsystem: "sched", Event: "sched_switch"}},
			UProbes:     []policy.UProbeSpec{{Path: "/bin/sh", Symbols: []string{"main"}}},
		},
	}
}

func repeat[T any](n int, f func(i int) T) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// TestLimits checks every limit of limits.go: a policy at the limit is
// valid, one past it is refused with the field and the limit's name.
func TestLimits(t *testing.T) {
	sel := func(p *policy.TracingPolicy) *policy.SelectorSpec { return &p.Spec.KProbes[0].Selectors[0] }
	const s0 = "spec.kprobes[0].selectors[0]"
	tests := []struct {
		limit int
		grow  func(p *policy.TracingPolicy, n int)
		want  string // the problem at limit+1, %d is limit+1
	}{
		{policy.MaxHooksPerPolicy, func(p *policy.TracingPolicy, n int) {
			p.Spec.KProbes = repeat(n-2, func(int) policy.KProbeSpec { return policy.KProbeSpec{Call: "fd_install"} })
		}, "spec: %d hooks, at most 128 (MaxHooksPerPolicy)"},
		{policy.MaxListsPerPolicy, func(p *policy.TracingPolicy, n int) {
			p.Spec.Lists = repeat(n, func(i int) policy.ListSpec {
				return policy.ListSpec{Name: "l" + strconv.Itoa(i), Type: "syscalls", Values: []string{"sys_dup"}}
			})
		}, "spec.lists: %d lists, at most 16 (MaxListsPerPolicy)"},
		{policy.MaxListValues, func(p *policy.TracingPolicy, n int) {
			p.Spec.Lists = []policy.ListSpec{{Name: "l", Type: "syscalls", Values: repeat(n, func(int) string { return "sys_dup" })}}
		}, "spec.lists[0].values: %d values, at most 512 (MaxListValues)"},
		{policy.MaxArgsPerHook, func(p *policy.TracingPolicy, n int) {
			p.Spec.Tracepoints[0].Args = repeat(n, func(i int) policy.ArgSpec { return policy.ArgSpec{Index: uint32(i), Type: "int"} })
		}, "spec.tracepoints[0].args: %d arguments, at most 5 (MaxArgsPerHook)"},
		{policy.MaxFunctionArgIndex + 1, func(p *policy.TracingPolicy, n int) {
			p.Spec.KProbes[0].Args = []policy.ArgSpec{{Index: uint32(n - 1), Type: "int"}}
		}, "spec.kprobes[0].args[0].index: 5: a kprobe reads arguments 0 to 4"},
		{policy.MaxRawTracepointArgIndex + 1, func(p *policy.TracingPolicy, n int) {
			p.Spec.Tracepoints[0].Raw = true
			p.Spec.Tracepoints[0].Args = []policy.ArgSpec{{Index: uint32(n - 1), Type: "int"}}
		}, "spec.tracepoints[0].args[0].index: 6: a raw tracepoint reads arguments 0 to 5"},
		{policy.MaxSelectorsPerHook, func(p *policy.TracingPolicy, n int) {
			p.Spec.KProbes[0].Selectors = make([]policy.SelectorSpec, n)
		}, "spec.kprobes[0].selectors: %d selectors, at most 5 (MaxSelectorsPerHook)"},
		{policy.MaxMatchArgsPerSelector, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchArgs = repeat(n, func(int) policy.ArgSelector {
				return policy.ArgSelector{Index: 0, Operator: "Equal", Values: []string{"1"}}
			})
		}, s0 + ".matchArgs: %d filters (with matchData), at most 5 (MaxMatchArgsPerSelector)"},
		{policy.MaxMatchReturnArgsPerSelector, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchReturnArgs = repeat(n, func(int) policy.ArgSelector {
				return policy.ArgSelector{Index: 0, Operator: "LT", Values: []string{"0"}}
			})
		}, s0 + ".matchReturnArgs: %d filters, at most 2 (MaxMatchReturnArgsPerSelector)"},
		{policy.MaxIntValues, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchArgs = []policy.ArgSelector{{Index: 2, Operator: "Mask", Values: repeat(n, strconv.Itoa)}}
		}, s0 + ".matchArgs[0].values: %d values, at most 4 for Mask (MaxIntValues)"},
		{policy.MaxMapValues, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchArgs = []policy.ArgSelector{{Index: 2, Operator: "NotInMap", Values: repeat(n, strconv.Itoa)}}
		}, s0 + ".matchArgs[0].values: %d values, at most 1024 for NotInMap (MaxMapValues)"},
		{policy.MaxRangeWidth, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchArgs = []policy.ArgSelector{{Index: 2, Operator: "InMap", Values: []string{"1:" + strconv.Itoa(n)}}}
		}, s0 + `.matchArgs[0].values[0]: "1:%d" spans more than 65536 values (MaxRangeWidth)`},
		{policy.MaxInMapEntries, func(p *policy.TracingPolicy, n int) {
			// Two ranges, each within MaxRangeWidth, that together
			// reach n integers.
			half := n / 2
			sel(p).MatchArgs = []policy.ArgSelector{{Index: 2, Operator: "InMap",
				Values: []string{"0:" + strconv.Itoa(half-1), "100000:" + strconv.Itoa(100000+n-half-1)}}}
		}, s0 + ".matchArgs[0].values: %d integers once ranges and lists are expanded, at most 65536 for InMap (MaxInMapEntries)"},
		{policy.MaxStringValues, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchArgs = []policy.ArgSelector{{Index: 1, Operator: "NotPrefix", Values: repeat(n, func(i int) string { return "/" + strconv.Itoa(i) })}}
		}, s0 + ".matchArgs[0].values: %d values, at most 256 for NotPrefix (MaxStringValues)"},
		{policy.MaxStringLen, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchArgs = []policy.ArgSelector{{Index: 1, Operator: "NotEqual", Values: []string{strings.Repeat("a", n)}}}
		}, s0 + ".matchArgs[0].values[0]: %d bytes, at most 255 for NotEqual (MaxStringLen)"},
		{policy.MaxPrefixLen, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchArgs = []policy.ArgSelector{{Index: 1, Operator: "Prefix", Values: []string{strings.Repeat("a", n)}}}
		}, s0 + ".matchArgs[0].values[0]: %d bytes, at most 252 for Prefix (MaxPrefixLen)"},
		{policy.MaxPostfixLen, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchArgs = []policy.ArgSelector{{Index: 1, Operator: "NotPostfix", Values: []string{strings.Repeat("a", n)}}}
		}, s0 + ".matchArgs[0].values[0]: %d bytes, at most 127 for NotPostfix (MaxPostfixLen)"},
		{policy.MaxSubstringLen, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchArgs = []policy.ArgSelector{{Index: 1, Operator: "SubStringIgnCase", Values: []string{strings.Repeat("a", n)}}}
		}, s0 + ".matchArgs[0].values[0]: %d bytes, at most 99 (MaxSubstringLen)"},
		{policy.MaxMatchBinariesPerSelector, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchBinaries = repeat(n, func(int) policy.BinarySelector {
				return policy.BinarySelector{Operator: "In", Values: []string{"/bin/sh"}}
			})
		}, s0 + ".matchBinaries: %d filters, at most 1 (MaxMatchBinariesPerSelector)"},
		{policy.MaxBinaryValues, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchParentBinaries = []policy.BinarySelector{{Operator: "NotIn", Values: repeat(n, func(i int) string { return "/bin/" + strconv.Itoa(i) })}}
		}, s0 + ".matchParentBinaries[0].values: %d values, at most 128 (MaxBinaryValues)"},
		{policy.MaxBinaryPathLen, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchBinaries = []policy.BinarySelector{{Operator: "In", Values: []string{"/" + strings.Repeat("b", n-1)}}}
		}, s0 + ".matchBinaries[0].values[0]: %d bytes, at most 255 (MaxBinaryPathLen)"},
		{policy.MaxMatchPIDsPerSelector, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchPIDs = repeat(n, func(int) policy.PIDSelector { return policy.PIDSelector{Operator: "NotIn", Values: []uint32{1}} })
		}, s0 + ".matchPIDs: %d filters, at most 4 (MaxMatchPIDsPerSelector)"},
		{policy.MaxPIDValues, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchPIDs = []policy.PIDSelector{{Operator: "In", Values: repeat(n, func(i int) uint32 { return uint32(i) })}}
		}, s0 + ".matchPIDs[0].values: %d PIDs, at most 4 (MaxPIDValues)"},
		{policy.MaxMatchNamespacesPerSelector, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchNamespaces = repeat(n, func(int) policy.NamespaceSelector {
				return policy.NamespaceSelector{Namespace: "Net", Operator: "In", Values: []string{"host_ns"}}
			})
		}, s0 + ".matchNamespaces: %d filters, at most 10 (MaxMatchNamespacesPerSelector)"},
		{policy.MaxNamespaceValues, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchNamespaces = []policy.NamespaceSelector{{Namespace: "Net", Operator: "NotIn", Values: repeat(n, strconv.Itoa)}}
		}, s0 + ".matchNamespaces[0].values: %d values, at most 4 (MaxNamespaceValues)"},
		{policy.MaxMatchCapabilitiesPerSelector, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchCapabilities = repeat(n, func(int) policy.CapabilitySelector {
				return policy.CapabilitySelector{Operator: "In", Values: []string{"CAP_BPF"}}
			})
		}, s0 + ".matchCapabilities: %d filters, at most 1 (MaxMatchCapabilitiesPerSelector): Tetragon's kernel code reads only the first"},
		{policy.MaxMatchNamespaceChangesPerSelector, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchNamespaceChanges = repeat(n, func(int) map[string]any {
				return map[string]any{"operator": "In", "values": []any{"Mnt"}}
			})
		}, s0 + ".matchNamespaceChanges: %d filters, at most 1"},
		{policy.MaxActionsPerSelector, func(p *policy.TracingPolicy, n int) {
			sel(p).MatchActions = repeat(n, func(int) policy.ActionSelector { return policy.ActionSelector{Action: "Post"} })
		}, s0 + ".matchActions: %d actions, at most 3 (MaxActionsPerSelector)"},
		{policy.MaxTags, func(p *policy.TracingPolicy, n int) {
			p.Spec.KProbes[0].Tags = repeat(n, func(int) string { return "tag" })
		}, "spec.kprobes[0].tags: %d tags, at most 16 (MaxTags)"},
		{policy.MaxTagLen, func(p *policy.TracingPolicy, n int) {
			p.Spec.Tracepoints[0].Tags = []string{strings.Repeat("t", n)}
		}, "spec.tracepoints[0].tags[0]: %d characters, want 2 to 128"},
		{policy.MaxMessageLen, func(p *policy.TracingPolicy, n int) {
			p.Spec.UProbes[0].Message = strings.Repeat("m", n)
		}, "spec.uprobes[0].message: %d characters, at most 256 (MaxMessageLen)"},
		{policy.MaxUprobeTargets, func(p *policy.TracingPolicy, n int) {
			p.Spec.UProbes[0].Symbols = repeat(n-1, func(i int) string { return "f" + strconv.Itoa(i) })
			p.Spec.UProbes[0].Offsets = []uint64{16}
		}, "spec.uprobes[0]: %d symbols, offsets and addrs, at most 64 (MaxUprobeTargets)"},
	}
	for _, tt := range tests {
		want := tt.want
		if strings.Contains(want, "%d") {
			want = fmt.Sprintf(tt.want, tt.limit+1)
		}
		t.Run(strings.SplitN(want, ":", 2)[0], func(t *testing.T) {
			at := limitBase()
			tt.grow(at, tt.limit)
			if err := policy.Validate(at); err != nil {
				t.Errorf("at the limit (%d): %v", tt.limit, err)
			}
			past := limitBase()
			tt.grow(past, tt.limit+1)
			got := problems(t, policy.Validate(past))
			if !slices.Contains(got, want) {
				t.Errorf("past the limit:\n%s\nwant among them:\n%s", strings.Join(got, "\n"), want)
			}
		})
	}
	// The lower bounds of tags and messages.
	p := limitBase()
	p.Spec.KProbes[0].Tags = []string{"x"}
	p.Spec.KProbes[0].Message = "x"
	want := []string{
		"spec.kprobes[0].message: 1 characters, at least 2",
		"spec.kprobes[0].tags[0]: 1 characters, want 2 to 128",
	}
	if got := problems(t, policy.Validate(p)); !slices.Equal(got, want) {
		t.Errorf("short tag and message:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
