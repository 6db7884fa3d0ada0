package kernel

// The hook table entry (struct hook_conf) of a compiled hook: arguments,
// selectors, filters, and the sets filters look values up in.
import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/syscalls"
	"golang.org/x/sys/unix"
)

// Values of the kernel's enums (bpf/hook_types.h); those of enum arg_type
// are generated (argtypes_gen.go).
const (
	ffUnsigned   = 1 << 0
	ffString     = 1 << 1
	ffFieldShift = 2 // enum sock_field
	ffBloom      = 1 << 5

	argRet = 0xff

	saTrack   = 1 // enum sock_action_op
	saUntrack = 2
)

var kernelArgKinds = map[policy.ArgKind]uint8{
	policy.ArgInt: argInt, policy.ArgString: argString,
	policy.ArgFD: argFd, policy.ArgCharBuf: argCharBuf,
	policy.ArgSockaddr: argSockaddr,
	policy.ArgFile:     argFile, policy.ArgPath: argPath,
	policy.ArgSock: argSock, policy.ArgSocket: argSocket, policy.ArgSkb: argSkb,
	policy.ArgBinprm: argBinprm, policy.ArgCred: argCred, policy.ArgCaps: argCaps,
	policy.ArgKiocb: argKiocb, policy.ArgIovIter: argIovIter,
	policy.ArgBpfAttr: argBpfAttr, policy.ArgPerfEvent: argPerfEvent, policy.ArgBpfMap: argBpfMap,
	policy.ArgDentry: argDentry, policy.ArgBpfProg: argBpfProg, policy.ArgCharIovec: argCharIovec,
	policy.ArgSockaddrUn: argSockaddrUn,
}

// Fields of a sock argument (enum sock_field, bpf/hook_types.h).
const (
	sfDaddr = 1 + iota
	sfDport
	sfSaddr
	sfSport
	sfProtocol
	sfFamily
	sfState
)

// sockFilters are the sock operators: the field each compares, and whether
// it is a Not form (the field in none of the values).
var sockFilters = map[policy.Op]struct {
	field uint8
	not   bool
}{
	policy.OpSockSAddr: {sfSaddr, false}, policy.OpSockNotSAddr: {sfSaddr, true},
	policy.OpSockDAddr: {sfDaddr, false}, policy.OpSockNotDAddr: {sfDaddr, true},
	policy.OpSockSPort: {sfSport, false}, policy.OpSockNotSPort: {sfSport, true},
	policy.OpSockDPort: {sfDport, false}, policy.OpSockNotDPort: {sfDport, true},
	policy.OpSockProtocol: {sfProtocol, false},
	policy.OpSockFamily:   {sfFamily, false},
	policy.OpSockState:    {sfState, false},
}

// Namespace types (enum ns_type) and capability sets (enum cap_set) of
// bpf/hook_types.h, and each namespace's file under /proc/PID/ns/.
var (
	kernelNamespaces = map[policy.Namespace]struct {
		typ  uint8
		proc string
	}{
		policy.NamespaceUts:             {1, "uts"},
		policy.NamespaceIpc:             {2, "ipc"},
		policy.NamespaceMnt:             {3, "mnt"},
		policy.NamespacePid:             {4, "pid"},
		policy.NamespacePidForChildren:  {5, "pid_for_children"},
		policy.NamespaceNet:             {6, "net"},
		policy.NamespaceTime:            {7, "time"},
		policy.NamespaceTimeForChildren: {8, "time_for_children"},
		policy.NamespaceCgroup:          {9, "cgroup"},
		policy.NamespaceUser:            {10, "user"},
	}
	kernelCapSets = map[policy.CapabilitySet]uint8{
		policy.CapEffective: 1, policy.CapInheritable: 2, policy.CapPermitted: 3,
	}
)

