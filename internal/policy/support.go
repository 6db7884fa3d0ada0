package policy

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// ErrNotSupported is wrapped by every refusal of Supported: the policy is
// valid Tetragon, but asks for something Vigil's engine does not do yet.
var ErrNotSupported = errors.New("not supported by Vigil yet")

// notSupportedYet ends the reason of every refusal, so that a refusal is
// easy to tell from a mistake in the policy (and to grep for).
const notSupportedYet = "not supported by Vigil yet"

type set map[string]bool

func setOf(names ...string) set {
	s := set{}
	for _, n := range names {
		s[n] = true
	}
	return s
}

// support is the engine's support matrix, in one place. A field or value
// that is not listed here is refused by Supported with its path. To support
// something new, add it here (and to the compiler); nothing else changes.
//
// Whether the running kernel can host a hook (kprobes, BPF LSM, override)
// is another question, answered by internal/kernel when the policy loads.
var support = struct {
	// kinds of policy object.
	kinds set
	// fields lists, per policy type, the fields (json names) Vigil handles;
	// any other field that is set is refused. A field whose type is listed
	// too is checked field by field.
	fields map[reflect.Type]set
	// argTypes are the supported argument types, by canonical name (see
	// CanonicalArgType).
	argTypes set
	// actions of matchActions, matchReturnActions and returnArgAction, by
	// canonical name (see CanonicalAction).
	actions set
	// listTypes of spec.lists.
	listTypes set
	// options of spec.options, by name.
	options set
}{
	kinds: setOf(KindTracingPolicy, KindTracingPolicyNamespaced),
	fields: map[reflect.Type]set{
		reflect.TypeFor[Spec](): setOf("kprobes", "tracepoints", "uprobes", "usdts", "lsmhooks", "lists", "options",
			"podSelector", "containerSelector", "selectorsMacros", "loader", "enforcers", "fentries"),
		reflect.TypeFor[UsdtSpec]():       setOf("path", "provider", "name", "args", "selectors", "message", "tags"),
		reflect.TypeFor[KProbeSpec]():     setOf("call", "syscall", "return", "args", "data", "returnArg", "returnArgAction", "selectors", "message", "tags", "ignore"),
		reflect.TypeFor[IgnoreSpec]():     setOf("callNotFound"),
		reflect.TypeFor[TracepointSpec](): setOf("subsystem", "event", "raw", "args", "selectors", "message", "tags"),
		reflect.TypeFor[UProbeSpec]():     setOf("path", "symbols", "offsets", "refCtrOffsets", "addrs", "return", "args", "data", "returnArg", "selectors", "message", "tags"),
		reflect.TypeFor[LsmHookSpec]():    setOf("hook", "args", "selectors", "message", "tags"),
		reflect.TypeFor[ArgSpec]():        setOf("index", "type", "label", "sizeArgIndex", "returnCopy", "maxData", "resolve", "source"),
		reflect.TypeFor[SelectorSpec](): setOf("matchPIDs", "matchArgs", "matchData", "matchReturnArgs", "matchBinaries", "matchParentBinaries",
			"matchNamespaces", "matchNamespaceChanges", "matchCapabilities", "matchCapabilityChanges", "matchActions", "matchReturnActions", "macros"),
		reflect.TypeFor[PIDSelector]():        setOf("operator", "values", "isNamespacePID", "followForks"),
		reflect.TypeFor[ArgSelector]():        setOf("index", "args", "operator", "values"),
		reflect.TypeFor[BinarySelector]():     setOf("operator", "values", "followChildren"),
		reflect.TypeFor[NamespaceSelector]():  setOf("namespace", "operator", "values"),
		reflect.TypeFor[CapabilitySelector](): setOf("type", "operator", "isNamespaceCapability", "values"),
		// Parameters of the supported actions; a parameter of another action
		// is meaningless on these and refused too.
		reflect.TypeFor[ActionSelector](): setOf("action", "rateLimit", "rateLimitScope", "kernelStackTrace", "userStackTrace",
			"argSig", "argError", "argSock", "argUrl", "argFqdn", "argIndex", "argValue", "imaHash"),
		// pattern belongs to generated_ftrace lists, refused by type.
		reflect.TypeFor[ListSpec]():   setOf("name", "type", "values", "pattern", "validated"),
		reflect.TypeFor[OptionSpec](): setOf("name", "value"),
	},
	argTypes: setOf(
		"int", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "size_t",
		"string", "char_buf", "fd", "file", "path", "filename",
		"sock", "sockaddr", "socket", "skb", "cred", "capability", "linux_binprm", "syscall64",
		"kernel_cap_t", "cap_effective", "cap_inheritable", "cap_permitted", "kiocb", "iov_iter",
		"bpf_attr", "perf_event", "bpf_map", "net_device", "module", "load_info", "dentry", "user_namespace",
		"bpf_prog", "bpf_cmd", "char_iovec", "sockaddr_un", "data_loc",
		"nop", // declares an argument that is not read
	),
	actions: setOf("Post", "NoPost", "Count", "Sigkill", "Signal", "Override", "TrackSock", "UntrackSock", "GetUrl", "DnsLookup",
		"NotifyEnforcer", "CleanupEnforcerNotification", "Set"),
	listTypes: setOf("syscalls", "generated_syscalls", "generated_ftrace", ""), // "": kernel functions
	// disable-uprobe-multi and uprobe-heap-size have nothing to act on:
	// Vigil attaches one uprobe per symbol and keeps no uprobe heap.
	options: setOf("policy-mode", "disable-kprobe-multi", "disable-uprobe-multi", "uprobe-heap-size", "override-method"),
}

