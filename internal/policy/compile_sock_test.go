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
		{"SAddr", []string{"fd00::/8", "::1", "::ffff:10.0.0.0/104", "10.0.0.0/8"}, OpSockSAddr, nil},
		{"NotDAddr", []string{"2001:db8::/32", "192.168.0.0/16"}, OpSockNotDAddr, nil},
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
		{"not an address", sockPolicy(ArgSelector{Index: 0, Operator: "NotDAddr", Values: []string{"10.0.0.0/8", "fd00::/129"}}),
			"spec.kprobes[0].selectors[0].matchArgs[0].values[1]", "is not a CIDR"},
		{"zoned address", sockPolicy(ArgSelector{Index: 0, Operator: "DAddr", Values: []string{"fe80::1%eth0"}}),
			"spec.kprobes[0].selectors[0].matchArgs[0].values[0]", "is not an IP address"},
		{"DAddr on a sockaddr", sockaddrPolicy(ArgSelector{Index: 1, Operator: "DAddr", Values: []string{"::1"}}),
			"spec.kprobes[0].selectors[0].matchArgs[0].operator", "does not apply to a sockaddr argument"},
		{"Protocol on a sockaddr", sockaddrPolicy(ArgSelector{Index: 1, Operator: "Protocol", Values: []string{"IPPROTO_TCP"}}),
			"spec.kprobes[0].selectors[0].matchArgs[0].operator", "does not apply to a sockaddr argument"},
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

// sockaddrPolicy is a connect syscall hook with its sockaddr argument and
// one selector of the given matchArgs.
func sockaddrPolicy(args ...ArgSelector) *TracingPolicy {
	return &TracingPolicy{
		APIVersion: APIVersion, Kind: KindTracingPolicy,
		Metadata: ObjectMeta{Name: "connect"},
		Spec: Spec{KProbes: []KProbeSpec{{
			Call: "sys_connect", Syscall: true,
			Args:      []ArgSpec{{Index: 0, Type: "int"}, {Index: 1, Type: "sockaddr"}},
			Selectors: []SelectorSpec{{MatchArgs: args}},
		}}},
	}
}

