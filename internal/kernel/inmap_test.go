package kernel_test

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/policy"
)

// TestInMap looks arguments up in the kernel's integer sets. The
// raw_syscalls/sys_enter hook takes Tetragon's usual form, the syscall id
// InMap a list of syscalls: only this test's dup and dup3 calls pass, out
// of everything the process calls. The dup hook's NotInMap keeps the
// descriptors outside 0-2 and 100: of dup(1), dup(100) and dup(fd), only
// the last is reported.
func TestInMap(t *testing.T) {
	f, err := os.Open("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	s, ph := install(t, &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "inmap"},
		Spec: policy.Spec{
			Lists: []policy.ListSpec{{Name: "dups", Type: "syscalls", Values: []string{"sys_dup", "sys_dup3"}}},
			Tracepoints: []policy.TracepointSpec{{
				Subsystem: "raw_syscalls", Event: "sys_enter",
				Args: []policy.ArgSpec{{Index: 4, Type: "syscall64"}},
				Selectors: []policy.SelectorSpec{{
					MatchArgs: []policy.ArgSelector{{Index: 4, Operator: "InMap", Values: []string{"list:dups"}}},
				}},
			}},
			KProbes: []policy.KProbeSpec{{
				Call: "sys_dup", Syscall: true,
				Args: []policy.ArgSpec{{Index: 0, Type: "uint32"}},
				Selectors: []policy.SelectorSpec{{
					MatchArgs: []policy.ArgSelector{{Index: 0, Operator: "NotInMap", Values: []string{"2:0", "100"}}},
				}},
			}},
		},
	})
	var dups []int
	recs := hookRecords(t, s, func() []int {
		for _, old := range []int{1, 100, fd} {
			if n, err := unix.Dup(old); err == nil {
				dups = append(dups, n)
			}
		}
		// dup3, which both architectures have (dup2 is x86-64's alone).
		if _, _, errno := unix.Syscall(unix.SYS_DUP3, uintptr(fd), 100, 0); errno == 0 {
			dups = append(dups, 100)
		}
		return []int{os.Getpid()}
	})
	for _, n := range dups {
		unix.Close(n)
	}
	byKind := map[uint32]policy.HookKind{}
	for _, ih := range ph.Hooks {
		byKind[ih.ID] = ih.Hook.Kind
	}
	var ids, fds []int64
	for _, r := range recs {
		switch byKind[r.HookID] {
		case policy.HookTracepoint:
			ids = append(ids, r.Args[0].Int)
		case policy.HookSyscall:
			fds = append(fds, r.Args[0].Int)
		}
	}
	// The kernel's numbers, from x/sys (dup is 32 and dup3 292 on x86-64).
	if want := []int64{unix.SYS_DUP, unix.SYS_DUP, unix.SYS_DUP, unix.SYS_DUP3}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("syscall ids reported %v, want %v", ids, want)
	}
	if want := []int64{int64(fd)}; fmt.Sprint(fds) != fmt.Sprint(want) {
		t.Errorf("dup descriptors reported %v, want %v", fds, want)
	}
}