// hostNamespaces reads the host's namespaces that prog's selectors name
// (host_ns, and the user namespace of isNamespaceCapability): those of the
// node's init process, as Tetragon does, in the proc filesystem SetProcFS
// names, else those of pid 2, kthreadd, whose kernel threads run in the
// initial namespaces too (where an init is confined, its namespace files
// can be closed to everyone); the user namespace is Vigil's own. It
// refuses, naming the field, a namespace type this kernel lacks.
func (t *hookTable) hostNamespaces(prog *policy.Program) (map[policy.Namespace]uint32, error) {
	host := map[policy.Namespace]uint32{}
	resolve := func(ns policy.Namespace) error {
		if _, ok := host[ns]; ok {
			return nil
		}
		p := filepath.Join(t.procfs, "1", "ns", kernelNamespaces[ns].proc)
		if ns == policy.NamespaceUser {
			// Loading BPF takes capabilities in the initial user
			// namespace: Vigil's own is the host's, and reading it
			// needs no access to pid 1.
			p = "/proc/self/ns/user"
		}
		var st unix.Stat_t
		err := unix.Stat(p, &st)
		if err != nil && ns != policy.NamespaceUser {
			err = unix.Stat(filepath.Join(t.procfs, "2", "ns", kernelNamespaces[ns].proc), &st)
		}
		if err != nil {
			return fmt.Errorf("reading the host's %s namespace: %w", ns, err)
		}
		host[ns] = uint32(st.Ino)
		return nil
	}
	for _, h := range prog.Hooks {
		for i, sel := range h.Selectors {
			sp := fmt.Sprintf("%s.selectors[%d]", h.Path, i)
			for j, m := range sel.Namespaces {
				mp := fmt.Sprintf("%s.matchNamespaces[%d]", sp, j)
				if _, ok := kernelNamespaces[m.Namespace]; !ok {
					return nil, fmt.Errorf("%s.namespace: %v is not a namespace type of this version of Vigil", mp, m.Namespace)
				}
				if (m.Namespace == policy.NamespaceTime || m.Namespace == policy.NamespaceTimeForChildren) && !haveTimeNamespaces() {
					return nil, fmt.Errorf("%s.namespace: %v: this kernel has no time namespaces (Linux 5.6)", mp, m.Namespace)
				}
				if m.HostNS {
					if err := resolve(m.Namespace); err != nil {
						return nil, fmt.Errorf("%s.values: host_ns: %w", mp, err)
					}
				}
			}
			if c := sel.Capabilities; c != nil && c.NamespaceCapability {
				if err := resolve(policy.NamespaceUser); err != nil {
					return nil, fmt.Errorf("%s.matchCapabilities[0].isNamespaceCapability: %w", sp, err)
				}
			}
			if c := sel.CapabilityChanges; c != nil && c.NamespaceCapability {
				if err := resolve(policy.NamespaceUser); err != nil {
					return nil, fmt.Errorf("%s.matchCapabilityChanges[0].isNamespaceCapability: %w", sp, err)
				}
			}
		}
	}
	return host, nil
}

// haveTimeNamespaces reports whether the kernel's struct nsproxy has time
// namespaces (Linux 5.6); without BTF, the programs do not load anyway.
func haveTimeNamespaces() bool {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return false
	}
	var nsp *btf.Struct
	if err := spec.TypeByName("nsproxy", &nsp); err != nil {
		return false
	}
	for _, m := range nsp.Members {
		if m.Name == "time_ns" {
			return true
		}
	}
	return false
}

