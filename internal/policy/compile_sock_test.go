package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// sockPolicy is a kprobe on tcp_connect with its struct sock * argument
// and one selector of the given matchArgs on it.
func sockPolicy(args ...ArgSelector) *TracingPolicy {
	return &TracingPolicy{
		APIVersion: APIVersion, Kind: KindTracingPolicy,
		Metadata: ObjectMeta{Name: "connect"},
		Spec: Spec{KProbes: []KProbeSpec{{
			Call: "tcp_connect",
			Args: []ArgSpec{{Index: 0, Type: "sock"}},
			Selectors: []SelectorSpec{{
				MatchArgs:    args,
				MatchActions: []ActionSelector{{Action: "Sigkill"}},
			}},
		}}},
	}
}

// TestCompileSockArgument compiles Tetragon's connect-only-private-addrs:
// the sock argument of a kernel function is read, and NotDAddr keeps its
// CIDRs for the kernel's address sets.
func TestCompileSockArgument(t *testing.T) {
	private := []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8"}
	prog, err := Compile(sockPolicy(ArgSelector{Index: 0, Operator: "NotDAddr", Values: private}))
	if err != nil {
		t.Fatal(err)
	}
	h := prog.Hooks[0]
	if h.Kind != HookKprobe || len(h.Args) != 1 || h.Args[0].Kind != ArgSock || h.Args[0].Type != "sock" {
		t.Fatalf("hook %+v: want a kprobe reading a sock", h)
	}
	sel := h.Selectors[0]
	want := Filter{Arg: 0, Op: OpSockNotDAddr, Unsigned: true, Strings: private}
	if len(sel.Filters) != 1 || !filterEqual(sel.Filters[0], want) {
		t.Errorf("filters %+v, want %+v", sel.Filters, want)
	}
	if sel.Signal != signalKill {
		t.Errorf("signal %d, want SIGKILL", sel.Signal)
	}
}

// TestCompileSockOperators pins what each of Tetragon's sock operators
// compiles to: the field's operator and its values as ranges.
func TestCompileSockOperators(t *testing.T) {
	for _, tt := range []struct {
		operator string
		values   []string
		op       Op
		ints     []int64
	}{
		{"SAddr", []string{"10.0.0.0/8", "127.0.0.1"}, OpSockSAddr, nil},
		{"NotSAddr", []string{"10.0.0.1"}, OpSockNotSAddr, nil},
		{"DAddr", []string{"192.168.0.0/16"}, OpSockDAddr, nil},
		{"DPort", []string{"443", "80"}, OpSockDPort, []int64{443, 443, 80, 80}},
		{"NotDPort", []string{"8000:8080"}, OpSockNotDPort, []int64{8000, 8080}},
		{"SPort", []string{"9:1"}, OpSockSPort, []int64{1, 9}},
		{"NotSPort", []string{"22"}, OpSockNotSPort, []int64{22, 22}},
		{"SPortPriv", nil, OpSockSPort, []int64{0, 1023}},
		{"NotSPortPriv", nil, OpSockNotSPort, []int64{0, 1023}},
		{"DPortPriv", nil, OpSockDPort, []int64{0, 1023}},
		{"NotDPortPriv", nil, OpSockNotDPort, []int64{0, 1023}},
		{"Protocol", []string{"IPPROTO_TCP", "17"}, OpSockProtocol, []int64{6, 6, 17, 17}},
		{"Family", []string{"AF_INET", "AF_INET6"}, OpSockFamily, []int64{2, 2, 10, 10}},
		{"State", []string{"TCP_SYN_SENT", "1:2"}, OpSockState, []int64{2, 2, 1, 2}},
		// Tetragon's lower-case spellings.
		{"dport", []string{"53"}, OpSockDPort, []int64{53, 53}},
	} {
		t.Run(tt.operator, func(t *testing.T) {
			prog, err := Compile(sockPolicy(ArgSelector{Index: 0, Operator: tt.operator, Values: tt.values}))
			if err != nil {
				t.Fatal(err)
			}
			got := prog.Hooks[0].Selectors[0].Filters[0]
			want := Filter{Op: tt.op, Unsigned: true, Ints: tt.ints}
			if SockAddrOp(tt.op) {
				want.Strings = tt.values
			}
			if !filterEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

// TestCompileSockRefusals: what the engine cannot do on a sock is refused
// with the path of the field and why.
func TestCompileSockRefusals(t *testing.T) {
	nine := []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}
	for _, tt := range []struct {
		name   string
		policy *TracingPolicy
		path   string
		reason string
	}{
		{"IPv6 CIDR", sockPolicy(ArgSelector{Index: 0, Operator: "NotDAddr", Values: []string{"10.0.0.0/8", "fd00::/8"}}),
			"spec.kprobes[0].selectors[0].matchArgs[0].values[1]", "IPv6 is not supported"},
		{"string operator", sockPolicy(ArgSelector{Index: 0, Operator: "Equal", Values: []string{"1"}}),
			"spec.kprobes[0].selectors[0].matchArgs[0].operator", "does not apply to a sock argument"},
		{"unknown protocol", sockPolicy(ArgSelector{Index: 0, Operator: "Protocol", Values: []string{"IPPROTO_BOGUS"}}),
			"spec.kprobes[0].selectors[0].matchArgs[0].values[0]", "a name such as IPPROTO_TCP"},
		{"port out of range", sockPolicy(ArgSelector{Index: 0, Operator: "DPort", Values: []string{"65536"}}),
			"spec.kprobes[0].selectors[0].matchArgs[0].values[0]", "a number from 0 to 65535"},
		{"too many ports", sockPolicy(ArgSelector{Index: 0, Operator: "DPort", Values: nine}),
			"spec.kprobes[0].selectors[0].matchArgs[0].values", "9 values, at most 8"},
		{"too many with a range", sockPolicy(ArgSelector{Index: 0, Operator: "DPort", Values: []string{"1", "2", "3", "4", "10:20"}}),
			"spec.kprobes[0].selectors[0].matchArgs[0].values", "or 4 when one is a range"},
		{"privileged ports with values", sockPolicy(ArgSelector{Index: 0, Operator: "DPortPriv", Values: []string{"22"}}),
			"spec.kprobes[0].selectors[0].matchArgs[0].values", "takes no values"},
		{"sock at a syscall", func() *TracingPolicy {
			p := sockPolicy()
			p.Spec.KProbes[0].Call, p.Spec.KProbes[0].Syscall = "sys_connect", true
			return p
		}(), "spec.kprobes[0].args[0].type", "see user-space values"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.policy)
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("Compile: %v, want a CompileError", err)
			}
			if ce.Path != tt.path || !strings.Contains(ce.Reason, tt.reason) {
				t.Errorf("refused %v; want %s: ...%s...", err, tt.path, tt.reason)
			}
		})
	}
}

func filterEqual(a, b Filter) bool {
	return a.Arg == b.Arg && a.Op == b.Op && a.String == b.String && a.Unsigned == b.Unsigned &&
		slices.Equal(a.Ints, b.Ints) && slices.Equal(a.Strings, b.Strings)
}
