package kernel_test

import (
	"debug/elf"
	"runtime"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

func tracepointPolicy(tp policy.TracepointSpec) *policy.TracingPolicy {
	return &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "tracepoint-test"},
		Spec:     policy.Spec{Tracepoints: []policy.TracepointSpec{tp}},
	}
}

func TestTracepointHookReadsFieldsAndFilters(t *testing.T) {
	_, f := files(t, "traced", "untraced")
	// syscalls/sys_enter_openat: fields 0-3 are common, 4 __syscall_nr,
	// 5 dfd, 6 filename (a user pointer), 7 flags.
	s, ph := install(t, tracepointPolicy(policy.TracepointSpec{
		Subsystem: "syscalls", Event: "sys_enter_openat",
		Args: []policy.ArgSpec{{Index: 6, Type: "string"}, {Index: 7, Type: "int"}},
		Selectors: []policy.SelectorSpec{{MatchArgs: []policy.ArgSelector{
			{Index: 6, Operator: "Equal", Values: []string{f[0]}},
		}}},
	}))
	recs := hookRecords(t, s, func() []int { return []int{runCmd(t, "/bin/cat", f[1], f[0])} })
	if len(recs) != 1 || recs[0].Args[0].Str != f[0] {
		t.Fatalf("records %+v: want one for %s", recs, f[0])
	}
	if c, _ := s.Counters(ph.Hooks[0]); c.Hits < 2 || c.Posted != 1 {
		t.Errorf("counters %+v", c)
	}
}

// A tracepoint field without a type (auto) is read as the format declares
// it: sched_process_exec's filename, a __data_loc string, and its pid, an
// int. A char array has no type to read it with, and is refused by name.
func TestTracepointHookAutoTypes(t *testing.T) {
	s, ph := install(t, tracepointPolicy(policy.TracepointSpec{
		Subsystem: "sched", Event: "sched_process_exec",
		Args: []policy.ArgSpec{{Index: 4}, {Index: 5, Type: "auto"}},
	}))
	if args := ph.Hooks[0].Hook.Args; args[0].Kind != policy.ArgString || args[1].Kind != policy.ArgInt {
		t.Errorf("kinds after install %v, %v: want a string and an int", args[0].Kind, args[1].Kind)
	}
	var pid int
	recs := hookRecords(t, s, func() []int {
		pid = runCmd(t, "/usr/bin/printenv", "HOME")
		return []int{pid}
	})
	if len(recs) != 1 || recs[0].Args[0].Str != "/usr/bin/printenv" || recs[0].Args[1].Int != int64(pid) {
		t.Fatalf("records %+v: want the exec of /usr/bin/printenv by %d", recs, pid)
	}
	// sched_switch's field 4 is prev_comm, a char[16].
	_, _, err := tryInstall(t, tracepointPolicy(policy.TracepointSpec{
		Subsystem: "sched", Event: "sched_switch", Args: []policy.ArgSpec{{Index: 4}},
	}), kernel.SensorOptions{RingBufferSize: 1 << 21})
	if err == nil || !strings.Contains(err.Error(), "spec.tracepoints[0].args[0].type: auto: field") || !strings.Contains(err.Error(), "is an array") {
		t.Fatalf("install with an auto char array: %v, want a refusal naming the field", err)
	}
}

func TestTracepointHookReadsDataLocStrings(t *testing.T) {
	// sched/sched_process_exec: field 4 is filename, a __data_loc string
	// inside the record; 5 is pid.
	s, _ := install(t, tracepointPolicy(policy.TracepointSpec{
		Subsystem: "sched", Event: "sched_process_exec",
		Args: []policy.ArgSpec{{Index: 4, Type: "string"}, {Index: 5, Type: "int"}},
		Selectors: []policy.SelectorSpec{{MatchArgs: []policy.ArgSelector{
			{Index: 4, Operator: "Postfix", Values: []string{"/printenv"}},
		}}},
	}))
	var pid int
	recs := hookRecords(t, s, func() []int {
		runCmd(t, "/bin/true")
		pid = runCmd(t, "/usr/bin/printenv", "HOME")
		return []int{pid}
	})
	if len(recs) != 1 || recs[0].Args[0].Str != "/usr/bin/printenv" || recs[0].Args[1].Int != int64(pid) {
		t.Fatalf("records %+v: want the exec of /usr/bin/printenv by %d", recs, pid)
	}
}

// uprobeTarget is a C target in testdata/ (see buildC).
const uprobeTarget = "uprobe.c"