// conf builds the kernel's hook_conf for one hook and writes the string
// sets its selectors use. host holds the host's namespaces its selectors
// need (hostNamespaces).
func (t *hookTable) conf(maps *sensorMaps, ih *InstalledHook, ph *PolicyHooks, host map[policy.Namespace]uint32) (_ *sensorHookConf, err error) {
	h := ih.Hook
	c := &sensorHookConf{Id: ih.ID, Nargs: uint8(len(h.Args)), Nsel: uint8(len(h.Selectors))}
	defer func() {
		if h.Kind == policy.HookTracepoint && err == nil {
			err = tracepointArgs(c, h)
		}
	}()
	if h.Return {
		c.Ret = 1
	}
	if h.ReturnUnsigned {
		c.RetUnsigned = 1
	}
	if h.Kind == policy.HookSyscall && ih.Mechanism != SyscallTracepoints {
		c.SyscallWrapper = 1
	}
	for i, a := range h.Args {
		ca := &c.Args[i]
		ca.Type = kernelArgKinds[a.Kind]
		ca.Index = a.Index
		ca.SizeIndex = a.SizeIndex
		if a.Signed {
			ca.Flags |= argfSigned
		}
		if a.Kind == policy.ArgInt {
			ca.Flags |= uint8(bits.TrailingZeros8(a.Size)) << 1
		}
		if a.Kind == policy.ArgSockaddr || a.Kind.IsSock() || a.Kind == policy.ArgCaps {
			ca.Flags |= 3 << 1 // a pointer; a kernel_cap_t mask
		}
		if a.Kind == policy.ArgSockaddr && h.Kind == policy.HookConnect {
			// The cgroup connect hooks rebuild the sockaddr in a
			// map (connect_addr, bpf/probes.h).
			ca.Flags |= argfKernel
		}
		if a.ReturnCopy {
			ca.Flags |= argfReturnCopy
		}
		if a.AtReturn {
			ca.Flags |= argfAtReturn
		}
		if a.Kernel {
			ca.Flags |= argfKernel
		}
		switch a.Source {
		case policy.SourceCurrentTask:
			ca.Source = srcCurrentTask
		case policy.SourcePtRegs:
			// The register's slot in struct pt_regs, in place of an
			// argument index; nothing to resolve.
			ca.Source = srcPtRegs
			off, err := ptRegsOffset(a.Resolve[0])
			if err != nil {
				return nil, fmt.Errorf("%s.data: resolve: %w", h.Path, err)
			}
			ca.Index = uint8(off / 8)
			continue
		}
		if len(a.Resolve) > 0 {
			r, err := resolveHookArg(h, a)
			if err != nil {
				return nil, fmt.Errorf("%s.args[%d].resolve: %q: %w", h.Path, i, strings.Join(a.Resolve, "."), err)
			}
			ca.Nres = uint8(copy(ca.Res[:], r.ops))
			ca.ResLoad = r.load
		}
	}
	for i, sel := range h.Selectors {
		cs := &c.Sel[i]
		if sel.Post {
			cs.Post = 1
		}
		if sel.Count {
			cs.Count = 1
		}
		if sel.Deny {
			cs.Deny = 1
		}
		if sel.Override {
			cs.Override = sel.OverrideErr
		}
		if ph.scope != nil {
			cs.CgroupSet = ph.scope.id
		}
		if sel.KernelStack {
			cs.Stack |= stackKernel
		}
		if sel.UserStack {
			cs.Stack |= stackUser
		}
		if sel.ImaHash {
			cs.Stack |= stackIma
		}
		cs.Signal = sel.Signal
		if sel.Set != nil {
			cs.SetArg, cs.SetValue = sel.Set.Arg+1, sel.Set.Value
		}
		cs.Notify = uint8(sel.Notify)
		cs.NotifyError = sel.NotifyError
		cs.NotifySignal = sel.NotifySignal
		cs.RateNs = uint64(sel.RateLimit)
		cs.RateScope = uint8(sel.RateScope)
		cs.Npidf = uint8(len(sel.PIDs))
		for j, m := range sel.PIDs {
			pf := &cs.Pidf[j]
			pf.Op = uint8(m.Op)
			pf.N = uint8(len(m.Values))
			copy(pf.Pids[:], m.Values)
			if m.FollowForks {
				pf.Follow = 1
			}
			if m.NamespacePID {
				pf.Ns = 1
			}
		}
		if c := sel.Capabilities; c != nil {
			cs.Caps.Op = uint8(c.Op)
			cs.Caps.Set = kernelCapSets[c.Set]
			cs.Caps.Mask = c.Mask
			if c.NamespaceCapability {
				cs.Caps.Userns = host[policy.NamespaceUser]
			}
		}
		if c := sel.CapabilityChanges; c != nil {
			cs.Capch.Op = uint8(c.Op)
			cs.Capch.Set = kernelCapSets[c.Set]
			cs.Capch.Mask = c.Mask
			if c.NamespaceCapability {
				cs.Capch.Userns = host[policy.NamespaceUser]
			}
		}
		if c := sel.NamespaceChanges; c != nil {
			cs.NschOp = uint8(c.Op)
			for _, t := range c.Types {
				cs.NschMask |= 1 << kernelNamespaces[t].typ
			}
		}
		if len(sel.Namespaces) > len(cs.Ns) {
			return nil, fmt.Errorf("%d matchNamespaces, at most %d", len(sel.Namespaces), len(cs.Ns))
		}
		cs.Nns = uint8(len(sel.Namespaces))
		for j, m := range sel.Namespaces {
			kn := &cs.Ns[j]
			kn.Ns = kernelNamespaces[m.Namespace].typ
			kn.Op = uint8(m.Op)
			vals := m.Values
			if m.HostNS {
				vals = append(slices.Clone(vals), host[m.Namespace])
			}
			if len(vals) > len(kn.Vals) {
				return nil, fmt.Errorf("matchNamespaces[%d]: %d values, at most %d", j, len(vals), len(kn.Vals))
			}
			kn.Nvals = uint8(copy(kn.Vals[:], vals))
		}
		for _, b := range []struct {
			m          *policy.StringMatch
			op, follow *uint8
			set        *uint32
		}{
			{sel.Binaries, &cs.BinOp, &cs.BinFollow, &cs.BinSet},
			{sel.ParentBinaries, &cs.PbinOp, &cs.PbinFollow, &cs.PbinSet},
		} {
			if b.m == nil {
				continue
			}
			set, err := t.writeSet(maps, ph, b.m.Op.Set(), b.m.Values)
			if err != nil {
				return nil, err
			}
			*b.op, *b.set = uint8(b.m.Op), set
			if b.m.FollowChildren {
				*b.follow = 1
			}
		}
		cs.Nfilters = uint8(len(sel.Filters))
		for j, f := range sel.Filters {
			if err := t.filter(maps, ph, &cs.F[j].Arg, &cs.F[j].Op, &cs.F[j].Nvals, &cs.F[j].Flags, &cs.F[j].Set, cs.F[j].Vals[:], f); err != nil {
				return nil, err
			}
		}
		cs.Nret = uint8(len(sel.RetFilters))
		for j, f := range sel.RetFilters {
			if err := t.filter(maps, ph, &cs.R[j].Arg, &cs.R[j].Op, &cs.R[j].Nvals, &cs.R[j].Flags, &cs.R[j].Set, cs.R[j].Vals[:], f); err != nil {
				return nil, err
			}
		}
	}
	if a, bloom, ok := prefilter(h); ok {
		c.PreArg, c.PreBloom = a+1, bloom
	}
	return c, nil
}

