package policy

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// selector checks one selector of a hook.
func (v *validator) selector(p string, s *SelectorSpec, h *hookCtx) {
	if len(s.MatchPIDs) > MaxMatchPIDsPerSelector {
		v.addf(p+".matchPIDs", "%d filters, at most %d (MaxMatchPIDsPerSelector)", len(s.MatchPIDs), MaxMatchPIDsPerSelector)
	}
	for i, m := range s.MatchPIDs {
		mp := fmt.Sprintf("%s.matchPIDs[%d]", p, i)
		v.inOperator(mp, m.Operator)
		switch n := len(m.Values); {
		case n == 0:
			v.addf(mp+".values", "required: the PIDs to match")
		case n > MaxPIDValues:
			v.addf(mp+".values", "%d PIDs, at most %d (MaxPIDValues)", n, MaxPIDValues)
		}
	}

	if n := len(s.MatchArgs) + len(s.MatchData); n > MaxMatchArgsPerSelector {
		v.addf(p+".matchArgs", "%d filters (with matchData), at most %d (MaxMatchArgsPerSelector)", n, MaxMatchArgsPerSelector)
	}
	for i := range s.MatchArgs {
		m := &s.MatchArgs[i]
		mp := fmt.Sprintf("%s.matchArgs[%d]", p, i)
		if a, ok := v.filteredArg(mp, m, h.args, h.typ == htTracepoint, "declared arg"); ok {
			v.argFilter(mp, m, a, h.args)
		}
	}
	for i := range s.MatchData {
		m := &s.MatchData[i]
		mp := fmt.Sprintf("%s.matchData[%d]", p, i)
		if len(h.data) == 0 {
			v.addf(mp, "the hook declares no data")
			continue
		}
		var a *ArgSpec
		if len(m.Args) > 0 {
			a, _ = v.filteredArg(mp, m, h.data, false, "data entry")
		} else if int(m.Index) < len(h.data) {
			a = &h.data[m.Index]
		} else {
			v.addf(mp+".index", "%d is not a data entry (the hook has %d)", m.Index, len(h.data))
		}
		if a != nil {
			v.argFilter(mp, m, a, h.data)
		}
	}

	if len(s.MatchReturnArgs) > 0 && h.ret == nil {
		v.addf(p+".matchReturnArgs", "the hook reports no return value (needs return: true and returnArg)")
	} else {
		if len(s.MatchReturnArgs) > MaxMatchReturnArgsPerSelector {
			v.addf(p+".matchReturnArgs", "%d filters, at most %d (MaxMatchReturnArgsPerSelector)", len(s.MatchReturnArgs), MaxMatchReturnArgsPerSelector)
		}
		for i := range s.MatchReturnArgs {
			m := &s.MatchReturnArgs[i]
			mp := fmt.Sprintf("%s.matchReturnArgs[%d]", p, i)
			if len(m.Args) > 0 {
				v.addf(mp+".args", "a return value filter takes no args")
				continue
			}
			if m.Index != h.ret.Index {
				v.addf(mp+".index", "%d is not the index of returnArg (%d)", m.Index, h.ret.Index)
				continue
			}
			v.argFilter(mp, m, h.ret, []ArgSpec{*h.ret})
		}
	}

	v.binaries(p+".matchBinaries", s.MatchBinaries)
	v.binaries(p+".matchParentBinaries", s.MatchParentBinaries)

	if len(s.MatchNamespaces) > MaxMatchNamespacesPerSelector {
		v.addf(p+".matchNamespaces", "%d filters, at most %d (MaxMatchNamespacesPerSelector)", len(s.MatchNamespaces), MaxMatchNamespacesPerSelector)
	}
	for i, m := range s.MatchNamespaces {
		mp := fmt.Sprintf("%s.matchNamespaces[%d]", p, i)
		if _, ok := namespaceNames[strings.ToLower(m.Namespace)]; !ok {
			v.addf(mp+".namespace", "%q, want one of Uts, Ipc, Mnt, Pid, PidForChildren, Net, Time, TimeForChildren, Cgroup, User", m.Namespace)
		}
		v.inOperator(mp, m.Operator)
		switch n := len(m.Values); {
		case n == 0:
			v.addf(mp+".values", "required: namespace inode numbers or host_ns")
		case n > MaxNamespaceValues:
			v.addf(mp+".values", "%d values, at most %d (MaxNamespaceValues)", n, MaxNamespaceValues)
		}
		for j, val := range m.Values {
			if _, err := strconv.ParseUint(val, 10, 32); err != nil && val != "host_ns" {
				v.addf(fmt.Sprintf("%s.values[%d]", mp, j), "%q is neither a namespace inode number nor host_ns", val)
			}
		}
	}

	v.capabilities(p+".matchCapabilities", s.MatchCapabilities)

	if len(s.MatchNamespaceChanges) > MaxMatchNamespaceChangesPerSelector {
		v.addf(p+".matchNamespaceChanges", "%d filters, at most %d", len(s.MatchNamespaceChanges), MaxMatchNamespaceChangesPerSelector)
	}
	for i, raw := range s.MatchNamespaceChanges {
		mp := fmt.Sprintf("%s.matchNamespaceChanges[%d]", p, i)
		var m struct {
			Operator string   `json:"operator"`
			Values   []string `json:"values"`
		}
		if !v.decodeFree(mp, raw, &m) {
			continue
		}
		v.inOperator(mp, m.Operator)
		if len(m.Values) == 0 {
			v.addf(mp+".values", "required: the namespace types whose change to match")
		}
		for j, val := range m.Values {
			if _, ok := namespaceNames[strings.ToLower(val)]; !ok {
				v.addf(fmt.Sprintf("%s.values[%d]", mp, j), "%q is not a namespace type", val)
			}
		}
	}
	if len(s.MatchCapabilityChanges) > MaxMatchCapabilitiesPerSelector {
		v.addf(p+".matchCapabilityChanges", "%d filters, at most %d (MaxMatchCapabilitiesPerSelector): Tetragon's kernel code reads only the first", len(s.MatchCapabilityChanges), MaxMatchCapabilitiesPerSelector)
	}
	for i, raw := range s.MatchCapabilityChanges {
		cp := fmt.Sprintf("%s.matchCapabilityChanges[%d]", p, i)
		var m CapabilitySelector
		if v.decodeFree(cp, raw, &m) {
			v.capability(cp, &m)
		}
	}

	v.actions(p+".matchActions", s.MatchActions, h)
	if len(s.MatchReturnActions) > 0 && h.ret == nil {
		v.addf(p+".matchReturnActions", "the hook reports no return value (needs return: true and returnArg)")
	} else {
		v.actions(p+".matchReturnActions", s.MatchReturnActions, h)
	}
}

