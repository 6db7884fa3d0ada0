package kernel

import (
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/vigilsec/vigil/internal/policy"
)

// memberOffset is a struct member's offset as BTF states it, looking into
// anonymous unions (struct file's f_path is in one from 6.13).
func memberOffset(t *testing.T, spec *btf.Spec, st, name string) uint16 {
	t.Helper()
	var s *btf.Struct
	if err := spec.TypeByName(st, &s); err != nil {
		t.Fatal(err)
	}
	var find func([]btf.Member) (uint32, bool)
	find = func(ms []btf.Member) (uint32, bool) {
		for _, m := range ms {
			if m.Name == name {
				return m.Offset.Bytes(), true
			}
			if u, ok := btf.UnderlyingType(m.Type).(*btf.Union); ok && m.Name == "" {
				if off, ok := find(u.Members); ok {
					return m.Offset.Bytes() + off, true
				}
			}
		}
		return 0, false
	}
	off, ok := find(s.Members)
	if !ok {
		t.Fatalf("struct %s has no %s", st, name)
	}
	return uint16(off)
}

// TestResolveAgainstKernelBTF follows resolve paths through this kernel's
// BTF, from the parameters of real functions, to the steps the kernel
// takes; bad paths are refused naming the member.
func TestResolveAgainstKernelBTF(t *testing.T) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		// Vigil's programs need BTF on every kernel it supports.
		t.Fatalf("the kernel's BTF: %v", err)
	}
	off := func(st, name string) uint16 { return memberOffset(t, spec, st, name) }
	params := func(fn string) []btf.FuncParam {
		ps, err := hookParams(spec, &policy.Hook{Kind: policy.HookKprobe, Calls: []string{fn}})
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	arg := func(kind policy.ArgKind, path string) policy.Arg {
		return policy.Arg{Kind: kind, Index: 0, Resolve: strings.Split(path, ".")}
	}
	for _, tc := range []struct {
		fn   string
		arg  policy.Arg
		want resolution
	}{
		// A pointer member, read as the pointer: struct file *.
		{"security_bprm_check", arg(policy.ArgFile, "file"), resolution{ops: []uint16{off("linux_binprm", "file")}, load: 8}},
		// An embedded struct: its address is the struct path *.
		{"security_bprm_check", arg(policy.ArgPath, "file.f_path"),
			resolution{ops: []uint16{off("linux_binprm", "file"), resDeref, off("file", "f_path")}}},
		// An int member, loaded with its size.
		{"security_bprm_check", policy.Arg{Kind: policy.ArgInt, Size: 4, Signed: true, Resolve: []string{"argc"}},
			resolution{ops: []uint16{off("linux_binprm", "argc")}, load: 4}},
		// A char array: its address is the string.
		{"wake_up_new_task", arg(policy.ArgString, "comm"), resolution{ops: []uint16{off("task_struct", "comm")}}},
		// Through two pointers to a char array.
		{"wake_up_new_task", arg(policy.ArgString, "real_parent.comm"),
			resolution{ops: []uint16{off("task_struct", "real_parent"), resDeref, off("task_struct", "comm")}}},
	} {
		got, err := resolveArg(params(tc.fn), tc.arg)
		if err != nil {
			t.Errorf("%s %v: %v", tc.fn, tc.arg.Resolve, err)
			continue
		}
		// A member at offset 0 adds no step.
		want := tc.want
		want.ops = slices.DeleteFunc(want.ops, func(op uint16) bool { return op == 0 })
		if !slices.Equal(got.ops, want.ops) || got.load != want.load {
			t.Errorf("%s %v: %+v, want %+v", tc.fn, tc.arg.Resolve, got, want)
		}
	}
	// A raw tracepoint's parameters leave out its leading __data:
	// sched_process_exec(p, old_pid, bprm).
	raw, err := hookParams(spec, &policy.Hook{Kind: policy.HookRawTracepoint, Calls: []string{"sched/sched_process_exec"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := resolveArg(raw, policy.Arg{Kind: policy.ArgFile, Index: 2, Resolve: []string{"file"}})
	if want := (resolution{ops: []uint16{off("linux_binprm", "file")}, load: 8}); err != nil || !slices.Equal(got.ops, want.ops) || got.load != want.load {
		t.Errorf("sched_process_exec bprm->file: %+v, %v; want %+v", got, err, want)
	}
	for _, tc := range []struct {
		fn   string
		arg  policy.Arg
		want string
	}{
		{"security_bprm_check", arg(policy.ArgString, "nosuch"), `has no member "nosuch"`},
		{"security_bprm_check", arg(policy.ArgString, "argc"), "use an integer type"},
		{"security_bprm_check", arg(policy.ArgInt, "file.f_path"), "use the type of that struct"},
		{"wake_up_new_task", arg(policy.ArgString, "comm[99]"), "not 100"},
		{"no_such_function_vigil", arg(policy.ArgString, "comm"), "no_such_function_vigil"},
	} {
		var err error
		if tc.fn == "no_such_function_vigil" {
			_, err = hookParams(spec, &policy.Hook{Kind: policy.HookKprobe, Calls: []string{tc.fn}})
		} else {
			_, err = resolveArg(params(tc.fn), tc.arg)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: %v, want an error with %q", tc.fn, tc.arg.Resolve, err, tc.want)
		}
	}
}

func TestReleaseAtLeast(t *testing.T) {
	for _, c := range []struct {
		release string
		want    bool
	}{
		{"5.10.0-46-cloud-amd64", false},
		{"6.0.19", false},
		{"6.1.0-56-cloud-amd64", true},
		{"6.12.118+deb13-cloud-arm64", true},
		{"7.3.4+deb13-cloud-amd64", true},
		{"garbage", false},
	} {
		if got := releaseAtLeast(c.release, 6, 1); got != c.want {
			t.Errorf("releaseAtLeast(%q, 6, 1) = %v, want %v", c.release, got, c.want)
		}
	}
}