func TestUprobeHookReadsFunctionArgumentsAndReturn(t *testing.T) {
	testenv.RequireBPF(t)
	bin := buildC(t, uprobeTarget)
	s, _ := install(t, &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "uprobe-test"},
		Spec: policy.Spec{UProbes: []policy.UProbeSpec{{
			Path: bin, Symbols: []string{"vigil_target"}, Return: true,
			Args:      []policy.ArgSpec{{Index: 0, Type: "int"}, {Index: 1, Type: "string"}},
			ReturnArg: &policy.ArgSpec{Index: 0, Type: "int"},
			Selectors: []policy.SelectorSpec{{MatchArgs: []policy.ArgSelector{
				{Index: 1, Operator: "Equal", Values: []string{"hello"}},
			}}},
		}}},
	})
	recs := hookRecords(t, s, func() []int {
		return []int{runCmd(t, bin, "hello"), runCmd(t, bin, "other")}
	})
	// printf returns the bytes written: "2 hello\n".
	if len(recs) != 1 || recs[0].Args[0].Int != 2 || recs[0].Args[1].Str != "hello" || !recs[0].Return || recs[0].Ret != 8 {
		t.Fatalf("records %+v: want vigil_target(2, \"hello\") = 8", *recs[0])
	}
}

// A uprobe by offset and by address: the same target, attached at the
// file offset of vigil_target (Tetragon's offsets, computed here through
// its section) and at its virtual address (Tetragon's addrs).
func TestUprobeHookByFileOffset(t *testing.T) {
	testenv.RequireBPF(t)
	bin := buildC(t, uprobeTarget)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	var off, addr uint64
	for _, s := range syms {
		if s.Name == "vigil_target" && int(s.Section) < len(f.Sections) {
			sec := f.Sections[s.Section]
			off, addr = s.Value-sec.Addr+sec.Offset, s.Value
		}
	}
	if off == 0 {
		t.Fatal("vigil_target not found in the target")
	}
	for _, u := range []policy.UProbeSpec{{Offsets: []uint64{off}}, {Addrs: []uint64{addr}}} {
		name := "offsets"
		if u.Addrs != nil {
			name = "addrs"
		}
		t.Run(name, func(t *testing.T) {
			u.Path = bin
			u.Args = []policy.ArgSpec{{Index: 0, Type: "int"}, {Index: 1, Type: "string"}}
			s, _ := install(t, &policy.TracingPolicy{
				APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
				Metadata: policy.ObjectMeta{Name: "uprobe-offset"},
				Spec:     policy.Spec{UProbes: []policy.UProbeSpec{u}},
			})
			recs := hookRecords(t, s, func() []int { return []int{runCmd(t, bin, "a", "b")} })
			if len(recs) != 1 || recs[0].Args[0].Int != 3 || recs[0].Args[1].Str != "a" {
				t.Fatalf("records %+v: want vigil_target(3, \"a\")", recs)
			}
		})
	}
	t.Run("address outside the code", func(t *testing.T) {
		_, _, err := tryInstall(t, &policy.TracingPolicy{
			APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
			Metadata: policy.ObjectMeta{Name: "uprobe-addr"},
			Spec:     policy.Spec{UProbes: []policy.UProbeSpec{{Path: bin, Addrs: []uint64{1 << 60}}}},
		}, kernel.SensorOptions{RingBufferSize: 1 << 21})
		if err == nil || !strings.Contains(err.Error(), "spec.uprobes[0].addrs[0]: 0x1000000000000000 is in no executable segment") {
			t.Fatalf("install: %v; want a refusal naming the address", err)
		}
	})
}

// secondArgReg is the register of a C function's second argument, by the
// name Tetragon's pt_regs data entries use.
var secondArgReg = map[string]string{"amd64": "rsi", "arm64": "x1"}[runtime.GOARCH]

// A uprobe's data entry read from a register (source pt_regs): the second
// argument of vigil_target, a user string in rsi (x1 on arm64), filtered by
// matchData.
func TestUprobeHookDataFromRegisters(t *testing.T) {
	testenv.RequireBPF(t)
	bin := buildC(t, uprobeTarget)
	s, _ := install(t, &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "uprobe-data"},
		Spec: policy.Spec{UProbes: []policy.UProbeSpec{{
			Path: bin, Symbols: []string{"vigil_target"},
			Args:      []policy.ArgSpec{{Index: 0, Type: "int"}},
			Data:      []policy.ArgSpec{{Type: "string", Source: "pt_regs", Resolve: secondArgReg}},
			Selectors: []policy.SelectorSpec{{MatchData: []policy.ArgSelector{{Index: 0, Operator: "Equal", Values: []string{"hello"}}}}},
		}}},
	})
	recs := hookRecords(t, s, func() []int {
		return []int{runCmd(t, bin, "hello"), runCmd(t, bin, "other")}
	})
	if len(recs) != 1 || recs[0].Args[0].Int != 2 || recs[0].Args[1].Str != "hello" {
		t.Fatalf("records %+v: want vigil_target(2, \"hello\") with the string read from %s", recs, secondArgReg)
	}
}