func (t *hookTable) filter(maps *sensorMaps, ph *PolicyHooks, arg, op, nvals, flags *uint8, set *uint32, vals []int64, f policy.Filter) error {
	*arg = f.Arg
	if f.Arg == policy.ReturnArg {
		*arg = argRet
	}
	*op = uint8(f.Op)
	if f.Unsigned {
		*flags |= ffUnsigned
	}
	if sf, ok := sockFilters[f.Op]; ok {
		*flags |= ffUnsigned | sf.field<<ffFieldShift
		return t.sockFilter(maps, ph, op, nvals, set, vals, f, sf.not)
	}
	if f.Op == policy.OpInMap || f.Op == policy.OpNotInMap {
		ints := f.Ints
		for _, name := range f.Strings {
			nr, ok := syscalls.Number(name)
			if !ok {
				return fmt.Errorf("InMap: no syscall %q on this architecture", name)
			}
			ints = append(ints, int64(nr))
		}
		id, err := t.writeIntSet(maps, ph, ints)
		*set = id
		return err
	}
	if f.String {
		*flags |= ffString
		id, err := t.writeSet(maps, ph, f.Op.Set(), f.Strings)
		if err != nil {
			return err
		}
		*set = id
		if f.Op.Set() == policy.SetEqual {
			*flags |= ffBloom
			addBloom(vals, f.Strings)
		}
		return nil
	}
	*nvals = uint8(copy(vals, f.Ints))
	return nil
}

