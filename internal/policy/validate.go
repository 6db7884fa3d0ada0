package policy

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// ErrInvalid is wrapped by every problem Validate reports.
var ErrInvalid = errors.New("invalid policy")

// FieldError is one problem with a policy, located by the path of the field
// in the policy's YAML: spec.kprobes[0].selectors[0].matchArgs[0].index.
// Err is ErrInvalid (from Validate) or ErrNotSupported (from Supported).
type FieldError struct {
	Path   string
	Reason string
	Err    error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Reason }

// Unwrap lets errors.Is tell an invalid policy from an unsupported one.
func (e *FieldError) Unwrap() error { return e.Err }

// FieldErrors is every problem found in one policy, in the order of the
// policy's fields.
type FieldErrors []*FieldError

// Error lists the problems one per line, each as "<path>: <reason>".
func (l FieldErrors) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (l FieldErrors) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Validate checks a parsed policy against the semantics of Tetragon's
// TracingPolicy: known kinds, hooks, argument types, operators that apply
// to the argument they filter and values that parse for its type, actions
// with their required parameters, references (matchArgs indexes, "list:"
// names) that resolve, options Tetragon knows, well-formed label selectors,
// and Vigil's limits (see limits.go). It returns nil or a FieldErrors that
// lists every problem, not only the first.
//
// Validate accepts what Tetragon accepts, with two kinds of exception:
// Vigil's limits, and mistakes Tetragon would silently ignore (an unknown
// option, a matchBinaries without values, a second matchCapabilities its
// kernel code never reads), which Validate refuses so that nothing in a
// policy is dropped unnoticed. Whether Vigil's engine implements what the
// policy asks for is a separate question: see Supported.
//
// Namespaced policies: a TracingPolicyNamespaced takes its namespace from
// metadata.namespace. A file may omit it, as manifests applied with
// "kubectl apply -n NS" do, so Validate does not require it; whoever loads
// the policy must then supply one. A cluster-wide TracingPolicy must not
// carry a namespace, since it would not restrict anything.
func Validate(p *TracingPolicy) error {
	if p == nil {
		return FieldErrors{{Path: "policy", Reason: "missing", Err: ErrInvalid}}
	}
	v := validator{p: p, lists: map[string]*ListSpec{}}
	v.policy()
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

type validator struct {
	p     *TracingPolicy
	errs  FieldErrors
	lists map[string]*ListSpec
}

func (v *validator) addf(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Reason: fmt.Sprintf(format, args...), Err: ErrInvalid})
}

func (v *validator) policy() {
	p := v.p
	switch p.APIVersion {
	case APIVersion:
	case "":
		v.addf("apiVersion", "required: %s", APIVersion)
	default:
		v.addf("apiVersion", "%q, want %s", p.APIVersion, APIVersion)
	}
	switch p.Kind {
	case KindTracingPolicy, KindTracingPolicyNamespaced:
	case "":
		v.addf("kind", "required: %s or %s", KindTracingPolicy, KindTracingPolicyNamespaced)
	default:
		v.addf("kind", "%q, want %s or %s", p.Kind, KindTracingPolicy, KindTracingPolicyNamespaced)
	}
	v.metadata()
	v.spec()
}

func (v *validator) metadata() {
	m := v.p.Metadata
	switch {
	case m.Name == "":
		v.addf("metadata.name", "required")
	case len(m.Name) > 253 || !dns1123SubdomainRE.MatchString(m.Name):
		v.addf("metadata.name", "%q is not a valid object name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters", m.Name)
	}
	if m.Namespace != "" {
		if v.p.Kind == KindTracingPolicy {
			v.addf("metadata.namespace", "a TracingPolicy applies to the whole cluster and takes no namespace; use kind TracingPolicyNamespaced")
		} else if len(m.Namespace) > 63 || !dns1123LabelRE.MatchString(m.Namespace) {
			v.addf("metadata.namespace", "%q is not a valid namespace name: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters", m.Namespace)
		}
	}
	for _, k := range sortedKeys(m.Labels) {
		p := joinKey("metadata.labels", k)
		if reason := qualifiedNameProblem(k); reason != "" {
			v.addf(p, "key %s", reason)
		}
		if reason := labelValueProblem(m.Labels[k]); reason != "" {
			v.addf(p, "%s", reason)
		}
	}
	rule := ruleProblems(m.Annotations)
	for _, k := range sortedKeys(m.Annotations) {
		if reason := qualifiedNameProblem(k); reason != "" {
			v.addf(joinKey("metadata.annotations", k), "key %s", reason)
		}
		if reason, ok := rule[k]; ok {
			v.addf(joinKey("metadata.annotations", k), "%s", reason)
		}
	}
}