// inOperator checks the In/NotIn operator of matchPIDs, matchNamespaces
// and the capability filters (Tetragon spells them exactly so).
func (v *validator) inOperator(p, op string) {
	switch op {
	case "In", "NotIn":
	case "":
		v.addf(p+".operator", "required: In or NotIn")
	default:
		v.addf(p+".operator", "%q, want In or NotIn", op)
	}
}

// MatchArgPosition returns the position in args of the argument a matchArgs
// (or matchData) entry filters, with Tetragon's rules:
//
//   - when the entry lists args (the form CapabilitiesGained uses), the
//     first one is a position in args;
//   - otherwise index names the argument whose index is equal, the
//     function argument for a kprobe, LSM hook or uprobe, the format field
//     for a tracepoint;
//   - for a tracepoint, an index that names no declared field is a
//     position in args (Tetragon's own examples filter "index: 0" on a
//     tracepoint whose only argument is field 4).
//
// ok is false when the entry names no argument.
func MatchArgPosition(args []ArgSpec, m *ArgSelector, tracepoint bool) (pos int, ok bool) {
	if len(m.Args) > 0 {
		return int(m.Args[0]), m.Args[0] < uint32(len(args))
	}
	for i := range args {
		if args[i].Index == m.Index {
			return i, true
		}
	}
	if tracepoint && m.Index < uint32(len(args)) {
		return int(m.Index), true
	}
	return 0, false
}