// sockFilter writes a filter on a field of a sock argument: addresses as a
// CIDR set; other fields as equalities when the policy listed single
// values, else as ranges, two slots each.
func (t *hookTable) sockFilter(maps *sensorMaps, ph *PolicyHooks, op, nvals *uint8, set *uint32, vals []int64, f policy.Filter, not bool) error {
	pick := func(yes, no policy.Op) uint8 {
		if not {
			return uint8(no)
		}
		return uint8(yes)
	}
	if policy.SockAddrOp(f.Op) {
		*op = pick(policy.OpAddr, policy.OpNotAddr)
		id, err := t.writeSet(maps, ph, policy.SetAddr, f.Strings)
		*set = id
		return err
	}
	singles := true
	for i := 0; i+1 < len(f.Ints); i += 2 {
		singles = singles && f.Ints[i] == f.Ints[i+1]
	}
	if singles && len(f.Ints)/2 <= len(vals) {
		*op = pick(policy.OpEqual, policy.OpNotEqual)
		for i := 0; i+1 < len(f.Ints); i += 2 {
			vals[*nvals] = f.Ints[i]
			*nvals++
		}
		return nil
	}
	if len(f.Ints) > len(vals) {
		return fmt.Errorf("%d ranges, at most %d", len(f.Ints)/2, len(vals)/2)
	}
	*op = pick(policy.OpInRange, policy.OpNotInRange)
	*nvals = uint8(copy(vals, f.Ints))
	return nil
}

// writeSet stores string values under a new set id in the map the operator
// looks them up in: exact values in a str_eq map, prefixes in str_prefix,
// suffixes, reversed, in str_postfix, and CIDRs in addr_lpm (IPv4) and
// addr6_lpm (IPv6) under the one id.
func (t *hookTable) writeSet(maps *sensorMaps, ph *PolicyHooks, kind policy.StringSet, values []string) (uint32, error) {
	t.nextSet++
	set := t.nextSet
	for i, v := range values {
		var m *ebpf.Map
		var key, value any = nil, uint8(1)
		switch kind {
		case policy.SetEqual:
			m, key = strEqKey(maps, set, v)
		case policy.SetPrefix:
			k := sensorStrLpmKey{Prefixlen: uint32(32 + 8*len(v)), Set: set}
			putString(k.S[:], v)
			m, key = maps.StrPrefix, k
		case policy.SetPostfix:
			k := sensorStrLpmKey{Prefixlen: uint32(32 + 8*len(v)), Set: set}
			putString(k.S[:], reverse(v))
			m, key = maps.StrPostfix, k
		case policy.SetSubstring:
			if compatObject() {
				return 0, fmt.Errorf("substring operators search the string under bpf_loop (Linux 5.17): %w", ErrMissingFeature)
			}
			k := sensorSubstrKey{Set: set, Idx: uint32(i)}
			val := sensorSubstrValue{Len: uint32(len(v))}
			putString(val.S[:], v)
			m, key, value = maps.StrSub, k, val
		case policy.SetAddr:
			p, err := policy.ParseCIDR(v)
			if err != nil {
				return 0, err
			}
			if p.Addr().Is4() {
				a := p.Addr().As4()
				m, key = maps.AddrLpm, sensorAddrLpmKey{Prefixlen: uint32(32 + p.Bits()), Set: set,
					Addr: binary.NativeEndian.Uint32(a[:])}
				break
			}
			m, key = maps.Addr6Lpm, sensorAddr6LpmKey{Prefixlen: uint32(32 + p.Bits()), Set: set,
				Addr: p.Addr().As16()}
		default:
			return 0, fmt.Errorf("string set %d: no kernel map", kind)
		}
		if err := m.Put(key, value); err != nil {
			return 0, fmt.Errorf("storing %q in %s: %w", v, m, err)
		}
		ph.sets = append(ph.sets, setKey{m, key})
	}
	return set, nil
}

func addBloom(bloom []int64, values []string) {
	for _, v := range values {
		bit := stringBloomBit(v)
		bloom[bit/64] |= int64(uint64(1) << (bit % 64))
	}
}