func (v *validator) spec() {
	s := &v.p.Spec
	hooks := len(s.KProbes) + len(s.Tracepoints) + len(s.UProbes) + len(s.LsmHooks) + len(s.Usdts) + len(s.Fentries)
	switch {
	case hooks == 0 && !s.Loader:
		v.addf("spec", "no hook: a policy needs kprobes, tracepoints, uprobes, lsmhooks, usdts or fentries")
	case hooks > MaxHooksPerPolicy:
		v.addf("spec", "%d hooks, at most %d (MaxHooksPerPolicy)", hooks, MaxHooksPerPolicy)
	}
	v.listSpecs()
	v.expandMacros()
	for i := range s.KProbes {
		v.kprobe(fmt.Sprintf("spec.kprobes[%d]", i), &s.KProbes[i], htKprobe)
	}
	for i := range s.Fentries {
		v.kprobe(fmt.Sprintf("spec.fentries[%d]", i), &s.Fentries[i], htFentry)
	}
	for i := range s.Tracepoints {
		v.tracepoint(fmt.Sprintf("spec.tracepoints[%d]", i), &s.Tracepoints[i])
	}
	for i := range s.UProbes {
		v.uprobe(fmt.Sprintf("spec.uprobes[%d]", i), &s.UProbes[i])
	}
	for i := range s.LsmHooks {
		v.lsmHook(fmt.Sprintf("spec.lsmhooks[%d]", i), &s.LsmHooks[i])
	}
	for i := range s.Usdts {
		v.usdt(fmt.Sprintf("spec.usdts[%d]", i), &s.Usdts[i])
	}
	v.enforcers()
	v.options()
	v.labelSelector("spec.podSelector", s.PodSelector)
	v.labelSelector("spec.containerSelector", s.ContainerSelector)
	if s.HostSelector != nil {
		switch {
		case v.p.Kind == KindTracingPolicyNamespaced:
			v.addf("spec.hostSelector", "a TracingPolicyNamespaced applies to pods of its namespace and takes no hostSelector")
		case len(s.HostSelector.MatchLabels) > 0 || len(s.HostSelector.MatchExpressions) > 0:
			v.addf("spec.hostSelector", "only {} (every host) is defined; host labels are not")
		}
	}
	for _, name := range sortedKeys(s.SelectorsMacros) {
		if name == "" {
			v.addf("spec.selectorsMacros", "a macro needs a name")
		}
	}
}

