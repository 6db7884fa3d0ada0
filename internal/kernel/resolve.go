package kernel

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/vigilsec/vigil/internal/policy"
)

// Resolution steps of an argument (bpf/hook_types.h, struct arg_conf): each one
// adds an offset to the address in hand, or, with resDeref, first replaces
// the address by the pointer stored there.
const (
	maxResolve = 12
	resDeref   = 0x8000
)

// resolveHookArg resolves an argument of a kernel function or LSM hook
// against the running kernel's BTF.
func resolveHookArg(h *policy.Hook, a policy.Arg) (resolution, error) {
	if a.Source == policy.SourceCurrentTask {
		return resolveCurrentTask(a)
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return resolution{}, fmt.Errorf("%w: reading the kernel's BTF (CONFIG_DEBUG_INFO_BTF): %w", ErrMissingFeature, err)
	}
	params, err := hookParams(spec, h)
	if err != nil {
		return resolution{}, err
	}
	return resolveArg(params, a)
}

// hookParams are the C parameters of what a hook attaches to: a kernel
// function, the BPF LSM function of an LSM hook, or a raw tracepoint (less
// the tracepoint's own leading __data).
func hookParams(spec *btf.Spec, h *policy.Hook) ([]btf.FuncParam, error) {
	if h.Kind == policy.HookRawTracepoint {
		_, event, _ := strings.Cut(h.Calls[0], "/")
		var td *btf.Typedef
		if err := spec.TypeByName("btf_trace_"+event, &td); err != nil {
			return nil, fmt.Errorf("finding raw tracepoint %s in the kernel's BTF: %w", event, err)
		}
		ptr, ok := btf.UnderlyingType(td).(*btf.Pointer)
		if !ok {
			return nil, fmt.Errorf("btf_trace_%s is not a function pointer", event)
		}
		proto, ok := ptr.Target.(*btf.FuncProto)
		if !ok || len(proto.Params) == 0 {
			return nil, fmt.Errorf("btf_trace_%s is not a function pointer", event)
		}
		return proto.Params[1:], nil
	}
	fn := h.Calls[0]
	if h.Kind == policy.HookLSM {
		fn = "bpf_lsm_" + fn
	}
	var f *btf.Func
	if err := spec.TypeByName(fn, &f); err != nil {
		return nil, fmt.Errorf("finding %s in the kernel's BTF: %w", fn, err)
	}
	proto, ok := f.Type.(*btf.FuncProto)
	if !ok {
		return nil, fmt.Errorf("%s is not a function in the kernel's BTF", fn)
	}
	return proto.Params, nil
}

// resolution is how the kernel reaches an argument's resolve path.
type resolution struct {
	ops []uint16
	// load is the size of the final field to read at the address reached
	// (its value: an integer, a pointer); 0 keeps the address, for char
	// arrays and embedded structs.
	load uint8
}

// resolveArg follows an argument's resolve path ("mm.owner.real_parent.comm")
// through the kernel's BTF from its parameter among params: every
// member is found at its offset, pointers on the way are dereferenced, and
// the final field must suit the argument's type.
func resolveArg(params []btf.FuncParam, a policy.Arg) (resolution, error) {
	if int(a.Index) >= len(params) {
		return resolution{}, fmt.Errorf("there is no parameter %d", a.Index)
	}
	t := btf.UnderlyingType(params[a.Index].Type)
	ptr, ok := t.(*btf.Pointer)
	if !ok {
		return resolution{}, fmt.Errorf("parameter %d is a %s, not a pointer to a struct", a.Index, typeName(t))
	}
	// The argument's value is the address of what it points to.
	return resolvePath(btf.UnderlyingType(ptr.Target), "parameter "+fmt.Sprint(a.Index), a)
}

// resolveCurrentTask follows a data entry's resolve path from the current
// task (source: current_task), a struct task_struct.
func resolveCurrentTask(a policy.Arg) (resolution, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return resolution{}, fmt.Errorf("%w: reading the kernel's BTF (CONFIG_DEBUG_INFO_BTF): %w", ErrMissingFeature, err)
	}
	var task *btf.Struct
	if err := spec.TypeByName("task_struct", &task); err != nil {
		return resolution{}, fmt.Errorf("finding task_struct in the kernel's BTF: %w", err)
	}
	return resolvePath(task, "task_struct", a)
}