// prefilter finds an argument every selector of h wants in an exact
// string set, and the union of those sets' Bloom filters: what
// hook_conf.pre_arg and pre_bloom hold. Of several, the one whose union
// rules out the most. ok is false when there is none, or no selector.
// Only arguments qualify, not data entries.
func prefilter(h *policy.Hook) (arg uint8, bloom [8]int64, ok bool) {
	best := -1
	for a := range h.Args {
		if h.Args[a].Source != policy.SourceArgs {
			// The prefilter reads a raw argument; a data entry is
			// read from elsewhere.
			continue
		}
		var b [8]int64
		every := len(h.Selectors) > 0
		for _, sel := range h.Selectors {
			found := false
			for _, f := range sel.Filters {
				if f.Arg == uint8(a) && f.String && (f.Op == policy.OpEqual || f.Op == policy.OpIn) {
					addBloom(b[:], f.Strings)
					found = true
				}
			}
			every = every && found
		}
		if !every {
			continue
		}
		n := 0
		for _, w := range b {
			n += bits.OnesCount64(uint64(w))
		}
		if best < 0 || n < best {
			best, arg, bloom, ok = n, uint8(a), b, true
		}
	}
	return arg, bloom, ok
}

// stringBloomBit is the bit a string sets in an exact-match filter's Bloom
// filter; bpf/hook_match.h (string_bloom) computes it the same way from the
// kernel's copy, which holds at most policy.MaxStringLen bytes.
func stringBloomBit(v string) uint {
	var b [8]byte
	copy(b[:], v[max(len(v)-8, 0):])
	h := (binary.LittleEndian.Uint64(b[:]) ^ uint64(len(v))*0x9E3779B97F4A7C15) * 0xff51afd7ed558ccd
	return uint(h >> 55)
}

// strEqKey is the key of an exact value and the map it goes in: the
// smallest of bpf/hook_maps.h's four whose string part holds it. The string is
// zero padded, and its length is part of the key.
func strEqKey(maps *sensorMaps, set uint32, v string) (*ebpf.Map, []byte) {
	m, n := maps.StrEq, 256
	switch {
	case len(v) <= 32:
		m, n = maps.StrEq32, 32
	case len(v) <= 64:
		m, n = maps.StrEq64, 64
	case len(v) <= 128:
		m, n = maps.StrEq128, 128
	}
	key := make([]byte, 8+n)
	binary.NativeEndian.PutUint32(key, set)
	binary.NativeEndian.PutUint32(key[4:], uint32(len(v)))
	copy(key[8:], v)
	return m, key
}

// writeSockActions writes the TrackSock and UntrackSock of a hook's
// selectors to sock_actions, and clears what the slot's previous hook left.
// A slot that has none and had none is not written: a map update from user
// space holds off the tracing programs of its CPU (bpf_prog_active), and a
// policy replaced often should not add to that.
func (t *hookTable) writeSockActions(m *ebpf.Map, ih *InstalledHook) error {
	has := false
	for _, sel := range ih.Hook.Selectors {
		has = has || sel.Sock != nil
	}
	if !has && !t.sockSlots[ih.slot] {
		return nil
	}
	if t.sockSlots == nil {
		t.sockSlots = map[uint32]bool{}
	}
	t.sockSlots[ih.slot] = has
	for i := range limitMaxSelectors {
		var a sensorSockAction
		if i < len(ih.Hook.Selectors) {
			if sa := ih.Hook.Selectors[i].Sock; sa != nil {
				a.Op, a.Arg = saTrack, sa.Arg
				if sa.Untrack {
					a.Op = saUntrack
				}
			}
		}
		if err := m.Put(ih.slot*limitMaxSelectors+uint32(i), a); err != nil {
			return fmt.Errorf("writing sock_actions: %w", err)
		}
	}
	return nil
}

// writeIntSet stores the integers of an InMap or NotInMap filter under a
// new set id in int_set.
func (t *hookTable) writeIntSet(maps *sensorMaps, ph *PolicyHooks, values []int64) (uint32, error) {
	t.nextSet++
	set := t.nextSet
	m := maps.IntSet
	one := uint8(1)
	for _, v := range values {
		k := sensorIntSetKey{Set: set, Val: v}
		if err := m.Put(k, one); err != nil {
			return 0, fmt.Errorf("storing %d in %s (every policy's InMap values share its %d entries): %w", v, m, m.MaxEntries(), err)
		}
		ph.sets = append(ph.sets, setKey{m, k})
	}
	return set, nil
}

func putString(dst []int8, s string) {
	for i := 0; i < len(s) && i < len(dst); i++ {
		dst[i] = int8(s[i])
	}
}

func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}