// listSpecs checks spec.lists and indexes them by name for "list:" lookups.
func (v *validator) listSpecs() {
	s := &v.p.Spec
	if len(s.Lists) > MaxListsPerPolicy {
		v.addf("spec.lists", "%d lists, at most %d (MaxListsPerPolicy)", len(s.Lists), MaxListsPerPolicy)
	}
	for i := range s.Lists {
		l := &s.Lists[i]
		p := fmt.Sprintf("spec.lists[%d]", i)
		switch {
		case l.Name == "":
			v.addf(p+".name", "required")
		case v.lists[l.Name] != nil:
			v.addf(p+".name", "%q names another list already", l.Name)
		default:
			v.lists[l.Name] = l
		}
		if !listTypes[l.Type] {
			v.addf(p+".type", "%q, want syscalls, generated_syscalls or generated_ftrace (or no type for kernel functions)", l.Type)
			continue
		}
		if len(l.Values) > MaxListValues {
			v.addf(p+".values", "%d values, at most %d (MaxListValues)", len(l.Values), MaxListValues)
		}
		switch l.Type {
		case "generated_syscalls":
			if len(l.Values) > 0 {
				v.addf(p+".values", "a generated_syscalls list holds every syscall and takes no values")
			}
		case "generated_ftrace":
			if len(l.Values) > 0 {
				v.addf(p+".values", "a generated_ftrace list is filled from its pattern and takes no values")
			}
			if l.Pattern == nil || *l.Pattern == "" {
				v.addf(p+".pattern", "required for a generated_ftrace list: a regular expression over kernel function names")
			} else if _, err := regexp.Compile(*l.Pattern); err != nil {
				v.addf(p+".pattern", "%q is not a regular expression: %v", *l.Pattern, err)
			}
		default:
			if len(l.Values) == 0 {
				v.addf(p+".values", "required: the functions of the list")
			}
			for j, val := range l.Values {
				vp := fmt.Sprintf("%s.values[%d]", p, j)
				if l.Type == "syscalls" && !syscallRE.MatchString(val) {
					v.addf(vp, "%q is not a syscall name (sys_NAME, or with an architecture prefix such as __ia32_sys_NAME)", val)
				} else if l.Type == "" && !symbolRE.MatchString(val) {
					v.addf(vp, "%q is not a kernel function name", val)
				}
			}
		}
		if l.Pattern != nil && l.Type != "generated_ftrace" {
			v.addf(p+".pattern", "only a generated_ftrace list takes a pattern")
		}
	}
}

// hookType is the kind of hook a selector belongs to; it decides which
// argument indexes exist and whether there is a return value.
type hookType int

const (
	htKprobe hookType = iota
	htFentry
	htTracepoint
	htUprobe
	htLSM
	htUsdt
)

func (t hookType) String() string {
	return [...]string{"kprobe", "fentry", "tracepoint", "uprobe", "LSM hook", "USDT probe"}[t]
}

// a returns the name with its article: "a kprobe", "an LSM hook".
func (t hookType) a() string {
	if t == htLSM {
		return "an " + t.String()
	}
	return "a " + t.String()
}

// hookCtx is what the selectors of one hook can refer to.
type hookCtx struct {
	typ  hookType
	args []ArgSpec
	data []ArgSpec
	// ret is the return value, set when the hook reports it (return: true).
	ret *ArgSpec
}

func (h *hookCtx) function() bool { return h.typ != htTracepoint && h.typ != htUsdt }

func (v *validator) kprobe(p string, k *KProbeSpec, typ hookType) {
	h := hookCtx{typ: typ, args: k.Args}
	switch {
	case k.Call == "":
		v.addf(p+".call", "required: the kernel function to hook, or list:NAME")
	case strings.HasPrefix(k.Call, "list:"):
		name := strings.TrimPrefix(k.Call, "list:")
		if l := v.lists[name]; l == nil {
			v.addf(p+".call", "list %q is not declared in spec.lists", name)
		}
	case k.Syscall && !syscallRE.MatchString(k.Call):
		v.addf(p+".call", "%q is not a syscall name: with syscall: true, call names a syscall as sys_NAME", k.Call)
	case !symbolRE.MatchString(k.Call):
		v.addf(p+".call", "%q is not a kernel function name", k.Call)
	}
	v.returnArg(p, k.Return, k.ReturnArg, &h)
	if k.ReturnArgAction != "" {
		ap := p + ".returnArgAction"
		act, ok := CanonicalAction(k.ReturnArgAction)
		switch {
		case !ok || (act != "Post" && act != "TrackSock" && act != "UntrackSock"):
			v.addf(ap, "%q, want Post, TrackSock or UntrackSock", k.ReturnArgAction)
		case !k.Return:
			v.addf(ap, "needs return: true")
		case act != "Post" && k.ReturnArg != nil && typeOf(k.ReturnArg.Type).canonical != "sock":
			v.addf(ap, "%s needs a returnArg of type sock", act)
		}
	}
	h.data = k.Data
	for i := range k.Data {
		v.data(fmt.Sprintf("%s.data[%d]", p, i), &k.Data[i])
	}
	v.args(p, &h)
	v.hookCommon(p, k.Message, k.Tags, k.Selectors, &h)
}

