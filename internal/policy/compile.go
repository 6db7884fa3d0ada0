package policy

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/internal/syscalls"
)

const (
	signalKill       = 9
	defaultRateScope = RateThread
)

// Mode options (spec.options policy-mode).
const (
	ModeEnforce = "enforce"
	ModeMonitor = "monitor"
)

// CompileError is a refusal of one field of a policy.
type CompileError struct {
	Path   string
	Reason string
}

func (e *CompileError) Error() string { return e.Path + ": " + e.Reason }

func refuse(path, format string, args ...any) error {
	return &CompileError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// Compile turns a policy into the program the kernel runs. It reports every
// field it cannot compile, each as a *CompileError, joined.
func Compile(p *TracingPolicy) (*Program, error) {
	// Validate expands selector macros; a policy compiled without it must
	// not lose the matchers its macros hold.
	v := validator{p: p}
	if v.expandMacros(); len(v.errs) > 0 {
		return nil, v.errs
	}
	c := compiler{policy: p, mode: Mode(p)}
	prog := &Program{Policy: p, Rule: RuleOf(p), PodScoped: PodScoped(p)}
	for i := range p.Spec.KProbes {
		if h, ok := c.kprobe(fmt.Sprintf("spec.kprobes[%d]", i), &p.Spec.KProbes[i]); ok {
			prog.Hooks = append(prog.Hooks, h)
		}
	}
	for i := range p.Spec.Fentries {
		if h, ok := c.fentry(fmt.Sprintf("spec.fentries[%d]", i), &p.Spec.Fentries[i]); ok {
			prog.Hooks = append(prog.Hooks, h)
		}
	}
	for i := range p.Spec.Tracepoints {
		if h, ok := c.tracepoint(fmt.Sprintf("spec.tracepoints[%d]", i), &p.Spec.Tracepoints[i]); ok {
			prog.Hooks = append(prog.Hooks, h)
		}
	}
	for i := range p.Spec.UProbes {
		if h, ok := c.uprobe(fmt.Sprintf("spec.uprobes[%d]", i), &p.Spec.UProbes[i]); ok {
			prog.Hooks = append(prog.Hooks, h)
		}
	}
	for i := range p.Spec.Usdts {
		if h, ok := c.usdt(fmt.Sprintf("spec.usdts[%d]", i), &p.Spec.Usdts[i]); ok {
			prog.Hooks = append(prog.Hooks, h)
		}
	}
	for i := range p.Spec.LsmHooks {
		l := &p.Spec.LsmHooks[i]
		path := fmt.Sprintf("spec.lsmhooks[%d]", i)
		before := len(c.errs)
		h := Hook{Kind: HookLSM, Path: path, Calls: []string{l.Hook}, Message: l.Message, Tags: l.Tags}
		c.body(path, &h, l.Args, nil, nil, l.Selectors, c.kernelArg)
		if len(c.errs) == before {
			prog.Hooks = append(prog.Hooks, h)
		}
	}
	if p.Spec.Loader {
		if h, ok := c.loader(); ok {
			prog.Hooks = append(prog.Hooks, h)
		}
	}
	for i, raw := range p.Spec.Enforcers {
		if h, ok := c.enforcer(fmt.Sprintf("spec.enforcers[%d]", i), raw); ok {
			prog.Hooks = append(prog.Hooks, h)
		}
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return prog, nil
}

// Mode is the policy-mode option: enforce (the default) or monitor, where
// enforcement actions are reported instead of taken.
func Mode(p *TracingPolicy) string {
	for _, o := range p.Spec.Options {
		if o.Name == "policy-mode" && o.Value == ModeMonitor {
			return ModeMonitor
		}
	}
	return ModeEnforce
}

// option reports whether the boolean option name is set true.
func (c *compiler) option(name string) bool {
	for _, o := range c.policy.Spec.Options {
		if o.Name == name {
			v, _ := strconv.ParseBool(o.Value)
			return v
		}
	}
	return false
}

type compiler struct {
	policy *TracingPolicy
	mode   string
	errs   []error
}

func (c *compiler) fail(err error) { c.errs = append(c.errs, err) }

func (c *compiler) kprobe(path string, k *KProbeSpec) (Hook, bool) {
	before := len(c.errs)
	h := Hook{Path: path, Return: k.Return, Message: k.Message, Tags: k.Tags, NoKprobeMulti: c.option("disable-kprobe-multi")}
	if !k.Syscall && !c.syscallList(k.Call) {
		h.Kind = HookKprobe
		h.Calls = c.kernelFunctions(path+".call", k.Call)
		if strings.HasPrefix(k.Call, "list:") {
			h.List = k.Call
		}
		if l := c.list(k.Call); l != nil && l.Type == "generated_ftrace" && l.Pattern != nil {
			// The functions are the running kernel's: internal/kernel
			// fills Calls from the pattern at install.
			h.CallPattern = *l.Pattern
		}
		h.IgnoreNotFound = k.Ignore != nil && k.Ignore.CallNotFound
		c.body(path, &h, k.Args, k.Data, k.ReturnArg, k.Selectors, c.kernelArg)
		c.returnArgAction(path, &h, k)
		return h, len(c.errs) == before
	}
	h.Kind = HookSyscall
	h.IgnoreNotFound = k.Ignore != nil && k.Ignore.CallNotFound || c.generatedList(k.Call)
	h.Calls = c.syscalls(path+".call", k.Call)
	if strings.HasPrefix(k.Call, "list:") {
		h.List = k.Call
	}
	if isConnect(h.Calls, k.Args) {
		// The cgroup connect hook sees the address before the
		// connection is made and can refuse it: the mechanism for
		// network policies where kprobes and Override are missing.
		h.Kind = HookConnect
		if k.Return {
			c.fail(refuse(path+".return", "a connect hook with a sockaddr runs before the call and has no return value"))
		}
	}
	c.body(path, &h, k.Args, k.Data, k.ReturnArg, k.Selectors, c.arg)
	return h, len(c.errs) == before
}

// fentry compiles a hook of spec.fentries: a kprobe spec, attached with
// fentry and fexit. As Tetragon, it takes no enforcement action: fentry
// and fexit programs see the call, and cannot change it.
func (c *compiler) fentry(path string, k *KProbeSpec) (Hook, bool) {
	before := len(c.errs)
	for i, sel := range k.Selectors {
		for _, list := range []struct {
			name    string
			actions []ActionSelector
		}{{"matchActions", sel.MatchActions}, {"matchReturnActions", sel.MatchReturnActions}} {
			for j, a := range list.actions {
				switch act, _ := CanonicalAction(a.Action); act {
				case "Sigkill", "Signal", "Override", "NotifyEnforcer", "Set":
					c.fail(refuse(fmt.Sprintf("%s.selectors[%d].%s[%d].action", path, i, list.name, j),
						"%s on a fentries hook: fentry and fexit only observe a call (Tetragon refuses it too); enforce with kprobes or lsmhooks", act))
				}
			}
		}
	}
	if k.ReturnArgAction != "" {
		c.fail(refuse(path+".returnArgAction", "%s on a fentries hook: not supported by this version of Vigil", k.ReturnArgAction))
	}
	h, _ := c.kprobe(path, k)
	h.Fentry = true
	return h, len(c.errs) == before
}

// body compiles what every hook kind has: arguments (read with readArg),
// the return value, and the selectors.
func (c *compiler) body(path string, h *Hook, args, data []ArgSpec, ret *ArgSpec, selectors []SelectorSpec, readArg func(string, ArgSpec) (Arg, bool)) {
	if len(args)+len(data) > kernelMaxArgs {
		c.fail(refuse(path+".args", "%d arguments and %d data entries, at most %d in all", len(args), len(data), kernelMaxArgs))
	}
	for i, a := range args {
		if a.Source != "" {
			c.fail(refuse(fmt.Sprintf("%s.args[%d].source", path, i), "only data entries have a source"))
			continue
		}
		if arg, ok := readArg(fmt.Sprintf("%s.args[%d]", path, i), a); ok {
			h.Args = append(h.Args, arg)
		}
	}
	// Data entries follow the arguments: matchData's index i is argument
	// len(args)+i.
	for i, a := range data {
		if arg, ok := c.data(fmt.Sprintf("%s.data[%d]", path, i), a, h, readArg); ok {
			h.Args = append(h.Args, arg)
		}
	}
	if h.Return && ret != nil {
		h.ReturnType = ret.Type
		_, signed, ok := intType(ret.Type)
		switch {
		case ok:
			h.ReturnUnsigned = !signed
		case ret.Type == "sock" && h.Kind == HookKprobe:
			// The sock a kernel function returns (sk_alloc,
			// inet_csk_accept): read at return as a sock argument.
			if len(h.Args) >= kernelMaxArgs {
				c.fail(refuse(path+".returnArg", "a returned sock is read as an argument: at most %d arguments besides it", kernelMaxArgs-1))
				break
			}
			label := cmp.Or(ret.Label, "return")
			h.Args = append(h.Args, Arg{Kind: ArgSock, Type: "sock", Label: label, Index: RawReturn, AtReturn: true})
		default:
			c.fail(refuse(path+".returnArg.type", "%q: this version of Vigil reads integer return values, and a sock returned by a kernel function", ret.Type))
		}
	}
	if len(selectors) > kernelMaxSelectors {
		c.fail(refuse(path+".selectors", "%d selectors, at most %d", len(selectors), kernelMaxSelectors))
	}
	for i := range selectors {
		h.Selectors = append(h.Selectors, c.selector(fmt.Sprintf("%s.selectors[%d]", path, i), &selectors[i], h, args, data))
	}
	if len(selectors) == 0 {
		// No selector: every hit is reported.
		h.Selectors = []Selector{{Post: true, Actions: []string{"Post"}}}
	}
}

// data compiles an entry of a hook's data list: read from the current
// task (any hook) through its resolve path, or from a register of a kprobe
// or uprobe (resolve names it), as the hook's arguments are read.
func (c *compiler) data(path string, a ArgSpec, h *Hook, readArg func(string, ArgSpec) (Arg, bool)) (Arg, bool) {
	var src DataSource
	switch a.Source {
	case "current_task":
		// Kernel memory, whatever the hook.
		src, readArg = SourceCurrentTask, c.kernelArg
	case "pt_regs":
		if (h.Kind != HookKprobe || h.Fentry) && h.Kind != HookUprobe {
			c.fail(refuse(path+".source", "pt_regs on a %s hook: registers are read where the hook is a kprobe or uprobe", h.Kind))
			return Arg{}, false
		}
		src = SourcePtRegs
	default:
		c.fail(refuse(path+".source", "%q, want current_task or pt_regs", a.Source))
		return Arg{}, false
	}
	if a.Resolve == "" {
		c.fail(refuse(path+".resolve", "required with source %s", a.Source))
		return Arg{}, false
	}
	reg := a.Resolve
	if src == SourcePtRegs {
		// The register is no field path: read the register itself.
		a.Resolve = ""
	}
	out, ok := readArg(path, a)
	if src == SourcePtRegs {
		out.Resolve = []string{reg}
	}
	out.Source = src
	return out, ok
}

// kernelArg compiles an argument of a kprobe on a kernel function: its
// pointers are kernel pointers.
func (c *compiler) kernelArg(path string, a ArgSpec) (Arg, bool) {
	out, done, ok := c.argHead(path, a, true)
	if done {
		return out, ok
	}
	ns, named := namedStructs[a.Type]
	switch kind, ok := kernelArgKinds[a.Type]; {
	case named:
		if out.Resolve != nil {
			c.fail(refuse(path+".resolve", "%s is read by its %s already; resolve from it with another type", a.Type, strings.Join(ns.member, ".")))
			return out, false
		}
		out.Kind, out.Resolve = ns.kind, ns.member
		out.Kernel = ns.kind == ArgString
		if ns.kind == ArgInt {
			out.Size = 4
		}
	case a.Type == "char_buf":
		// A user buffer handed to a kernel function (tty_write's).
		return out, c.charBuf(path, a, &out)
	case ok:
		out.Kind = kind
		out.Kernel = kind == ArgString || kind == ArgSockaddr || kind == ArgSockaddrUn
		if kind == ArgCharIovec {
			out.SizeIndex = uint8(a.SizeArgIndex)
		}
	case a.Type == "capability" || a.Type == "bpf_cmd":
		// An int, reported with its name.
		out.Kind, out.Size, out.Signed = ArgInt, 4, true
	default:
		c.fail(refuse(path+".type", "%q on a kernel function is not read by this version of Vigil yet: use int types, string, fd, file, path, sock, socket, skb, sockaddr, sockaddr_un, linux_binprm, cred, capability, the cap types, kiocb, iov_iter, char_iovec, bpf_attr, bpf_prog, bpf_cmd, perf_event, bpf_map, dentry, net_device, module, load_info, user_namespace or char_buf", a.Type))
		return out, false
	}
	return out, true
}

// namedStructs are kernel structures an argument reports by the member
// that identifies them, read through the kernel's BTF (resolve): a
// network device's, a module's and the module being loaded's name, a user
// namespace's inode number (as /proc/PID/ns/user shows it).
var namedStructs = map[string]struct {
	kind   ArgKind
	member []string
}{
	"net_device":     {ArgString, []string{"name"}},
	"module":         {ArgString, []string{"name"}},
	"load_info":      {ArgString, []string{"name"}},
	"user_namespace": {ArgInt, []string{"ns", "inum"}},
}

// kernelArgKinds are how the pointer types of kernel-function arguments
// are read.
var kernelArgKinds = map[string]ArgKind{
	"string": ArgString, "fd": ArgFD, "file": ArgFile, "path": ArgPath,
	"sock": ArgSock, "socket": ArgSocket, "skb": ArgSkb, "sockaddr": ArgSockaddr,
	"linux_binprm": ArgBinprm, "cred": ArgCred, "kiocb": ArgKiocb, "iov_iter": ArgIovIter,
	"bpf_attr": ArgBpfAttr, "perf_event": ArgPerfEvent, "bpf_map": ArgBpfMap, "dentry": ArgDentry,
	"bpf_prog": ArgBpfProg, "char_iovec": ArgCharIovec, "sockaddr_un": ArgSockaddrUn,
	"kernel_cap_t": ArgCaps, "cap_effective": ArgCaps, "cap_inheritable": ArgCaps, "cap_permitted": ArgCaps,
}

// tracepoint compiles a tracepoint hook. Argument indexes are field
// positions in the tracepoint's format; the kernel side reads the format to
// find each field's offset and size. A raw tracepoint's are positions in
// its C arguments, read as a kernel function's are.
func (c *compiler) tracepoint(path string, tp *TracepointSpec) (Hook, bool) {
	before := len(c.errs)
	h := Hook{Kind: HookTracepoint, Path: path, Calls: []string{tp.Subsystem + "/" + tp.Event}, Message: tp.Message, Tags: tp.Tags}
	if tp.Raw {
		h.Kind = HookRawTracepoint
		c.body(path, &h, tp.Args, nil, nil, tp.Selectors, c.kernelArg)
		return h, len(c.errs) == before
	}
	c.body(path, &h, tp.Args, nil, nil, tp.Selectors, func(p string, a ArgSpec) (Arg, bool) {
		out := Arg{Type: a.Type, Label: a.Label, Index: uint8(a.Index)}
		if a.Index > 255 {
			c.fail(refuse(p+".index", "%d: a tracepoint has fewer fields", a.Index))
			return out, false
		}
		if size, signed, ok := intType(a.Type); ok {
			out.Kind, out.Size, out.Signed = ArgInt, size, signed
			return out, true
		}
		if a.Type == "" || a.Type == "auto" {
			// The field's type, from the tracepoint's format, when
			// the node installs the hook.
			out.Kind, out.Type = ArgAuto, "auto"
			return out, true
		}
		if a.Type == "string" || a.Type == "data_loc" {
			// data_loc: Tetragon's name for a __data_loc string
			// field, which string reads too.
			out.Kind = ArgString
			return out, true
		}
		c.fail(refuse(p+".type", "%q cannot be read from a tracepoint field by this version of Vigil: use int types, string or data_loc", a.Type))
		return out, false
	})
	return h, len(c.errs) == before
}

// uprobe compiles a uprobe hook: one per symbol of the binary.
func (c *compiler) uprobe(path string, u *UProbeSpec) (Hook, bool) {
	before := len(c.errs)
	h := Hook{Kind: HookUprobe, Path: path, Binary: u.Path, Calls: u.Symbols, Return: u.Return, Message: u.Message, Tags: u.Tags,
		Offsets: u.Offsets, RefCtrOffsets: u.RefCtrOffsets, Addrs: u.Addrs}
	for i, off := range u.Offsets {
		if off == 0 {
			c.fail(refuse(fmt.Sprintf("%s.offsets[%d]", path, i), "0 is the start of the file, not an instruction"))
		}
	}
	for i, addr := range u.Addrs {
		if addr == 0 {
			c.fail(refuse(fmt.Sprintf("%s.addrs[%d]", path, i), "0 is no instruction's address"))
		}
	}
	c.body(path, &h, u.Args, u.Data, u.ReturnArg, u.Selectors, c.arg)
	return h, len(c.errs) == before
}

// usdt compiles a USDT hook: user space finds the probe's sites in the
// binary when it attaches.
func (c *compiler) usdt(path string, u *UsdtSpec) (Hook, bool) {
	before := len(c.errs)
	h := Hook{Kind: HookUsdt, Path: path, Binary: u.Path, Calls: []string{u.Provider + ":" + u.Name}, Message: u.Message, Tags: u.Tags}
	c.body(path, &h, u.Args, nil, nil, u.Selectors, c.arg)
	return h, len(c.errs) == before
}

// isConnect reports whether a syscall hook is connect alone with a
// sockaddr argument.
func isConnect(calls []string, args []ArgSpec) bool {
	if len(calls) != 1 || calls[0] != "connect" {
		return false
	}
	for _, a := range args {
		if a.Type == "sockaddr" {
			return true
		}
	}
	return false
}

// syscalls resolves a kprobe call of a syscall hook: one name, or every
// entry of a "list:NAME" of type syscalls. Names lose their sys_ and arch
// prefixes; internal/kernel knows the numbers.
func (c *compiler) syscalls(path, call string) []string {
	name, ok := strings.CutPrefix(call, "list:")
	if !ok {
		return []string{SyscallName(call)}
	}
	l := c.list(call)
	switch {
	case l == nil:
		c.fail(refuse(path, "no list named %q in spec.lists", name))
		return nil
	case l.Type == "generated_syscalls":
		return syscalls.All()
	case l.Type != "syscalls":
		c.fail(refuse(path, "list %q is of type %q; a syscall hook needs type syscalls", name, l.Type))
		return nil
	}
	var out []string
	for _, v := range l.Values {
		out = append(out, SyscallName(v))
	}
	return out
}

// kernelFunctions resolves a kprobe call on kernel functions: one name, or
// every entry of a "list:NAME" without a type, in the list's order (the
// index an event's call is reported by).
func (c *compiler) kernelFunctions(path, call string) []string {
	name, ok := strings.CutPrefix(call, "list:")
	if !ok {
		return []string{call}
	}
	l := c.list(call)
	switch {
	case l == nil:
		c.fail(refuse(path, "no list named %q in spec.lists", name))
		return nil
	case l.Type == "generated_ftrace":
		return nil // filled at install: CallPattern
	case l.Type != "":
		c.fail(refuse(path, "list %q of type %q is not compiled by this version of Vigil yet: a kprobe takes a list of kernel functions (no type) or of syscalls", name, l.Type))
		return nil
	}
	var out []string
	for _, v := range l.Values {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// syscallList reports whether call names a list of type syscalls, whose
// functions are syscalls whether or not the kprobe says syscall: true, as
// in Tetragon.
func (c *compiler) syscallList(call string) bool {
	l := c.list(call)
	return l != nil && (l.Type == "syscalls" || l.Type == "generated_syscalls")
}

// list returns the list call names ("list:NAME"), nil for none.
func (c *compiler) list(call string) *ListSpec {
	name, ok := strings.CutPrefix(call, "list:")
	if !ok {
		return nil
	}
	for i := range c.policy.Spec.Lists {
		if c.policy.Spec.Lists[i].Name == name {
			return &c.policy.Spec.Lists[i]
		}
	}
	return nil
}

// generatedList reports whether call names a list Vigil fills
// (generated_syscalls): its entries come from the architecture's table,
// not from the policy, and one this kernel lacks is skipped.
func (c *compiler) generatedList(call string) bool {
	l := c.list(call)
	return l != nil && l.Type == "generated_syscalls"
}

// SyscallName strips what Tetragon accepts around a syscall name:
// "sys_openat", "__x64_sys_openat" and "openat" all name openat.
func SyscallName(call string) string {
	for _, p := range []string{"__x64_sys_", "__ia32_sys_", "__arm64_sys_", "__se_sys_", "ksys_", "sys_"} {
		if rest, ok := strings.CutPrefix(call, p); ok {
			return rest
		}
	}
	return call
}

// intType reports the width and sign of an integer argument type.
func intType(t string) (size uint8, signed, ok bool) {
	switch t {
	case "int", "int32", "s32":
		return 4, true, true
	case "uint32", "u32":
		return 4, false, true
	case "int8", "s8":
		return 1, true, true
	case "uint8", "u8":
		return 1, false, true
	case "int16", "s16":
		return 2, true, true
	case "uint16", "u16":
		return 2, false, true
	case "long", "int64", "s64", "syscall64":
		return 8, true, true
	case "ulong", "uint64", "u64", "size_t", "uint":
		return 8, false, true
	}
	return 0, false, false
}

// argHead compiles what every hook kind reads alike: the register index,
// resolve (refused) and the integer types. done says whether the argument
// is settled, ok whether it compiled.
func (c *compiler) argHead(path string, a ArgSpec, kernel bool) (out Arg, done, ok bool) {
	out = Arg{Type: a.Type, Label: a.Label, Index: uint8(a.Index)}
	if a.Index > 5 {
		c.fail(refuse(path+".index", "%d: a function has at most 6 register arguments (0-5)", a.Index))
		return out, true, false
	}
	if a.Resolve != "" {
		if !kernel {
			c.fail(refuse(path+".resolve", "resolve follows kernel structures: only arguments of kernel functions and LSM hooks have them"))
			return out, true, false
		}
		// Validate checked the form: members, each with an optional
		// [N], separated by dots.
		out.Resolve = strings.Split(a.Resolve, ".")
		if len(out.Resolve) > MaxResolveDepth {
			c.fail(refuse(path+".resolve", "%q: %d members, at most %d", a.Resolve, len(out.Resolve), MaxResolveDepth))
			return out, true, false
		}
	}
	if size, signed, isInt := intType(a.Type); isInt {
		out.Kind, out.Size, out.Signed = ArgInt, size, signed
		return out, true, true
	}
	if a.Type == "nop" {
		// Declared so that the positions of the others hold; read as
		// the register it is, never reported.
		out.Kind, out.Size = ArgInt, 8
		return out, true, true
	}
	if a.Type == "" || a.Type == "auto" {
		c.fail(refuse(path+".type", "auto (no type): Tetragon takes it on tracepoints only, and refuses it on kprobes, fentries and uprobes too; name the argument's type"))
		return out, true, false
	}
	return out, false, false
}

func (c *compiler) arg(path string, a ArgSpec) (Arg, bool) {
	out, done, ok := c.argHead(path, a, false)
	if done {
		return out, ok
	}
	switch a.Type {
	case "string":
		out.Kind = ArgString
	case "fd":
		out.Kind = ArgFD
	case "sockaddr":
		out.Kind = ArgSockaddr
	case "char_buf":
		return out, c.charBuf(path, a, &out)
	case "char_iovec":
		out.Kind, out.SizeIndex = ArgCharIovec, uint8(a.SizeArgIndex)
	case "sockaddr_un":
		out.Kind = ArgSockaddrUn
	case "bpf_cmd":
		// The bpf(2) command, reported with its name.
		out.Kind, out.Size, out.Signed = ArgInt, 4, true
	default:
		c.fail(refuse(path+".type", "%q cannot be read at a syscall or uprobe hook, which see user-space values: use int types, bpf_cmd, string, fd, sockaddr, sockaddr_un, char_buf or char_iovec", a.Type))
		return out, false
	}
	return out, true
}

// enforcer compiles an entry of spec.enforcers: a hook on its syscalls,
// by name or list, that the kernel attaches with fmod_ret. Names an
// architecture lacks (Tetragon's examples list __ia32_ ones) are skipped.
func (c *compiler) enforcer(path string, raw map[string]any) (Hook, bool) {
	before := len(c.errs)
	h := Hook{Kind: HookSyscall, Path: path, Enforcer: true, IgnoreNotFound: true}
	calls, _ := raw["calls"].([]any)
	for i, v := range calls {
		name, _ := v.(string)
		for _, sc := range c.syscalls(fmt.Sprintf("%s.calls[%d]", path, i), name) {
			if !slices.Contains(h.Calls, sc) {
				h.Calls = append(h.Calls, sc)
			}
		}
	}
	return h, len(c.errs) == before
}

// loader compiles spec.loader: Tetragon's loader events, executable code
// mapped from a file. Vigil watches mmap calls that ask for PROT_EXEC with
// a file, as the dynamic loader maps each shared object; what the kernel
// maps itself at exec (the program and its interpreter) is the exec event.
func (c *compiler) loader() (Hook, bool) {
	k := KProbeSpec{
		Call: "sys_mmap", Syscall: true,
		Args: []ArgSpec{{Index: 4, Type: "fd", Label: "file"}, {Index: 2, Type: "int", Label: "prot"}},
		Selectors: []SelectorSpec{{MatchArgs: []ArgSelector{
			{Index: 2, Operator: "Mask", Values: []string{"4"}}, // PROT_EXEC
		}}},
	}
	h, ok := c.kprobe("spec.loader", &k)
	h.Loader = true
	return h, ok
}

// returnArgAction compiles a kprobe's returnArgAction, TrackSock or
// UntrackSock of the sock it returns (Tetragon's sk_alloc pattern): taken
// at return by every selector that takes no such action of its own.
func (c *compiler) returnArgAction(path string, h *Hook, k *KProbeSpec) {
	act, _ := CanonicalAction(k.ReturnArgAction)
	if act != "TrackSock" && act != "UntrackSock" {
		return
	}
	pos := slices.IndexFunc(h.Args, func(a Arg) bool { return a.AtReturn })
	if pos < 0 {
		c.fail(refuse(path+".returnArgAction", "%s needs a returnArg of type sock on a kernel function with return: true", act))
		return
	}
	for i := range h.Selectors {
		if h.Selectors[i].Sock == nil {
			h.Selectors[i].Sock = &SockAction{Untrack: act == "UntrackSock", Arg: uint8(pos)}
		}
	}
}

// charBuf compiles a char_buf argument: a user buffer whose size is
// another argument (sizeArgIndex, 1-based) or the return value
// (returnCopy).
func (c *compiler) charBuf(path string, a ArgSpec, out *Arg) bool {
	out.Kind = ArgCharBuf
	if a.SizeArgIndex == 0 && !a.ReturnCopy {
		c.fail(refuse(path+".sizeArgIndex", "char_buf needs the 1-based index of its size argument (or returnCopy)"))
		return false
	}
	if a.SizeArgIndex > 6 {
		c.fail(refuse(path+".sizeArgIndex", "%d: a function has at most 6 register arguments (1-6)", a.SizeArgIndex))
		return false
	}
	out.SizeIndex = uint8(a.SizeArgIndex)
	out.ReturnCopy = a.ReturnCopy
	return true
}

func (c *compiler) selector(path string, s *SelectorSpec, h *Hook, specArgs, data []ArgSpec) Selector {
	var sel Selector
	if len(s.MatchArgs)+len(s.MatchData) > kernelMaxFilters {
		c.fail(refuse(path+".matchArgs", "%d entries (with matchData), at most %d", len(s.MatchArgs)+len(s.MatchData), kernelMaxFilters))
	}
	type argMatch struct {
		path string
		m    ArgSelector
		pos  int
		ok   bool
	}
	var matches []argMatch
	for i := range s.MatchArgs {
		pos, ok := MatchArgPosition(specArgs, &s.MatchArgs[i], h.Kind == HookTracepoint || h.Kind == HookRawTracepoint)
		matches = append(matches, argMatch{fmt.Sprintf("%s.matchArgs[%d]", path, i), s.MatchArgs[i], pos, ok})
	}
	for i, m := range s.MatchData {
		// index, or args[0], is the entry's position in the data list.
		pos, ok := int(m.Index), int(m.Index) < len(data)
		if len(m.Args) > 0 {
			pos, ok = int(m.Args[0]), int(m.Args[0]) < len(data)
		}
		m.Index, m.Args = 0, nil
		matches = append(matches, argMatch{fmt.Sprintf("%s.matchData[%d]", path, i), m, len(specArgs) + pos, ok})
	}
	for _, am := range matches {
		p, m, pos := am.path, am.m, am.pos
		if !am.ok || pos >= len(h.Args) {
			c.fail(refuse(p+".index", "%d is not the index of a declared argument or data entry", m.Index))
			continue
		}
		a := h.Args[pos]
		if a.Kind == ArgAuto {
			c.fail(refuse(p+".index", "%d: the argument has no type (auto), which the node learns only when it loads the hook; name its type to filter on it", m.Index))
			continue
		}
		if f, handled, ok := c.argFilter(p, m, h, pos); handled {
			if ok {
				sel.Filters = append(sel.Filters, f)
			}
			continue
		}
		if a.Kind.IsSock() {
			if f, ok := c.sockFilter(p, m); ok {
				f.Arg = uint8(pos)
				sel.Filters = append(sel.Filters, f)
			}
			continue
		}
		if a.Kind == ArgSockaddr {
			if f, ok := c.sockaddrFilter(p, m); ok {
				f.Arg = uint8(pos)
				sel.Filters = append(sel.Filters, f)
			}
			continue
		}
		if a.Kind.reportedOnly() {
			c.fail(refuse(p+".index", "%d: %s arguments are reported, not matched on, by this version of Vigil", m.Index, a.Type))
			continue
		}
		if a.Kind == ArgCaps {
			// Capability sets also take names: "CAP_SYS_ADMIN,CAP_BPF".
			m.Values = slices.Clone(m.Values)
			for j, v := range m.Values {
				if mask, ok := capsMask(v); ok {
					m.Values[j] = strconv.FormatUint(mask, 10)
				}
			}
		}
		if f, ok := c.filter(p, m, a.Kind != ArgInt && a.Kind != ArgCaps, !a.Signed); ok {
			f.Arg = uint8(pos)
			sel.Filters = append(sel.Filters, f)
		}
	}
	if len(s.MatchReturnArgs) > kernelMaxRetFilters {
		c.fail(refuse(path+".matchReturnArgs", "%d entries, at most %d", len(s.MatchReturnArgs), kernelMaxRetFilters))
	}
	for i, m := range s.MatchReturnArgs {
		p := fmt.Sprintf("%s.matchReturnArgs[%d]", path, i)
		if !h.Return {
			c.fail(refuse(p, "the hook has no return: true"))
			continue
		}
		if m.Index != 0 {
			c.fail(refuse(p+".index", "%d: the return value is index 0", m.Index))
			continue
		}
		if pos := slices.IndexFunc(h.Args, func(a Arg) bool { return a.AtReturn }); pos >= 0 {
			// A returned sock: its fields, as a sock argument's.
			if f, ok := c.sockFilter(p, m); ok {
				f.Arg = uint8(pos)
				sel.RetFilters = append(sel.RetFilters, f)
			}
			continue
		}
		if f, ok := c.filter(p, m, false, h.ReturnUnsigned); ok {
			f.Arg = ReturnArg
			sel.RetFilters = append(sel.RetFilters, f)
		}
	}
	sel.Binaries = c.binaries(path+".matchBinaries", s.MatchBinaries)
	sel.ParentBinaries = c.binaries(path+".matchParentBinaries", s.MatchParentBinaries)
	if len(s.MatchPIDs) > kernelMaxPidFilters {
		c.fail(refuse(path+".matchPIDs", "%d entries: this version of Vigil takes at most %d per selector", len(s.MatchPIDs), kernelMaxPidFilters))
	} else {
		for i, m := range s.MatchPIDs {
			p := fmt.Sprintf("%s.matchPIDs[%d]", path, i)
			op := inOp(m.Operator)
			if op == 0 {
				c.fail(refuse(p+".operator", "%q: matchPIDs takes In or NotIn", m.Operator))
			} else if len(m.Values) == 0 || len(m.Values) > kernelMaxPids {
				c.fail(refuse(p+".values", "%d values, 1 to %d", len(m.Values), kernelMaxPids))
			} else {
				sel.PIDs = append(sel.PIDs, PIDMatch{Op: op, Values: m.Values, FollowForks: m.FollowForks, NamespacePID: m.IsNamespacePID})
			}
		}
	}
	if len(s.MatchNamespaces) > kernelMaxNsFilters {
		c.fail(refuse(path+".matchNamespaces", "%d entries: this version of Vigil takes at most %d per selector", len(s.MatchNamespaces), kernelMaxNsFilters))
	} else {
		for i := range s.MatchNamespaces {
			if m, ok := c.namespace(fmt.Sprintf("%s.matchNamespaces[%d]", path, i), &s.MatchNamespaces[i]); ok {
				sel.Namespaces = append(sel.Namespaces, m)
			}
		}
	}
	switch len(s.MatchCapabilities) {
	case 0:
	case 1:
		if m, ok := c.capabilities(path+".matchCapabilities[0]", &s.MatchCapabilities[0]); ok {
			sel.Capabilities = &m
		}
	default:
		c.fail(refuse(path+".matchCapabilities", "%d entries: this version of Vigil takes one per selector", len(s.MatchCapabilities)))
	}
	if len(s.MatchCapabilityChanges) > 1 {
		c.fail(refuse(path+".matchCapabilityChanges", "%d entries: this version of Vigil takes one per selector", len(s.MatchCapabilityChanges)))
	} else if len(s.MatchCapabilityChanges) == 1 {
		p := path + ".matchCapabilityChanges[0]"
		var m CapabilitySelector
		if problems, err := decodeFreeForm(s.MatchCapabilityChanges[0], &m); err != nil || len(problems) > 0 {
			c.fail(refuse(p, "not a capability selector (type, operator, values, isNamespaceCapability)"))
		} else if cm, ok := c.capabilities(p, &m); ok {
			sel.CapabilityChanges = &cm
		}
	}
	if len(s.MatchNamespaceChanges) > 1 {
		c.fail(refuse(path+".matchNamespaceChanges", "%d entries: this version of Vigil takes one per selector", len(s.MatchNamespaceChanges)))
	} else if len(s.MatchNamespaceChanges) == 1 {
		sel.NamespaceChanges = c.namespaceChanges(path+".matchNamespaceChanges[0]", s.MatchNamespaceChanges[0])
	}
	// On a hook that reports at return every action runs at return, once
	// the return part of the selector matched: matchReturnActions are the
	// selector's actions. Tetragon would run matchActions at entry, which
	// Vigil does not do, so one selector cannot have both.
	switch {
	case len(s.MatchReturnActions) > 0 && len(s.MatchActions) > 0:
		c.fail(refuse(path+".matchReturnActions", "a selector with matchActions too: Vigil runs the actions of a hook with return: true at return, so give them in one list"))
	case len(s.MatchReturnActions) > 0:
		i := slices.IndexFunc(s.MatchReturnActions, func(a ActionSelector) bool {
			act, _ := CanonicalAction(a.Action)
			return act == "Override"
		})
		if i >= 0 {
			c.fail(refuse(fmt.Sprintf("%s.matchReturnActions[%d].action", path, i), "Override at return: the call has already run"))
			break
		}
		c.actions(path+".matchReturnActions", s.MatchReturnActions, &sel, h, specArgs)
	default:
		c.actions(path+".matchActions", s.MatchActions, &sel, h, specArgs)
	}
	return sel
}

// binaries compiles matchBinaries or matchParentBinaries (the same
// matcher, applied to the parent's binary).
func (c *compiler) binaries(path string, list []BinarySelector) *StringMatch {
	switch len(list) {
	case 0:
		return nil
	case 1:
	default:
		c.fail(refuse(path, "%d entries: this version of Vigil takes one per selector", len(list)))
		return nil
	}
	p := path + "[0]"
	m := list[0]
	o, ok := binaryOperator(m.Operator)
	if !ok {
		c.fail(refuse(p+".operator", "%q: %s takes %s", m.Operator, path[strings.LastIndex(path, ".")+1:], binaryOperatorNames))
		return nil
	}
	if !c.strings(p+".values", o.op, m.Values) {
		return nil
	}
	return &StringMatch{Op: o.op, Values: m.Values, FollowChildren: m.FollowChildren}
}

// namespaceChanges compiles a matchNamespaceChanges entry.
func (c *compiler) namespaceChanges(path string, raw map[string]any) *NamespaceChangeMatch {
	var m struct {
		Operator string   `json:"operator"`
		Values   []string `json:"values"`
	}
	if problems, err := decodeFreeForm(raw, &m); err != nil || len(problems) > 0 {
		c.fail(refuse(path, "not a namespace change selector (operator, values)"))
		return nil
	}
	out := NamespaceChangeMatch{Op: inOp(m.Operator)}
	if out.Op == 0 {
		c.fail(refuse(path+".operator", "%q: matchNamespaceChanges takes In or NotIn", m.Operator))
		return nil
	}
	if len(m.Values) == 0 {
		c.fail(refuse(path+".values", "the namespace types whose change to match"))
		return nil
	}
	for i, v := range m.Values {
		t, known := namespaceTypes[namespaceNames[strings.ToLower(v)]]
		if !known {
			c.fail(refuse(fmt.Sprintf("%s.values[%d]", path, i), "%q: matchNamespaceChanges takes Uts, Ipc, Mnt, Pid, PidForChildren, Net, Time, TimeForChildren, Cgroup or User", v))
			return nil
		}
		out.Types = append(out.Types, t)
	}
	return &out
}

// namespace compiles a matchNamespaces entry. host_ns stays symbolic: the
// node resolves it when the policy loads.
func (c *compiler) namespace(path string, m *NamespaceSelector) (NamespaceMatch, bool) {
	var out NamespaceMatch
	ok := true
	t, known := namespaceTypes[namespaceNames[strings.ToLower(m.Namespace)]]
	if !known {
		c.fail(refuse(path+".namespace", "%q: matchNamespaces takes Uts, Ipc, Mnt, Pid, PidForChildren, Net, Time, TimeForChildren, Cgroup or User", m.Namespace))
		ok = false
	}
	out.Namespace = t
	if out.Op = inOp(m.Operator); out.Op == 0 {
		c.fail(refuse(path+".operator", "%q: matchNamespaces takes In or NotIn", m.Operator))
		ok = false
	}
	if n := len(m.Values); n == 0 || n > kernelMaxNsValues {
		c.fail(refuse(path+".values", "%d values, 1 to %d", n, kernelMaxNsValues))
		return out, false
	}
	for i, v := range m.Values {
		if v == "host_ns" {
			out.HostNS = true
			continue
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			c.fail(refuse(fmt.Sprintf("%s.values[%d]", path, i), "%q is neither a namespace inode number nor host_ns", v))
			ok = false
			continue
		}
		out.Values = append(out.Values, uint32(n))
	}
	return out, ok
}

// capabilities compiles a matchCapabilities entry. An empty type is
// Effective, the CRD's default.
func (c *compiler) capabilities(path string, m *CapabilitySelector) (CapabilityMatch, bool) {
	out := CapabilityMatch{NamespaceCapability: m.IsNamespaceCapability}
	ok := true
	switch strings.ToLower(m.Type) {
	case "", "effective":
		out.Set = CapEffective
	case "inheritable":
		out.Set = CapInheritable
	case "permitted":
		out.Set = CapPermitted
	default:
		c.fail(refuse(path+".type", "%q: matchCapabilities takes Effective, Inheritable or Permitted", m.Type))
		ok = false
	}
	if out.Op = inOp(m.Operator); out.Op == 0 {
		c.fail(refuse(path+".operator", "%q: matchCapabilities takes In or NotIn", m.Operator))
		ok = false
	}
	if len(m.Values) == 0 {
		c.fail(refuse(path+".values", "at least one capability"))
		return out, false
	}
	for i, v := range m.Values {
		n, known := CapabilityNumber(v)
		if !known {
			c.fail(refuse(fmt.Sprintf("%s.values[%d]", path, i), "%q is not a capability (CAP_CHOWN ... CAP_CHECKPOINT_RESTORE)", v))
			ok = false
			continue
		}
		out.Mask |= 1 << n
	}
	return out, ok
}

// sockaddrFilter compiles a matchArgs entry on a sockaddr argument. The
// kernel reads a sockaddr as a sock whose source end is the address, so
// the filter is a sock filter on that end.
func (c *compiler) sockaddrFilter(path string, m ArgSelector) (Filter, bool) {
	// A sockaddr's address and port are the source side (Tetragon's
	// rule), and it has a family.
	if o, ok := lookupOperator(m.Operator); !ok || o.sock == nil || !o.sockaddr {
		c.fail(refuse(path+".operator", "%q does not apply to a sockaddr argument; use SAddr, SPort, SPortPriv (or their Not forms) or Family", m.Operator))
		return Filter{}, false
	}
	return c.sockFilter(path, m)
}

// Sock filters hold at most kernelMaxValues single values, or half as many
// entries when one of them is a range: the kernel compares singles for
// equality and ranges by their bounds, two table slots each.
const (
	tableSockValues = kernelMaxValues
	tableSockRanges = kernelMaxValues / 2
)

// sockFilter compiles a matchArgs entry on a sock argument. An address
// filter may mix IPv4 and IPv6 CIDRs: the kernel matches an AF_INET socket
// against the IPv4 ones and an AF_INET6 socket against the IPv6 ones, so
// that a family the filter lists no CIDR of is in none (NotDAddr matches
// it), as in Tetragon.
func (c *compiler) sockFilter(path string, m ArgSelector) (Filter, bool) {
	o, ok := lookupOperator(m.Operator)
	if !ok || o.sock == nil {
		c.fail(refuse(path+".operator", "%q does not apply to a sock argument; use SAddr, DAddr, SPort, DPort, SPortPriv, DPortPriv (or their Not forms), Protocol, Family or State", m.Operator))
		return Filter{}, false
	}
	so, canon := o.sock, o.name
	f := Filter{Op: o.op, Unsigned: true}
	switch {
	case o.set == SetAddr:
		if len(m.Values) == 0 {
			c.fail(refuse(path+".values", "at least one address or CIDR"))
			return f, false
		}
		for i, v := range m.Values {
			if _, err := ParseCIDR(v); err != nil {
				c.fail(refuse(fmt.Sprintf("%s.values[%d]", path, i), "%v", err))
				return f, false
			}
		}
		f.Strings = m.Values
		return f, true
	case so.priv:
		if len(m.Values) > 0 {
			c.fail(refuse(path+".values", "%s takes no values", canon))
			return f, false
		}
		f.Ints = []int64{0, 1023}
		return f, true
	}
	if len(m.Values) == 0 {
		c.fail(refuse(path+".values", "at least one value"))
		return f, false
	}
	ranges := false
	for i, v := range m.Values {
		lo, hi, ok := sockValue(strings.TrimSpace(v), so.names, so.max)
		if !ok {
			hint := ""
			if so.example != "" {
				hint = ", or a name such as " + so.example
			}
			c.fail(refuse(fmt.Sprintf("%s.values[%d]", path, i), "%q is not a value of %s: want a number from 0 to %d, a range lo:hi of such numbers%s", v, canon, so.max, hint))
			return f, false
		}
		ranges = ranges || lo != hi
		f.Ints = append(f.Ints, lo, hi)
	}
	if n := len(m.Values); n > tableSockValues || ranges && n > tableSockRanges {
		c.fail(refuse(path+".values", "%d values, at most %d, or %d when one is a range", n, tableSockValues, tableSockRanges))
		return f, false
	}
	return f, true
}

// sockValue reads one value of a sock operator: a name, a number up to max,
// or a range "lo:hi" of numbers (a reversed range is turned around, as
// Tetragon does with the ranges of its maps).
func sockValue(v string, names map[string]uint64, max uint64) (lo, hi int64, ok bool) {
	if n, ok := names[v]; ok {
		return int64(n), int64(n), true
	}
	a, b, isRange := strings.Cut(v, ":")
	if !isRange {
		b = a
	}
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil || x > max || y > max {
		return 0, 0, false
	}
	if x > y {
		x, y = y, x
	}
	return int64(x), int64(y), true
}

// SockAddrOp reports whether op compares a sock argument's address with
// CIDRs (SAddr, DAddr and their Not forms).
func SockAddrOp(op Op) bool {
	return op >= OpSockSAddr && op.Set() == SetAddr
}

// ParseCIDR reads an IPv4 or IPv6 address or CIDR ("127.0.0.1",
// "10.0.0.0/8", "fd00::/8"). A v4-mapped IPv6 address ("::ffff:10.0.0.1")
// stays IPv6, as in Tetragon: it matches AF_INET6 sockets that use it, not
// AF_INET ones. Zones are refused: the kernel's sockets carry none.
func ParseCIDR(v string) (netip.Prefix, error) {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "/") {
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", v)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (such as 10.0.0.0/8 or fd00::/8)", v)
	}
	return p.Masked(), nil
}

func (c *compiler) actions(path string, actions []ActionSelector, sel *Selector, h *Hook, specArgs []ArgSpec) {
	kind := h.Kind
	sel.Post = true
	sel.RateScope = defaultRateScope
	if len(actions) == 0 {
		sel.Actions = []string{"Post"}
		return
	}
	for i, a := range actions {
		p := fmt.Sprintf("%s[%d]", path, i)
		action, _ := CanonicalAction(a.Action)
		sel.Actions = append(sel.Actions, action)
		switch action {
		case "Count":
			sel.Count = true
		case "Post":
			if a.RateLimit != "" {
				d, err := ParseRateLimit(a.RateLimit)
				if err != nil {
					c.fail(refuse(p+".rateLimit", "%v", err))
				}
				sel.RateLimit = d
			}
			switch a.RateLimitScope {
			case "", "thread":
				sel.RateScope = RateThread
			case "process":
				sel.RateScope = RateProcess
			case "global":
				sel.RateScope = RateGlobal
			default:
				c.fail(refuse(p+".rateLimitScope", "%q: thread, process or global", a.RateLimitScope))
			}
			c.stackTraces(p, a, sel, kind)
			if a.ImaHash {
				c.imaHash(p, sel, h)
			}
		case "NoPost":
			sel.Post = false
		case "Sigkill", "Signal":
			if kind == HookConnect {
				c.fail(refuse(p+".action", "%s: a connect hook runs in a cgroup program, which cannot send signals; use Override to refuse the connection", action))
				continue
			}
			if action == "Sigkill" {
				if c.mode != ModeMonitor {
					sel.Signal = signalKill
				}
				continue
			}
			if a.ArgSig == 0 || a.ArgSig > 64 {
				c.fail(refuse(p+".argSig", "%d: a signal number from 1 to 64", a.ArgSig))
			} else if c.mode != ModeMonitor {
				sel.Signal = a.ArgSig
			}
		case "NotifyEnforcer", "CleanupEnforcerNotification":
			if kind == HookConnect {
				c.fail(refuse(p+".action", "%s: a connect hook runs in a cgroup program; use Override to refuse the connection", action))
				continue
			}
			if action == "CleanupEnforcerNotification" {
				sel.Notify = NotifyCleanup
				continue
			}
			if a.ArgSig > 64 {
				c.fail(refuse(p+".argSig", "%d: a signal number from 1 to 64", a.ArgSig))
				continue
			}
			if c.mode != ModeMonitor {
				sel.Notify, sel.NotifySignal = NotifyEnforcer, a.ArgSig
				if a.ArgError != 0 {
					sel.NotifyError = overrideErrno(a.ArgError)
				}
			}
		case "Override":
			if kind == HookSyscall && h.Return {
				c.fail(refuse(p, "Override on a syscall hook with return: true: the syscall is skipped, so there is no return to report"))
				continue
			}
			if kind == HookKprobe || kind == HookLSM || kind == HookSyscall {
				// Whether the kernel can is decided where it loads.
				if c.mode != ModeMonitor {
					sel.Override = true
					sel.OverrideErr = overrideErrno(a.ArgError)
				}
				continue
			}
			if kind == HookConnect {
				// The cgroup hook can only say no: the caller
				// sees EPERM whatever argError asks for.
				if c.mode != ModeMonitor {
					sel.Deny = true
				}
				continue
			}
			if kind == HookUsdt {
				c.fail(refuse(p+".action", "Override on a USDT probe: a probe site is not a function, it has no return value to replace"))
				continue
			}
			c.fail(refuse(p+".action", "Override on a %s hook is not supported by this version of Vigil yet", kind))
		case "TrackSock", "UntrackSock":
			if sa, ok := c.sockAction(p, a, action, h, specArgs); ok {
				if sel.Sock != nil {
					c.fail(refuse(p+".action", "%s: one TrackSock or UntrackSock per selector", action))
					continue
				}
				sel.Sock = &sa
			}
		case "Set":
			if kind != HookUsdt {
				c.fail(refuse(p+".action", "Set on a %s hook: Set writes a USDT probe's argument where the probe site keeps it, and only USDT probes have one", kind))
				continue
			}
			if int(a.ArgIndex) >= len(specArgs) {
				c.fail(refuse(p+".argIndex", "%d is not a position in the hook's %d args", a.ArgIndex, len(specArgs)))
				continue
			}
			if sel.Set != nil {
				c.fail(refuse(p+".action", "one Set per selector"))
				continue
			}
			// Monitor mode reports what would be set, and sets
			// nothing.
			if c.mode != ModeMonitor {
				sel.Set = &SetAction{Arg: uint8(specArgs[a.ArgIndex].Index), Value: a.ArgValue}
			}
		case "GetUrl":
			sel.URLs = append(sel.URLs, a.ArgURL)
		case "DnsLookup":
			sel.Names = append(sel.Names, a.ArgFqdn)
		default:
			c.fail(refuse(p+".action", "%q is not supported by this version of Vigil yet", a.Action))
		}
	}
}

// imaFileHooks are the LSM hooks whose file imaHash hashes, as Tetragon
// has them: the bprm ones hash their linux_binprm's file, the others their
// file argument.
var imaFileHooks = map[string]string{
	"bprm_check_security": "bprm", "bprm_committed_creds": "bprm", "bprm_committing_creds": "bprm",
	"bprm_creds_for_exec": "bprm", "bprm_creds_from_file": "bprm",
	"file_ioctl": "file", "file_lock": "file", "file_open": "file", "file_post_open": "file",
	"file_receive": "file", "mmap_file": "file",
}

// imaHash compiles Post's imaHash: the event carries the IMA hash of the
// LSM hook's file, taken by a sleepable program on the same hook.
func (c *compiler) imaHash(path string, sel *Selector, h *Hook) {
	if h.Kind != HookLSM {
		c.fail(refuse(path+".imaHash", "on a %s hook: imaHash hashes the file of an LSM hook (lsmhooks)", h.Kind))
		return
	}
	file, ok := imaFileHooks[h.Calls[0]]
	if !ok {
		c.fail(refuse(path+".imaHash", "the LSM hook %s has no file to hash: imaHash takes %s", h.Calls[0], strings.Join(sortedKeys(imaFileHooks), ", ")))
		return
	}
	if sel.KernelStack || sel.UserStack {
		c.fail(refuse(path+".imaHash", "with a stack trace: this version of Vigil adds one or the other to an event"))
		return
	}
	sel.ImaHash, h.ImaFile = true, file
}

// stackTraces compiles Post's kernelStackTrace and userStackTrace.
func (c *compiler) stackTraces(path string, a ActionSelector, sel *Selector, kind HookKind) {
	if kind == HookConnect && (a.KernelStackTrace || a.UserStackTrace) {
		field := ".kernelStackTrace"
		if !a.KernelStackTrace {
			field = ".userStackTrace"
		}
		c.fail(refuse(path+field, "a connect hook runs in a cgroup program, which cannot read stacks"))
		return
	}
	if kind == HookUprobe && a.KernelStackTrace {
		c.fail(refuse(path+".kernelStackTrace", "a uprobe stops the process in user space, where there is no kernel stack; userStackTrace gives the process's"))
		return
	}
	sel.KernelStack = sel.KernelStack || a.KernelStackTrace
	sel.UserStack = sel.UserStack || a.UserStackTrace
}

// sockAction compiles TrackSock or UntrackSock: argSock names, by its
// index, a declared sock argument of a kernel function or LSM hook (the
// only hooks that read one).
func (c *compiler) sockAction(path string, a ActionSelector, action string, h *Hook, specArgs []ArgSpec) (SockAction, bool) {
	for pos, sa := range specArgs {
		if sa.Index != a.ArgSock || pos >= len(h.Args) {
			continue
		}
		if h.Args[pos].Kind != ArgSock {
			break
		}
		return SockAction{Untrack: action == "UntrackSock", Arg: uint8(pos)}, true
	}
	c.fail(refuse(path+".argSock", "%d: %s needs the index of a sock argument of the hook, read at a kernel function or LSM hook", a.ArgSock, action))
	return SockAction{}, false
}

// overrideErrno is the error an Override makes the call return: argError
// as a negative errno, -EPERM when it is not given.
func overrideErrno(argError int32) int32 {
	switch {
	case argError == 0, argError < -4095, argError > 4095:
		// Errnos are 1..4095: anything else is EPERM.
		return -1
	case argError > 0:
		return -argError
	}
	return argError
}

// ParseRateLimit reads Tetragon's rateLimit: a number with an optional unit
// s, m or h ("5", "10s", "1m"); a bare number is seconds.
func ParseRateLimit(s string) (time.Duration, error) {
	unit := time.Second
	num := s
	switch {
	case strings.HasSuffix(s, "s"):
		num = strings.TrimSuffix(s, "s")
	case strings.HasSuffix(s, "m"):
		num, unit = strings.TrimSuffix(s, "m"), time.Minute
	case strings.HasSuffix(s, "h"):
		num, unit = strings.TrimSuffix(s, "h"), time.Hour
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q: a positive number with an optional unit s, m or h", s)
	}
	return time.Duration(n) * unit, nil
}

// filter compiles a matchArgs or matchReturnArgs entry on an argument that
// is a string or an integer.
func (c *compiler) filter(path string, m ArgSelector, isString, unsigned bool) (Filter, bool) {
	o, ok := lookupOperator(m.Operator)
	if !ok || !o.args || !o.supported() || o.sock != nil {
		c.fail(refuse(path+".operator", "%q is not supported by this version of Vigil yet", m.Operator))
		return Filter{}, false
	}
	op := o.op
	f := Filter{Op: op, String: isString, Unsigned: unsigned}
	if len(m.Values) == 0 {
		c.fail(refuse(path+".values", "at least one value"))
		return f, false
	}
	if isString {
		if o.set == SetNone {
			c.fail(refuse(path+".operator", "%s compares integers; the argument is a string", m.Operator))
			return f, false
		}
		if !c.strings(path+".values", op, m.Values) {
			return f, false
		}
		f.Strings = m.Values
		return f, true
	}
	switch {
	case !o.ints:
		c.fail(refuse(path+".operator", "%s compares strings; the argument is an integer", m.Operator))
		return f, false
	case o.values == valuesMap:
		return c.inMap(path, m, f)
	}
	for i, v := range m.Values {
		vp := fmt.Sprintf("%s.values[%d]", path, i)
		if o.values == valuesRange {
			lo, hi, ok := strings.Cut(v, ":")
			a, errA := parseInt(lo, unsigned)
			b, errB := parseInt(hi, unsigned)
			if !ok || errA != nil || errB != nil {
				c.fail(refuse(vp, "%q: a range is lo:hi", v))
				return f, false
			}
			f.Ints = append(f.Ints, a, b)
			continue
		}
		n, err := parseInt(v, unsigned)
		if err != nil {
			c.fail(refuse(vp, "%q is not an integer", v))
			return f, false
		}
		f.Ints = append(f.Ints, n)
	}
	if len(f.Ints) > kernelMaxValues {
		c.fail(refuse(path+".values", "%d values, at most %d (ranges count twice)", len(f.Ints), kernelMaxValues))
		return f, false
	}
	return f, true
}

// argFilter compiles the operators that look at an argument as a whole
// rather than at its value: FileType and NotFileType (the type of a file
// argument's inode) and CapabilitiesGained (two capability sets). handled
// reports whether m is one of them.
func (c *compiler) argFilter(path string, m ArgSelector, h *Hook, pos int) (f Filter, handled, ok bool) {
	o, _ := lookupOperator(m.Operator)
	if o == nil {
		return f, false, false
	}
	f = Filter{Op: o.op, Arg: uint8(pos)}
	switch o.op {
	case OpFileType, OpNotFileType:
		if t, _ := CanonicalArgType(h.Args[pos].Type); !slices.Contains(fileArgTypes, t) {
			c.fail(refuse(path+".operator", "%s matches file arguments (%s), not %s", o.name, strings.Join(fileArgTypes, ", "), h.Args[pos].Type))
			return f, true, false
		}
		if len(m.Values) == 0 || len(m.Values) > kernelMaxValues {
			c.fail(refuse(path+".values", "%d values, 1 to %d", len(m.Values), kernelMaxValues))
			return f, true, false
		}
		for i, v := range m.Values {
			t, known := fileTypes[v]
			if !known {
				c.fail(refuse(fmt.Sprintf("%s.values[%d]", path, i), "%q is not a file type (known: %s)", v, strings.Join(sortedKeys(fileTypes), ", ")))
				return f, true, false
			}
			f.Ints = append(f.Ints, t)
		}
		return f, true, true
	case OpCapabilitiesGained:
		// args: the old set, then the new one, as Tetragon's kernel
		// reads them (matched when the new has a capability the old
		// lacks).
		if len(m.Args) != 2 || int(m.Args[1]) >= len(h.Args) || h.Args[pos].Kind != ArgCaps || h.Args[m.Args[1]].Kind != ArgCaps {
			c.fail(refuse(path+".args", "CapabilitiesGained needs args: the positions of two capability-set arguments, the old then the new"))
			return f, true, false
		}
		f.Ints = []int64{int64(m.Args[1])}
		return f, true, true
	}
	return f, false, false
}

// inMap compiles the values of an InMap or NotInMap filter: integers and
// "min:max" ranges (either way round, as Tetragon reads them), expanded
// into the set the kernel looks the argument up in, and list:NAME of
// syscalls, kept as names for the node to number.
func (c *compiler) inMap(path string, m ArgSelector, f Filter) (Filter, bool) {
	seen := map[int64]bool{}
	for i, v := range m.Values {
		vp := fmt.Sprintf("%s.values[%d]", path, i)
		if strings.HasPrefix(v, "list:") {
			calls := c.syscalls(vp, v)
			if len(calls) == 0 {
				return f, false
			}
			if len(seen)+len(f.Strings)+len(calls) > MaxInMapEntries {
				c.fail(refuse(path+".values", "more than %d integers once ranges and lists are expanded (MaxInMapEntries)", MaxInMapEntries))
				return f, false
			}
			f.Strings = append(f.Strings, calls...)
			continue
		}
		lo, hi, isRange := strings.Cut(v, ":")
		if !isRange {
			hi = lo
		}
		a, errA := parseInt(lo, f.Unsigned)
		b, errB := parseInt(hi, f.Unsigned)
		if errA != nil || errB != nil {
			c.fail(refuse(vp, "%q is neither an integer nor a range lo:hi", v))
			return f, false
		}
		if f.Unsigned && uint64(a) > uint64(b) || !f.Unsigned && a > b {
			a, b = b, a
		}
		// Counted before it is expanded: a range as wide as the type
		// must not be walked to be refused.
		if width := uint64(b) - uint64(a) + 1; width == 0 || width > MaxInMapEntries || len(seen)+len(f.Strings)+int(width) > MaxInMapEntries {
			c.fail(refuse(path+".values", "more than %d integers once ranges and lists are expanded (MaxInMapEntries)", MaxInMapEntries))
			return f, false
		}
		for n := a; ; n++ {
			if !seen[n] {
				seen[n] = true
				f.Ints = append(f.Ints, n)
			}
			if n == b {
				break
			}
		}
	}
	return f, true
}

func parseInt(s string, unsigned bool) (int64, error) {
	s = strings.TrimSpace(s)
	if unsigned {
		u, err := strconv.ParseUint(s, 0, 64)
		return int64(u), err
	}
	return strconv.ParseInt(s, 0, 64)
}

func (c *compiler) strings(path string, op Op, values []string) bool {
	if len(values) == 0 {
		c.fail(refuse(path, "at least one value"))
		return false
	}
	limit := op.Set().maxLen()
	for i, v := range values {
		if len(v) > limit {
			c.fail(refuse(fmt.Sprintf("%s[%d]", path, i), "%d bytes, at most %d for %s", len(v), limit, opName(op)))
			return false
		}
	}
	return true
}

// inOp is the operator of matchPIDs, matchNamespaces and matchCapabilities,
// In or NotIn in any case; 0 for another.
func inOp(op string) Op {
	switch {
	case strings.EqualFold(op, "In"):
		return OpIn
	case strings.EqualFold(op, "NotIn"):
		return OpNotIn
	}
	return 0
}