// filteredArg finds the argument a filter applies to (see
// MatchArgPosition) and reports a filter that names none.
func (v *validator) filteredArg(p string, m *ArgSelector, args []ArgSpec, tracepoint bool, what string) (*ArgSpec, bool) {
	if pos, ok := MatchArgPosition(args, m, tracepoint); ok {
		return &args[pos], true
	}
	if len(m.Args) > 0 {
		v.addf(p+".args[0]", "%d is not a position in the hook's %d %ss", m.Args[0], len(args), what)
		return nil, false
	}
	declared := make([]string, len(args))
	for i, a := range args {
		declared[i] = strconv.FormatUint(uint64(a.Index), 10)
	}
	switch {
	case len(args) == 0:
		v.addf(p+".index", "%d is not a %s (the hook declares none)", m.Index, what)
	case tracepoint:
		v.addf(p+".index", "%d is neither a declared field nor a position in args (declared: %s; positions 0 to %d)", m.Index, strings.Join(declared, ", "), len(args)-1)
	default:
		v.addf(p+".index", "%d is not a %s (declared: %s)", m.Index, what, strings.Join(declared, ", "))
	}
	return nil, false
}

// argFilter checks the operator and values of a matchArgs,
// matchReturnArgs or matchData entry against the argument it filters.
func (v *validator) argFilter(p string, m *ArgSelector, a *ArgSpec, args []ArgSpec) {
	op, ok := CanonicalOperator(m.Operator)
	if !ok {
		switch m.Operator {
		case "":
			v.addf(p+".operator", "required")
		case "In", "NotIn":
			v.addf(p+".operator", "%s is an operator of matchPIDs and matchBinaries; arguments use Equal or NotEqual", m.Operator)
		default:
			v.addf(p+".operator", "%q is not an operator of argument filters", m.Operator)
		}
		return
	}
	info, known := lookupArgType(a.Type)
	if !known {
		return // reported with the argument
	}
	row, _ := lookupOperator(op)
	opInfo := row.operatorInfo
	if info.class != classAuto && !operatorApplies(opInfo, info) {
		v.addf(p+".operator", "%s does not apply to an argument of type %s; it %s", op, a.Type, opInfo.description)
		return
	}
	if op == "CapabilitiesGained" {
		v.capabilitiesGained(p, m, args)
		return
	}
	if len(m.Args) > 1 {
		v.addf(p+".args", "only CapabilitiesGained takes two args")
	}
	vp := p + ".values"
	if opInfo.values == valuesNone {
		if len(m.Values) > 0 {
			v.addf(vp, "%s takes no values", op)
		}
		return
	}
	if len(m.Values) == 0 {
		v.addf(vp, "required: at least one value")
		return
	}
	if info.class == classAuto {
		return // the type, and so the values, are only known at load
	}
	v.filterValues(vp, op, opInfo, info, m.Values)
}

func operatorApplies(op operatorInfo, t argTypeInfo) bool {
	if len(op.onlyTypes) > 0 {
		for _, name := range op.onlyTypes {
			if t.canonical == name {
				return true
			}
		}
		return false
	}
	if t.canonical == "sockaddr" && !op.sockaddr {
		return false
	}
	for _, c := range op.classes {
		if c == t.class {
			return true
		}
	}
	return false
}

// filterValues checks the values of a filter for its operator and type.
func (v *validator) filterValues(p, op string, opInfo operatorInfo, t argTypeInfo, values []string) {
	limit, limitName := MaxIntValues, "MaxIntValues"
	switch opInfo.values {
	case valuesMap, valuesAddr, valuesPort, valuesProtocol, valuesFamily, valuesState:
		limit, limitName = MaxMapValues, "MaxMapValues"
	case valuesTyped:
		if t.class == classString {
			limit, limitName = MaxStringValues, "MaxStringValues"
		}
	}
	if len(values) > limit {
		hint := ""
		if limitName == "MaxIntValues" && (op == "Equal" || op == "NotEqual") {
			hint = "; InMap takes more"
		}
		v.addf(p, "%d values, at most %d for %s (%s)%s", len(values), limit, op, limitName, hint)
	}
	for i, val := range values {
		if reason := valueProblem(op, opInfo.values, t, val, v.lists); reason != "" {
			v.addf(fmt.Sprintf("%s[%d]", p, i), "%s", reason)
		}
	}
	if opInfo.values == valuesMap {
		if n := mapEntries(values, t, v.lists); n > MaxInMapEntries {
			v.addf(p, "%d integers once ranges and lists are expanded, at most %d for %s (MaxInMapEntries)", n, MaxInMapEntries, op)
		}
	}
}