// data checks an entry of a hook's data list: an argument read from the
// current task or the hook's registers, named by resolve.
func (v *validator) data(p string, a *ArgSpec) {
	v.arg(p, a, &hookCtx{typ: htTracepoint}) // data entries have no register index
	switch a.Source {
	case "current_task", "pt_regs":
		if a.Resolve == "" {
			v.addf(p+".resolve", "required with source %s: the field of the task, or the register, to read", a.Source)
		}
	case "":
		v.addf(p+".source", "required: current_task or pt_regs")
	default:
		v.addf(p+".source", "%q, want current_task or pt_regs", a.Source)
	}
}

func (v *validator) tracepoint(p string, t *TracepointSpec) {
	if t.Subsystem == "" {
		v.addf(p+".subsystem", "required")
	} else if !tracepointRE.MatchString(t.Subsystem) {
		v.addf(p+".subsystem", "%q is not a tracepoint subsystem name", t.Subsystem)
	}
	if t.Event == "" {
		v.addf(p+".event", "required")
	} else if !tracepointRE.MatchString(t.Event) {
		v.addf(p+".event", "%q is not a tracepoint event name", t.Event)
	}
	h := hookCtx{typ: htTracepoint, args: t.Args}
	if t.Raw {
		for i, a := range t.Args {
			if a.Index > MaxRawTracepointArgIndex {
				v.addf(fmt.Sprintf("%s.args[%d].index", p, i), "%d: a raw tracepoint reads arguments 0 to %d", a.Index, MaxRawTracepointArgIndex)
			}
		}
	}
	v.args(p, &h)
	v.hookCommon(p, t.Message, t.Tags, t.Selectors, &h)
}

// binaryPath checks the path of a uprobe's or USDT's binary.
func (v *validator) binaryPath(p, file string) {
	switch {
	case file == "":
		v.addf(p+".path", "required: the binary or library to hook")
	case !path.IsAbs(file):
		v.addf(p+".path", "%q is not an absolute path", file)
	}
}

func (v *validator) uprobe(p string, u *UProbeSpec) {
	v.binaryPath(p, u.Path)
	targets := len(u.Symbols) + len(u.Offsets) + len(u.Addrs)
	switch {
	case targets == 0:
		v.addf(p, "needs symbols, offsets or addrs to hook")
	case targets > MaxUprobeTargets:
		v.addf(p, "%d symbols, offsets and addrs, at most %d (MaxUprobeTargets)", targets, MaxUprobeTargets)
	}
	for i, s := range u.Symbols {
		if s == "" {
			v.addf(fmt.Sprintf("%s.symbols[%d]", p, i), "empty symbol name")
		}
	}
	if len(u.RefCtrOffsets) > 0 && len(u.RefCtrOffsets) != len(u.Offsets) {
		v.addf(p+".refCtrOffsets", "%d entries for %d offsets: one reference counter offset per offset", len(u.RefCtrOffsets), len(u.Offsets))
	}
	if u.BTFPath != "" && !path.IsAbs(u.BTFPath) {
		v.addf(p+".btfPath", "%q is not an absolute path", u.BTFPath)
	}
	h := hookCtx{typ: htUprobe, args: u.Args, data: u.Data}
	v.returnArg(p, u.Return, u.ReturnArg, &h)
	for i := range u.Data {
		v.data(fmt.Sprintf("%s.data[%d]", p, i), &u.Data[i])
	}
	v.args(p, &h)
	v.hookCommon(p, u.Message, u.Tags, u.Selectors, &h)
}