// TestCompileSockaddrOperators: a sockaddr's operators are the sock ones of
// its source end, IPv4 and IPv6 addresses alike.
func TestCompileSockaddrOperators(t *testing.T) {
	for _, tt := range []struct {
		operator string
		values   []string
		want     Filter
	}{
		{"SAddr", []string{"127.0.0.1", "::1", "fd00::/8"}, Filter{Arg: 1, Op: OpSockSAddr, Unsigned: true, Strings: []string{"127.0.0.1", "::1", "fd00::/8"}}},
		{"NotSAddr", []string{"::ffff:127.0.0.0/104"}, Filter{Arg: 1, Op: OpSockNotSAddr, Unsigned: true, Strings: []string{"::ffff:127.0.0.0/104"}}},
		{"SPort", []string{"443", "8000:8080"}, Filter{Arg: 1, Op: OpSockSPort, Unsigned: true, Ints: []int64{443, 443, 8000, 8080}}},
		{"NotSPortPriv", nil, Filter{Arg: 1, Op: OpSockNotSPort, Unsigned: true, Ints: []int64{0, 1023}}},
		{"Family", []string{"AF_INET6"}, Filter{Arg: 1, Op: OpSockFamily, Unsigned: true, Ints: []int64{10, 10}}},
	} {
		t.Run(tt.operator, func(t *testing.T) {
			prog, err := Compile(sockaddrPolicy(ArgSelector{Index: 1, Operator: tt.operator, Values: tt.values}))
			if err != nil {
				t.Fatal(err)
			}
			h := prog.Hooks[0]
			if h.Kind != HookConnect || h.Args[1].Kind != ArgSockaddr {
				t.Fatalf("hook %s, argument %v: want a connect hook reading a sockaddr", h.Kind, h.Args[1].Kind)
			}
			if got := h.Selectors[0].Filters[0]; !filterEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestParseCIDR: addresses and CIDRs of both families; a v4-mapped IPv6
// address stays IPv6 (Tetragon's parseAddr keeps its 16 bytes).
func TestParseCIDR(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":           "127.0.0.1/32",
		"10.1.2.3/8":          "10.0.0.0/8",
		"::1":                 "::1/128",
		" fd00::1/8 ":         "fd00::/8",
		"::ffff:10.0.0.1":     "::ffff:10.0.0.1/128",
		"::ffff:10.0.0.0/104": "::ffff:10.0.0.0/104",
	} {
		got, err := ParseCIDR(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseCIDR(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
}

func filterEqual(a, b Filter) bool {
	return a.Arg == b.Arg && a.Op == b.Op && a.String == b.String && a.Unsigned == b.Unsigned &&
		slices.Equal(a.Ints, b.Ints) && slices.Equal(a.Strings, b.Strings)
}

// TestCompileSockTracking: TrackSock and UntrackSock name a sock argument
// by its index and compile to its position in the hook's arguments; what
// the engine cannot track is refused with the field.
func TestCompileSockTracking(t *testing.T) {
	p := sockPolicy()
	k := &p.Spec.KProbes[0]
	k.Args = []ArgSpec{{Index: 1, Type: "int"}, {Index: 0, Type: "sock"}}
	k.Selectors[0].MatchActions = []ActionSelector{{Action: "TrackSock", ArgSock: 0}}
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := prog.Hooks[0].Selectors[0].Sock; got == nil || got.Untrack || got.Arg != 1 || !prog.Hooks[0].Selectors[0].Post {
		t.Errorf("TrackSock compiled as %+v", got)
	}
	k.Selectors[0].MatchActions = []ActionSelector{{Action: "untracksock", ArgSock: 0}}
	if prog, err = Compile(p); err != nil {
		t.Fatal(err)
	} else if got := prog.Hooks[0].Selectors[0].Sock; got == nil || !got.Untrack || got.Arg != 1 {
		t.Errorf("UntrackSock compiled as %+v", got)
	}

	for _, tt := range []struct {
		name   string
		policy func() *TracingPolicy
		want   string
	}{
		{"not a sock", func() *TracingPolicy {
			p := sockPolicy()
			p.Spec.KProbes[0].Args = []ArgSpec{{Index: 0, Type: "sock"}, {Index: 1, Type: "int"}}
			p.Spec.KProbes[0].Selectors[0].MatchActions = []ActionSelector{{Action: "TrackSock", ArgSock: 1}}
			return p
		}, "spec.kprobes[0].selectors[0].matchActions[0].argSock: 1: TrackSock needs the index of a sock argument"},
		{"two in a selector", func() *TracingPolicy {
			p := sockPolicy()
			p.Spec.KProbes[0].Selectors[0].MatchActions = []ActionSelector{{Action: "TrackSock"}, {Action: "UntrackSock"}}
			return p
		}, "spec.kprobes[0].selectors[0].matchActions[1].action: UntrackSock: one TrackSock or UntrackSock per selector"},
		{"returned sock", func() *TracingPolicy {
			p := sockPolicy()
			p.Spec.KProbes[0].Return, p.Spec.KProbes[0].ReturnArgAction = true, "TrackSock"
			p.Spec.KProbes[0].ReturnArg = &ArgSpec{Index: 0, Type: "int"}
			return p
		}, "spec.kprobes[0].returnArgAction: TrackSock needs a returnArg of type sock on a kernel function with return: true"},
		{"syscall hook", func() *TracingPolicy {
			p := sockaddrPolicy()
			p.Spec.KProbes[0].Selectors[0].MatchActions = []ActionSelector{{Action: "TrackSock", ArgSock: 1}}
			return p
		}, "spec.kprobes[0].selectors[0].matchActions[0].argSock: 1: TrackSock needs the index of a sock argument"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := compileErrors(t, tt.policy())
			found := false
			for _, g := range got {
				found = found || strings.HasPrefix(g, tt.want)
			}
			if !found {
				t.Errorf("refusals:\n%s\nwant one starting with:\n%s", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}

// A kernel function's returned sock (Tetragon's sk_alloc pattern) is read
// at return as one more sock argument, which returnArgAction tracks and
// matchReturnArgs selects on.
func TestCompileReturnedSock(t *testing.T) {
	p := sockPolicy()
	k := &p.Spec.KProbes[0]
	k.Call, k.Return, k.ReturnArgAction = "sk_alloc", true, "TrackSock"
	k.Args = []ArgSpec{{Index: 1, Type: "int", Label: "Family"}}
	k.ReturnArg = &ArgSpec{Index: 0, Type: "sock"}
	k.Selectors = []SelectorSpec{
		{MatchArgs: []ArgSelector{{Index: 1, Operator: "Equal", Values: []string{"2"}}}},
		{MatchReturnArgs: []ArgSelector{{Index: 0, Operator: "Family", Values: []string{"AF_INET6"}}}},
	}
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	h := prog.Hooks[0]
	if len(h.Args) != 2 || !h.Args[1].AtReturn || h.Args[1].Kind != ArgSock || h.Args[1].Index != RawReturn {
		t.Fatalf("args %+v: want the int, then the returned sock", h.Args)
	}
	for i, sel := range h.Selectors {
		if sel.Sock == nil || sel.Sock.Untrack || sel.Sock.Arg != 1 {
			t.Errorf("selector %d: sock action %+v, want TrackSock of argument 1", i, sel.Sock)
		}
	}
	if f := h.Selectors[1].RetFilters; len(f) != 1 || f[0].Arg != 1 {
		t.Errorf("matchReturnArgs on the returned sock compiled as %+v", f)
	}
	k.Args = []ArgSpec{{Index: 0, Type: "int"}, {Index: 1, Type: "int"}, {Index: 2, Type: "int"}, {Index: 3, Type: "int"}, {Index: 4, Type: "int"}}
	k.Selectors = nil
	if _, err := Compile(p); err == nil || !strings.Contains(err.Error(), "spec.kprobes[0].returnArg: a returned sock is read as an argument: at most 4 arguments besides it") {
		t.Errorf("five arguments and a returned sock: %v", err)
	}
}