// Supported reports what in a policy Vigil's engine does not implement yet,
// each as a *FieldError wrapping ErrNotSupported whose reason ends in "not
// supported by Vigil yet". It returns nil when the engine handles all of
// it. It is separate from Validate: a valid Tetragon policy can still be
// refused here, and Supported says nothing of a policy's mistakes (run
// Validate first; Supported does not fail on an invalid policy, it only
// reports less). The support matrix is the table support in support.go.
func Supported(p *TracingPolicy) error {
	if p == nil {
		return nil
	}
	c := supportCheck{}
	if (p.Kind == KindTracingPolicy || p.Kind == KindTracingPolicyNamespaced) && !support.kinds[p.Kind] {
		c.refusef("kind", "%q is %s", p.Kind, notSupportedYet)
	}
	s := &p.Spec
	c.fields("spec", s)
	for i := range s.Lists {
		l := &s.Lists[i]
		lp := fmt.Sprintf("spec.lists[%d]", i)
		c.fields(lp, l)
		if listTypes[l.Type] && !support.listTypes[l.Type] {
			c.refusef(lp+".type", "%q is %s", l.Type, notSupportedYet)
		}
	}
	for i, o := range s.Options {
		if _, known := optionValues[o.Name]; known && !support.options[o.Name] {
			c.refusef(fmt.Sprintf("spec.options[%d].name", i), "%q is %s", o.Name, notSupportedYet)
		}
		if o.Name == "override-method" && o.Value == "override-return" && overrides(s) {
			c.refusef(fmt.Sprintf("spec.options[%d].value", i), "override-return (bpf_override_return on a kprobe) is %s: Vigil overrides with fmod_ret (fmod-ret) on syscalls and security_* functions, and on LSM and connect hooks by their return", notSupportedYet)
		}
	}
	kprobes := func(name string, list []KProbeSpec) {
		for i := range list {
			k := &list[i]
			kp := fmt.Sprintf("spec.%s[%d]", name, i)
			if c.fields(kp, k) && k.Ignore != nil {
				c.fields(kp+".ignore", k.Ignore)
			}
			if k.ReturnArgAction != "" {
				c.action(kp+".returnArgAction", k.ReturnArgAction)
			}
			c.hook(kp, k.Args, k.ReturnArg, k.Selectors)
			c.data(kp, k.Data)
		}
	}
	kprobes("kprobes", s.KProbes)
	kprobes("fentries", s.Fentries)
	for i := range s.Tracepoints {
		t := &s.Tracepoints[i]
		tp := fmt.Sprintf("spec.tracepoints[%d]", i)
		c.fields(tp, t)
		c.hook(tp, t.Args, nil, t.Selectors)
	}
	for i := range s.UProbes {
		u := &s.UProbes[i]
		up := fmt.Sprintf("spec.uprobes[%d]", i)
		c.fields(up, u)
		c.hook(up, u.Args, u.ReturnArg, u.Selectors)
		c.data(up, u.Data)
	}
	for i := range s.Usdts {
		u := &s.Usdts[i]
		up := fmt.Sprintf("spec.usdts[%d]", i)
		c.fields(up, u)
		c.hook(up, u.Args, nil, u.Selectors)
	}
	for i := range s.LsmHooks {
		l := &s.LsmHooks[i]
		lp := fmt.Sprintf("spec.lsmhooks[%d]", i)
		c.fields(lp, l)
		c.hook(lp, l.Args, nil, l.Selectors)
	}
	if len(c.errs) == 0 {
		return nil
	}
	return c.errs
}

type supportCheck struct {
	errs FieldErrors
}