func (v *validator) usdt(p string, u *UsdtSpec) {
	v.binaryPath(p, u.Path)
	for _, f := range []struct{ name, value string }{{"provider", u.Provider}, {"name", u.Name}} {
		if !usdtNameRE.MatchString(f.value) {
			v.addf(p+"."+f.name, "%q: required, the probe's %s as the binary's notes spell it (letters, digits, _)", f.value, f.name)
		}
	}
	for i, a := range u.Args {
		if a.Index > MaxUsdtArgIndex {
			v.addf(fmt.Sprintf("%s.args[%d].index", p, i), "%d: Vigil reads USDT arguments 0 to %d", a.Index, MaxUsdtArgIndex)
		}
	}
	h := hookCtx{typ: htUsdt, args: u.Args}
	v.args(p, &h)
	v.hookCommon(p, u.Message, u.Tags, u.Selectors, &h)
}

func (v *validator) lsmHook(p string, l *LsmHookSpec) {
	switch {
	case l.Hook == "":
		v.addf(p+".hook", "required: the LSM hook, e.g. file_open")
	case !lsmHookRE.MatchString(l.Hook):
		v.addf(p+".hook", "%q is not an LSM hook name", l.Hook)
	}
	h := hookCtx{typ: htLSM, args: l.Args}
	v.args(p, &h)
	v.hookCommon(p, l.Message, l.Tags, l.Selectors, &h)
}

// returnArg checks return/returnArg of a kprobe or uprobe and records the
// return value in h.
func (v *validator) returnArg(p string, ret bool, ra *ArgSpec, h *hookCtx) {
	switch {
	case ret && ra == nil:
		v.addf(p+".returnArg", "required with return: true: the type of the return value")
	case !ret && ra != nil:
		// Tetragon reads a return value only with return: true and
		// loads such a hook without one (its security_bprm_check
		// example does); so does Vigil.
	case ra != nil:
		rp := p + ".returnArg"
		if _, ok := lookupArgType(ra.Type); !ok {
			v.addf(rp+".type", "%q is not an argument type", ra.Type)
		}
		if ra.SizeArgIndex != 0 || ra.ReturnCopy || ra.MaxData {
			v.addf(rp, "sizeArgIndex, returnCopy and maxData describe arguments, not the return value")
		}
		h.ret = ra
	}
}

// args checks the arguments of a hook.
func (v *validator) args(p string, h *hookCtx) {
	if len(h.args) > MaxArgsPerHook {
		v.addf(p+".args", "%d arguments, at most %d (MaxArgsPerHook)", len(h.args), MaxArgsPerHook)
	}
	type key struct {
		index   uint32
		resolve string
	}
	seen := map[key]bool{}
	for i := range h.args {
		a := &h.args[i]
		ap := fmt.Sprintf("%s.args[%d]", p, i)
		v.arg(ap, a, h)
		k := key{a.Index, a.Resolve}
		if seen[k] {
			v.addf(ap+".index", "%d is declared twice", a.Index)
		}
		seen[k] = true
	}
}