// capabilitiesGained checks Tetragon's two-argument CapabilitiesGained
// filter: args names the old and the new capability set.
func (v *validator) capabilitiesGained(p string, m *ArgSelector, args []ArgSpec) {
	if len(m.Args) != 2 {
		v.addf(p+".args", "CapabilitiesGained needs two args: the positions of the old and the new capability set")
		return
	}
	for i, pos := range m.Args {
		ap := fmt.Sprintf("%s.args[%d]", p, i)
		if pos >= uint32(len(args)) {
			v.addf(ap, "%d is not a position in the hook's %d args", pos, len(args))
		} else if typeOf(args[pos].Type).class != classCaps {
			v.addf(ap, "argument %d is of type %s, not a capability set", pos, args[pos].Type)
		}
	}
}

// binaries checks matchBinaries or matchParentBinaries.
func (v *validator) binaries(p string, list []BinarySelector) {
	if len(list) > MaxMatchBinariesPerSelector {
		v.addf(p, "%d filters, at most %d (MaxMatchBinariesPerSelector)", len(list), MaxMatchBinariesPerSelector)
	}
	for i, b := range list {
		bp := fmt.Sprintf("%s[%d]", p, i)
		o, ok := binaryOperator(b.Operator)
		if !ok {
			if b.Operator == "" {
				v.addf(bp+".operator", "required: %s", binaryOperatorNames)
			} else {
				v.addf(bp+".operator", "%q, want %s", b.Operator, binaryOperatorNames)
			}
		}
		if b.FollowChildren && ok && o.op != OpIn && o.op != OpNotIn {
			v.addf(bp+".followChildren", "only with In or NotIn")
		}
		switch n := len(b.Values); {
		case n == 0:
			v.addf(bp+".values", "required: the binaries to match")
		case n > MaxBinaryValues:
			v.addf(bp+".values", "%d values, at most %d (MaxBinaryValues)", n, MaxBinaryValues)
		}
		set := SetNone
		if ok {
			set = o.set
		}
		for j, val := range b.Values {
			vp := fmt.Sprintf("%s.values[%d]", bp, j)
			switch set {
			case SetEqual:
				if !path.IsAbs(val) {
					v.addf(vp, "%q is not an absolute path; binaries are matched by their full path", val)
				} else if len(val) > MaxBinaryPathLen {
					v.addf(vp, "%d bytes, at most %d (MaxBinaryPathLen)", len(val), MaxBinaryPathLen)
				}
			case SetPrefix:
				if !strings.HasPrefix(val, "/") {
					v.addf(vp, "%q does not start with /; binaries are matched by their full path", val)
				} else if len(val) > MaxPrefixLen {
					v.addf(vp, "%d bytes, at most %d (MaxPrefixLen)", len(val), MaxPrefixLen)
				}
			case SetPostfix:
				if val == "" {
					v.addf(vp, "empty")
				} else if len(val) > MaxPostfixLen {
					v.addf(vp, "%d bytes, at most %d (MaxPostfixLen)", len(val), MaxPostfixLen)
				}
			}
		}
	}
}

// capabilities checks matchCapabilities or matchCapabilityChanges.
func (v *validator) capabilities(p string, list []CapabilitySelector) {
	if len(list) > MaxMatchCapabilitiesPerSelector {
		v.addf(p, "%d filters, at most %d (MaxMatchCapabilitiesPerSelector): Tetragon's kernel code reads only the first", len(list), MaxMatchCapabilitiesPerSelector)
	}
	for i := range list {
		v.capability(fmt.Sprintf("%s[%d]", p, i), &list[i])
	}
}

// capability checks one capability filter. An empty type is Effective, the
// CRD's default.
func (v *validator) capability(cp string, c *CapabilitySelector) {
	if _, ok := capabilitySets[strings.ToLower(c.Type)]; !ok && c.Type != "" {
		v.addf(cp+".type", "%q, want Effective, Inheritable or Permitted", c.Type)
	}
	v.inOperator(cp, c.Operator)
	if len(c.Values) == 0 {
		v.addf(cp+".values", "required: the capabilities to match")
	}
	for j, val := range c.Values {
		if _, ok := CapabilityNumber(val); !ok {
			v.addf(fmt.Sprintf("%s.values[%d]", cp, j), "%q is not a capability (CAP_CHOWN ... CAP_CHECKPOINT_RESTORE)", val)
		}
	}
}