func (c *supportCheck) refusef(path, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{Path: path, Reason: fmt.Sprintf(format, args...), Err: ErrNotSupported})
}

// fields refuses every field of the struct v points to that is set and not
// in the support table for its type. It reports whether all set fields are
// supported.
func (c *supportCheck) fields(path string, v any) bool {
	rv := reflect.ValueOf(v).Elem()
	ok := true
	supported := support.fields[rv.Type()]
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Type().Field(i)
		if !f.IsExported() || rv.Field(i).IsZero() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !supported[name] {
			c.refusef(joinField(path, name), "%s", notSupportedYet)
			ok = false
		}
	}
	return ok
}

// hook checks the arguments and selectors of one hook.
func (c *supportCheck) hook(path string, args []ArgSpec, ret *ArgSpec, selectors []SelectorSpec) {
	for i := range args {
		c.arg(fmt.Sprintf("%s.args[%d]", path, i), &args[i])
	}
	if ret != nil {
		c.arg(path+".returnArg", ret)
	}
	for i := range selectors {
		c.selector(fmt.Sprintf("%s.selectors[%d]", path, i), &selectors[i])
	}
}

// data checks the entries of a hook's data list as arguments.
func (c *supportCheck) data(path string, data []ArgSpec) {
	for i := range data {
		c.arg(fmt.Sprintf("%s.data[%d]", path, i), &data[i])
	}
}

func (c *supportCheck) arg(path string, a *ArgSpec) {
	c.fields(path, a)
	info, known := lookupArgType(a.Type)
	if !known || support.argTypes[info.canonical] || info.canonical == "auto" {
		// auto: taken on tracepoints, refused elsewhere by Compile,
		// which knows the hook.
		return
	}
	c.refusef(path+".type", "%q is %s", a.Type, notSupportedYet)
}

func (c *supportCheck) selector(path string, s *SelectorSpec) {
	c.fields(path, s)
	for i := range s.MatchPIDs {
		c.fields(fmt.Sprintf("%s.matchPIDs[%d]", path, i), &s.MatchPIDs[i])
	}
	filters := func(name string, list []ArgSelector) {
		for i := range list {
			mp := fmt.Sprintf("%s.%s[%d]", path, name, i)
			c.fields(mp, &list[i])
			if o, known := lookupOperator(list[i].Operator); known && o.args && !o.supported() {
				c.refusef(mp+".operator", "%q is %s", o.name, notSupportedYet)
			}
		}
	}
	filters("matchArgs", s.MatchArgs)
	filters("matchData", s.MatchData)
	filters("matchReturnArgs", s.MatchReturnArgs)
	binaries := func(name string, list []BinarySelector) {
		for i := range list {
			bp := fmt.Sprintf("%s.%s[%d]", path, name, i)
			c.fields(bp, &list[i])
			if o, known := binaryOperator(list[i].Operator); known && !o.supported() {
				c.refusef(bp+".operator", "%q is %s", o.name, notSupportedYet)
			}
		}
	}
	binaries("matchBinaries", s.MatchBinaries)
	binaries("matchParentBinaries", s.MatchParentBinaries)
	for i := range s.MatchNamespaces {
		c.fields(fmt.Sprintf("%s.matchNamespaces[%d]", path, i), &s.MatchNamespaces[i])
	}
	for i := range s.MatchCapabilities {
		c.fields(fmt.Sprintf("%s.matchCapabilities[%d]", path, i), &s.MatchCapabilities[i])
	}
	actions := func(name string, list []ActionSelector) {
		for i := range list {
			ap := fmt.Sprintf("%s.%s[%d]", path, name, i)
			if c.action(ap+".action", list[i].Action) {
				c.fields(ap, &list[i])
			}
		}
	}
	actions("matchActions", s.MatchActions)
	actions("matchReturnActions", s.MatchReturnActions)
}

// action refuses an action Vigil does not take; it reports whether the
// action is supported (or unknown, which is Validate's to report).
func (c *supportCheck) action(path, action string) bool {
	act, known := CanonicalAction(action)
	if known && !support.actions[act] {
		c.refusef(path, "%q is %s", act, notSupportedYet)
		return false
	}
	return true
}

// overrides reports whether a kprobe of the spec has an Override action.
func overrides(s *Spec) bool {
	for _, k := range append(slices.Clone(s.KProbes), s.Fentries...) {
		for _, sel := range k.Selectors {
			for _, a := range append(slices.Clone(sel.MatchActions), sel.MatchReturnActions...) {
				if act, _ := CanonicalAction(a.Action); act == "Override" {
					return true
				}
			}
		}
	}
	return false
}