// arg checks one argument (or data entry) of a hook.
func (v *validator) arg(p string, a *ArgSpec, h *hookCtx) {
	info, ok := lookupArgType(a.Type)
	if !ok {
		v.addf(p+".type", "%q is not an argument type (known: %s)", a.Type, strings.Join(knownArgTypes(), ", "))
	}
	if h.function() && a.Index > MaxFunctionArgIndex {
		v.addf(p+".index", "%d: %s reads arguments 0 to %d", a.Index, h.typ.a(), MaxFunctionArgIndex)
	}
	buffer := info.canonical == "char_buf" || info.canonical == "char_iovec"
	if a.SizeArgIndex != 0 {
		switch {
		case ok && !buffer:
			v.addf(p+".sizeArgIndex", "only char_buf and char_iovec arguments have a size argument")
		case a.SizeArgIndex == a.Index+1:
			v.addf(p+".sizeArgIndex", "%d is the argument itself; sizeArgIndex is the index of the size argument plus one", a.SizeArgIndex)
		case h.function() && a.SizeArgIndex > MaxFunctionArgIndex+1:
			v.addf(p+".sizeArgIndex", "%d: the size argument must be one of arguments 0 to %d, given as index plus one (1 to %d)", a.SizeArgIndex, MaxFunctionArgIndex, MaxFunctionArgIndex+1)
		}
	}
	if a.ReturnCopy {
		switch {
		case ok && !buffer:
			v.addf(p+".returnCopy", "only char_buf and char_iovec arguments can be copied at return")
		case h.typ == htTracepoint || h.typ == htLSM || h.typ == htUsdt:
			v.addf(p+".returnCopy", "%s has no return to copy the argument at", h.typ.a())
		}
	}
	if a.MaxData {
		switch {
		case ok && !buffer && info.canonical != "iov_iter":
			v.addf(p+".maxData", "only char_buf, char_iovec and iov_iter arguments read more data")
		case a.ReturnCopy:
			v.addf(p+".maxData", "cannot be combined with returnCopy")
		}
	}
	if a.Resolve != "" && !resolveRE.MatchString(a.Resolve) {
		v.addf(p+".resolve", "%q is not a field path such as mm.owner.comm or fdt.fd[0]", a.Resolve)
	}
	if a.BTFType != "" && a.Resolve == "" {
		v.addf(p+".btfType", "only used with resolve")
	}
}

func knownArgTypes() []string {
	var names []string
	for k := range argTypes {
		if k != "unsigned long" {
			names = append(names, k)
		}
	}
	return sortedStrings(names)
}

// typeOf returns what is known of a type name, the zero info if nothing.
func typeOf(t string) argTypeInfo {
	info, _ := lookupArgType(t)
	return info
}

func (v *validator) hookCommon(p, message string, tags []string, selectors []SelectorSpec, h *hookCtx) {
	if message != "" {
		switch n := len(message); {
		case n < MinMessageLen:
			v.addf(p+".message", "%d characters, at least %d", n, MinMessageLen)
		case n > MaxMessageLen:
			v.addf(p+".message", "%d characters, at most %d (MaxMessageLen)", n, MaxMessageLen)
		}
	}
	if len(tags) > MaxTags {
		v.addf(p+".tags", "%d tags, at most %d (MaxTags)", len(tags), MaxTags)
	}
	for i, t := range tags {
		if n := len(t); n < MinTagLen || n > MaxTagLen {
			v.addf(fmt.Sprintf("%s.tags[%d]", p, i), "%d characters, want %d to %d", n, MinTagLen, MaxTagLen)
		}
	}
	if len(selectors) > MaxSelectorsPerHook {
		v.addf(p+".selectors", "%d selectors, at most %d (MaxSelectorsPerHook)", len(selectors), MaxSelectorsPerHook)
	}
	for i := range selectors {
		v.selector(fmt.Sprintf("%s.selectors[%d]", p, i), &selectors[i], h)
	}
}

func (v *validator) enforcers() {
	s := &v.p.Spec
	if len(s.Enforcers) > 1 {
		v.addf("spec.enforcers", "%d enforcers, at most 1", len(s.Enforcers))
	}
	for i, raw := range s.Enforcers {
		p := fmt.Sprintf("spec.enforcers[%d]", i)
		var e struct {
			Calls []string `json:"calls"`
		}
		if !v.decodeFree(p, raw, &e) {
			continue
		}
		if len(e.Calls) == 0 {
			v.addf(p+".calls", "required: the syscalls the enforcer acts on")
		}
		for j, c := range e.Calls {
			cp := fmt.Sprintf("%s.calls[%d]", p, j)
			if name, ok := strings.CutPrefix(c, "list:"); ok {
				if l := v.lists[name]; l == nil {
					v.addf(cp, "list %q is not declared in spec.lists", name)
				} else if l.Type != "syscalls" && l.Type != "generated_syscalls" {
					v.addf(cp, "list %q is of type %q; an enforcer takes syscalls", name, l.Type)
				}
			} else if !syscallRE.MatchString(c) {
				v.addf(cp, "%q is not a syscall name (sys_NAME) or list:NAME", c)
			}
		}
	}
}