// actions checks matchActions or matchReturnActions.
func (v *validator) actions(p string, list []ActionSelector, h *hookCtx) {
	if len(list) > MaxActionsPerSelector {
		v.addf(p, "%d actions, at most %d (MaxActionsPerSelector)", len(list), MaxActionsPerSelector)
	}
	for i := range list {
		v.action(fmt.Sprintf("%s[%d]", p, i), &list[i], h)
	}
}

func (v *validator) action(p string, a *ActionSelector, h *hookCtx) {
	act, ok := CanonicalAction(a.Action)
	if !ok {
		if a.Action == "" {
			v.addf(p+".action", "required")
		} else {
			v.addf(p+".action", "%q is not an action (known: %s)", a.Action, strings.Join(canonicalActions(), ", "))
		}
		return
	}
	if a.RateLimit != "" {
		if act != "Post" {
			v.addf(p+".rateLimit", "only the Post action is rate limited")
		} else if reason := rateLimitProblem(a.RateLimit); reason != "" {
			v.addf(p+".rateLimit", "%q: %s", a.RateLimit, reason)
		}
	}
	if a.RateLimitScope != "" {
		switch {
		case a.RateLimit == "":
			v.addf(p+".rateLimitScope", "needs rateLimit")
		case a.RateLimitScope != "thread" && a.RateLimitScope != "process" && a.RateLimitScope != "global":
			v.addf(p+".rateLimitScope", "%q, want thread, process or global", a.RateLimitScope)
		}
	}
	declared := func(field string, index uint32, wantType string) {
		for _, arg := range h.args {
			if arg.Index == index {
				if wantType != "" && typeOf(arg.Type).canonical != wantType {
					v.addf(p+"."+field, "argument %d is of type %s, not %s", index, arg.Type, wantType)
				}
				return
			}
		}
		v.addf(p+"."+field, "%d is not a declared arg", index)
	}
	switch act {
	case "Signal":
		if a.ArgSig == 0 || a.ArgSig > 64 {
			v.addf(p+".argSig", "required: a signal number from 1 to 64")
		}
	case "Override":
		if h.typ == htTracepoint {
			v.addf(p+".action", "a tracepoint has no return value to override")
		}
		// A uprobe override may set registers (argRegs) and return 0.
		if a.ArgError == 0 && (h.typ != htUprobe || len(a.ArgRegs) == 0) {
			v.addf(p+".argError", "required: the value the hooked function returns instead, e.g. -1 (-EPERM)")
		}
	case "FollowFD", "CopyFD":
		declared("argFd", a.ArgFd, "")
		declared("argName", a.ArgName, "")
	case "UnfollowFD":
		declared("argFd", a.ArgFd, "")
	case "TrackSock", "UntrackSock":
		declared("argSock", a.ArgSock, "sock")
	case "GetUrl":
		if !validURL(a.ArgURL) {
			v.addf(p+".argUrl", "required: an http or https URL")
		}
	case "DnsLookup":
		if a.ArgFqdn == "" || len(a.ArgFqdn) > 253 || !hostnameRE.MatchString(a.ArgFqdn) {
			v.addf(p+".argFqdn", "required: a DNS name to look up")
		}
	case "NotifyEnforcer":
		if len(v.p.Spec.Enforcers) == 0 {
			v.addf(p+".action", "NotifyEnforcer needs an enforcer in spec.enforcers")
		}
		if a.ArgError == 0 && a.ArgSig == 0 {
			v.addf(p, "NotifyEnforcer needs argError, argSig or both")
		}
		if a.ArgSig > 64 {
			v.addf(p+".argSig", "%d: a signal number from 1 to 64", a.ArgSig)
		}
	}
}

func canonicalActions() []string {
	var names []string
	for _, n := range actionNames {
		names = append(names, n)
	}
	return sortedStrings(names)
}