// resolvePath follows a.Resolve from t, the type at the address the
// argument's value is, walked naming it for errors.
func resolvePath(t btf.Type, walked string, a policy.Arg) (resolution, error) {
	var r resolution
	for _, comp := range a.Resolve {
		name, idx, err := splitIndex(comp)
		if err != nil {
			return resolution{}, err
		}
		// Pointers on the way: the struct is where they point.
		for {
			p, ok := t.(*btf.Pointer)
			if !ok {
				break
			}
			r.ops = append(r.ops, resDeref)
			t = btf.UnderlyingType(p.Target)
		}
		st, ok := members(t)
		if !ok {
			return resolution{}, fmt.Errorf("%s is a %s: it has no member %q", walked, typeName(t), name)
		}
		off, mt, found := member(st, name)
		if !found {
			return resolution{}, fmt.Errorf("%s (%s) has no member %q", walked, typeName(t), name)
		}
		t = btf.UnderlyingType(mt)
		walked = name
		if idx >= 0 {
			// fd[2]: the third element of an array member, or of
			// what a pointer member points to.
			var elem btf.Type
			switch at := t.(type) {
			case *btf.Array:
				if uint32(idx) >= at.Nelems {
					return resolution{}, fmt.Errorf("%s has %d elements, not %d", comp, at.Nelems, idx+1)
				}
				elem = at.Type
			case *btf.Pointer:
				if off > 0 {
					r.ops = append(r.ops, uint16(off))
				}
				r.ops = append(r.ops, resDeref)
				off = 0
				elem = at.Target
			default:
				return resolution{}, fmt.Errorf("%s is a %s: it has no elements", name, typeName(t))
			}
			size, err := btf.Sizeof(elem)
			if err != nil {
				return resolution{}, fmt.Errorf("sizing the elements of %s: %w", name, err)
			}
			off += uint32(idx * size)
			t = btf.UnderlyingType(elem)
			walked = comp
		}
		if off >= resDeref {
			return resolution{}, fmt.Errorf("%s is %d bytes in, past what Vigil follows", comp, off)
		}
		if off > 0 {
			r.ops = append(r.ops, uint16(off))
		}
	}
	switch ft := t.(type) {
	case *btf.Pointer:
		// The field's value: char * for a string, or the struct file *,
		// sock *... that the argument's type reads.
		r.load = 8
	case *btf.Int, *btf.Enum:
		if a.Kind != policy.ArgInt {
			return resolution{}, fmt.Errorf("%s is a %s: use an integer type", walked, typeName(ft))
		}
		size, _ := btf.Sizeof(ft)
		r.load = uint8(size)
	case *btf.Array:
		if a.Kind != policy.ArgString {
			return resolution{}, fmt.Errorf("%s is an array: use type string", walked)
		}
	case *btf.Struct, *btf.Union:
		// An embedded struct: its address is the pointer the type reads
		// (file.f_path as a path).
		if a.Kind == policy.ArgInt || a.Kind == policy.ArgString {
			return resolution{}, fmt.Errorf("%s is a %s: use the type of that struct (file, path, sock, cred...)", walked, typeName(ft))
		}
	default:
		return resolution{}, fmt.Errorf("%s is a %s, which Vigil does not read", walked, typeName(ft))
	}
	if len(r.ops) > maxResolve {
		return resolution{}, fmt.Errorf("%d steps (members and pointers), at most %d", len(r.ops), maxResolve)
	}
	return r, nil
}

// splitIndex splits "fd[2]" into "fd" and 2; a member without an index
// has -1.
func splitIndex(comp string) (string, int, error) {
	name, rest, ok := strings.Cut(comp, "[")
	if !ok {
		return comp, -1, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(rest, "]"))
	if err != nil || !strings.HasSuffix(rest, "]") || n < 0 {
		return "", 0, fmt.Errorf("%q: an index is [N]", comp)
	}
	return name, n, nil
}

// members are the members of a struct or union.
func members(t btf.Type) ([]btf.Member, bool) {
	switch t := t.(type) {
	case *btf.Struct:
		return t.Members, true
	case *btf.Union:
		return t.Members, true
	}
	return nil, false
}

// member finds name among a struct's or union's members, looking into
// anonymous ones, and returns its byte offset and type.
func member(ms []btf.Member, name string) (uint32, btf.Type, bool) {
	for _, m := range ms {
		if m.BitfieldSize > 0 {
			continue
		}
		if m.Name == name {
			return m.Offset.Bytes(), m.Type, true
		}
		if m.Name == "" {
			if inner, ok := members(btf.UnderlyingType(m.Type)); ok {
				if off, t, ok := member(inner, name); ok {
					return m.Offset.Bytes() + off, t, true
				}
			}
		}
	}
	return 0, nil, false
}

func typeName(t btf.Type) string {
	switch t := t.(type) {
	case *btf.Struct:
		return "struct " + t.Name
	case *btf.Union:
		return "union " + t.Name
	case *btf.Pointer:
		return "pointer"
	case *btf.Array:
		return "array"
	case nil:
		return "void"
	}
	if n := t.TypeName(); n != "" {
		return n
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", t), "*btf.")
}