func (v *validator) options() {
	seen := map[string]bool{}
	for i, o := range v.p.Spec.Options {
		p := fmt.Sprintf("spec.options[%d]", i)
		check, ok := optionValues[o.Name]
		switch {
		case o.Name == "":
			v.addf(p+".name", "required")
			continue
		case !ok:
			v.addf(p+".name", "%q is not an option (known: %s)", o.Name, strings.Join(sortedKeys(optionValues), ", "))
			continue
		case seen[o.Name]:
			v.addf(p+".name", "%q is set twice", o.Name)
		}
		seen[o.Name] = true
		if reason := check(o.Value); reason != "" {
			v.addf(p+".value", "%q: %s", o.Value, reason)
		}
	}
}

// labelSelector checks a Kubernetes label selector.
func (v *validator) labelSelector(p string, s *LabelSelector) {
	if s == nil {
		return
	}
	for _, k := range sortedKeys(s.MatchLabels) {
		kp := joinKey(p+".matchLabels", k)
		if reason := qualifiedNameProblem(k); reason != "" {
			v.addf(kp, "key %s", reason)
		}
		if reason := labelValueProblem(s.MatchLabels[k]); reason != "" {
			v.addf(kp, "%s", reason)
		}
	}
	for i, e := range s.MatchExpressions {
		ep := fmt.Sprintf("%s.matchExpressions[%d]", p, i)
		if reason := qualifiedNameProblem(e.Key); reason != "" {
			v.addf(ep+".key", "%s", reason)
		}
		switch e.Operator {
		case "In", "NotIn":
			if len(e.Values) == 0 {
				v.addf(ep+".values", "required with operator %s", e.Operator)
			}
		case "Exists", "DoesNotExist":
			if len(e.Values) > 0 {
				v.addf(ep+".values", "operator %s takes no values", e.Operator)
			}
		case "":
			v.addf(ep+".operator", "required: In, NotIn, Exists or DoesNotExist")
		default:
			v.addf(ep+".operator", "%q, want In, NotIn, Exists or DoesNotExist", e.Operator)
		}
		for j, val := range e.Values {
			if p == "spec.containerSelector" && e.Key == "repo" {
				// Image repositories, no label values: Tetragon's
				// CRD leaves expression values unchecked.
				continue
			}
			if reason := labelValueProblem(val); reason != "" {
				v.addf(fmt.Sprintf("%s.values[%d]", ep, j), "%s", reason)
			}
		}
	}
}

// qualifiedNameProblem checks a label or annotation key: an optional DNS
// subdomain prefix and "/", then a name of at most 63 characters.
func qualifiedNameProblem(k string) string {
	name := k
	if prefix, rest, ok := strings.Cut(k, "/"); ok {
		if prefix == "" || len(prefix) > 253 || !dns1123SubdomainRE.MatchString(prefix) {
			return fmt.Sprintf("%q: the prefix before / must be a DNS subdomain", k)
		}
		name = rest
	}
	if name == "" || len(name) > 63 || !labelNameRE.MatchString(name) {
		return fmt.Sprintf("%q is not a valid key: at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit, after an optional DNS prefix and /", k)
	}
	return ""
}

// labelValueProblem checks a label value (which may be empty).
func labelValueProblem(val string) string {
	if val == "" {
		return ""
	}
	if len(val) > 63 || !labelNameRE.MatchString(val) {
		return fmt.Sprintf("%q is not a valid label value: at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit", val)
	}
	return ""
}

// decodeFree strictly decodes one of the free-form parts of the types (a
// map kept as map[string]any) into out, reporting unknown fields and wrong
// types under p. It returns false if the value does not decode.
func (v *validator) decodeFree(p string, raw any, out any) bool {
	problems, err := decodeFreeForm(raw, out)
	if err != nil {
		v.addf(p, "%v", err)
		return false
	}
	for _, e := range problems {
		v.addf(joinField(p, e.path), "%s", e.reason)
	}
	return len(problems) == 0
}

// validURL reports whether s is an absolute http or https URL.
func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
