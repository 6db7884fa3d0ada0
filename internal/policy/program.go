package policy

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Program is a policy compiled for the kernel: every hook with its argument
// list and its selector table, in the terms the BPF programs evaluate.
// internal/kernel installs Programs; nothing here depends on a kernel.
type Program struct {
	Policy *TracingPolicy
	// Rule is what the policy's annotations say of it as a detection.
	Rule  Rule
	Hooks []Hook
	// PodScoped is set when the policy applies only to some pods
	// (podSelector, containerSelector, or a TracingPolicyNamespaced): the
	// kernel then checks every event's cgroup against the policy's set,
	// which the caller keeps current with the pods of the node.
	PodScoped bool
}

// HookKind is the kind of kernel attachment a hook needs.
type HookKind int

const (
	// HookSyscall is a kprobe with syscall: true.
	HookSyscall HookKind = iota + 1
	// HookKprobe is a kprobe on a kernel function.
	HookKprobe
	// HookTracepoint is a tracepoint.
	HookTracepoint
	// HookUprobe is a uprobe.
	HookUprobe
	// HookLSM is a BPF LSM hook.
	HookLSM
	// HookConnect is a connect syscall hook with a sockaddr argument,
	// run on the cgroup connect hook, where Override can refuse it.
	HookConnect
	// HookRawTracepoint is a tracepoint with raw: true: its arguments
	// are the tracepoint's C arguments (kernel pointers and integers),
	// not its format's fields.
	HookRawTracepoint
	// HookUsdt is a USDT probe of a user-space binary: Binary, and
	// Calls[0] "provider:name".
	HookUsdt
)

// hookKindNames names each HookKind, for errors and `vigil probe`.
var hookKindNames = [...]string{
	HookSyscall:       "syscall",
	HookKprobe:        "kprobe",
	HookTracepoint:    "tracepoint",
	HookUprobe:        "uprobe",
	HookLSM:           "lsm",
	HookConnect:       "connect",
	HookRawTracepoint: "raw tracepoint",
	HookUsdt:          "usdt",
}

func (k HookKind) String() string {
	if k > 0 && int(k) < len(hookKindNames) {
		return hookKindNames[k]
	}
	return "unknown"
}

// Hook is one compiled hook of a policy.
type Hook struct {
	Kind HookKind
	// Path is where the hook is declared, e.g. spec.kprobes[0].
	Path string
	// Calls are the functions hooked; more than one for a "list:" call.
	// Syscall names carry no prefix ("openat"); tracepoints are
	// "subsystem/event"; uprobes name symbols of Binary.
	Calls  []string
	Binary string
	// Offsets are uprobe attach points given as offsets in Binary's file,
	// beside or instead of symbols; RefCtrOffsets, when set, the USDT
	// semaphore of each.
	Offsets       []uint64
	RefCtrOffsets []uint64
	// Addrs are uprobe attach points given as virtual addresses of
	// Binary (Tetragon's addrs), turned into offsets where it attaches.
	Addrs []uint64
	// Return reports the hook at return, with the return value.
	Return         bool
	ReturnUnsigned bool
	ReturnType     string
	Args           []Arg
	Selectors      []Selector
	Message        string
	Tags           []string
	// List is the kprobe's call when it names a list ("list:NAME"): how
	// the hook is named where its calls would be too many to list.
	List string
	// CallPattern is the pattern of a generated_ftrace list: the kernel
	// functions of the running kernel it matches (available_filter_functions)
	// become Calls at install.
	CallPattern string
	// Enforcer marks a hook of spec.enforcers: on the syscalls of Calls,
	// it fails the calls of threads a NotifyEnforcer left a note. It has
	// no selectors and reports nothing.
	Enforcer bool
	// Loader marks the hook spec.loader asks for: its events are loader
	// events (a file's code mapped executable), not the hook's.
	Loader bool
	// ImaFile is how an LSM hook whose selectors ask for imaHash reaches
	// its file: "file" (its first argument) or "bprm" (its first
	// argument's file); empty when none asks.
	ImaFile string
	// Fentry marks a hook of spec.fentries: its kernel functions are
	// attached with fentry, or fexit when it reports at return, never
	// with kprobes; a syscall is attached with fentry where it can be.
	Fentry bool
	// NoKprobeMulti attaches a kprobe hook one kprobe per function even
	// where the kernel has kprobe.multi (option disable-kprobe-multi).
	NoKprobeMulti bool
	// IgnoreNotFound skips a kprobe whose function this kernel lacks
	// instead of refusing the policy (ignore.callNotFound).
	IgnoreNotFound bool
}

// ArgKind is how an argument is read in the kernel.
type ArgKind int

const (
	ArgInt ArgKind = iota + 1
	ArgString
	ArgFD
	ArgCharBuf
	// ArgSockaddr is a struct sockaddr: its family, and for AF_INET and
	// AF_INET6 its address and port, read as a sock's source end.
	ArgSockaddr
	// ArgFile and ArgPath are struct file * and struct path *, read as
	// the path the current task sees.
	ArgFile
	ArgPath
	// ArgSock is a struct sock * on a kernel function, read as its
	// addresses, ports, protocol, family and state (Tetragon's sock).
	ArgSock
	// ArgSocket is a struct socket *, read as its sock; ArgSkb a struct
	// sk_buff *, read as its packet's addresses, ports and protocol. Both
	// are matched and reported as socks.
	ArgSocket
	ArgSkb
	// ArgBinprm is a struct linux_binprm *, read as the path of the file
	// it executes.
	ArgBinprm
	// ArgCred is a struct cred *: ids, securebits, capabilities, user
	// namespace.
	ArgCred
	// ArgCaps is a kernel_cap_t * (cap_effective, cap_inheritable,
	// cap_permitted), read as the 64-bit mask.
	ArgCaps
	// ArgKiocb is a struct kiocb *, read as the path of its file;
	// ArgIovIter a struct iov_iter *, read as the first bytes of the user
	// data it holds (a write's buffer).
	ArgKiocb
	ArgIovIter
	// ArgBpfAttr (union bpf_attr * of a program load), ArgPerfEvent
	// (struct perf_event *) and ArgBpfMap (struct bpf_map *) are read as
	// their type, size and name fields (Tetragon's bpf_attr, perf_event
	// and bpf_map).
	ArgBpfAttr
	ArgPerfEvent
	ArgBpfMap
	// ArgDentry is a struct dentry *, read as its path from the root of
	// its filesystem (no mount to cross: Tetragon's dentry).
	ArgDentry
	// ArgBpfProg is a struct bpf_prog *, read as ArgBpfAttr is (type,
	// instructions, name).
	ArgBpfProg
	// ArgCharIovec is a user struct iovec * (writev's), read as the start
	// of its first buffer.
	ArgCharIovec
	// ArgSockaddrUn is a struct sockaddr_un *, read as its path ("@name"
	// for an abstract one).
	ArgSockaddrUn
	// ArgAuto is a tracepoint field declared without a type (auto): the
	// node reads its type from the tracepoint's format when the policy
	// loads, and sets the argument's Kind then (an integer or a string).
	ArgAuto
)

// reportedOnly reports whether arguments of the kind are reported but not
// matched on.
func (k ArgKind) reportedOnly() bool {
	return k == ArgCred || k == ArgBpfAttr || k == ArgPerfEvent || k == ArgBpfMap || k == ArgBpfProg || k == ArgCharIovec
}

// IsSock reports whether the argument is read, matched and reported as a
// sock.
func (k ArgKind) IsSock() bool { return k == ArgSock || k == ArgSocket || k == ArgSkb }

// Arg is one argument read at the hook.
type Arg struct {
	Kind ArgKind
	// Type is the policy's type name, kept for reporting ("fd", "int").
	Type  string
	Label string
	// Index is the position of the argument in the hooked function.
	Index uint8
	// Size is the integer width in bytes (1, 2, 4, 8); Signed its sign.
	Size   uint8
	Signed bool
	// SizeIndex is char_buf's 1-based index of its size argument.
	SizeIndex  uint8
	ReturnCopy bool
	// Kernel marks a string in kernel memory (kprobe arguments).
	Kernel bool
	// AtReturn marks the hook's return value declared as an argument
	// would be (a returnArg of type sock): read at return, from the raw
	// slot RawReturn.
	AtReturn bool
	// Resolve is the path of members from the argument to the field read
	// ("mm", "owner", "real_parent", "comm"; "fd[0]" indexes an array or
	// what a pointer points to); the kernel package finds it
	// in the kernel's BTF when the policy is installed.
	Resolve []string
	// Source, when set, makes the argument an entry of the hook's data
	// list (Tetragon's data): read from the current task or from the
	// hook's registers instead of from an argument. A pt_regs entry names
	// its register in Resolve.
	Source DataSource
}

// DataSource is where a data entry is read from.
type DataSource uint8

const (
	SourceArgs        DataSource = iota // an argument, not data
	SourceCurrentTask                   // "current_task": the task_struct of the current task
	SourcePtRegs                        // "pt_regs": a register at the hook
)

// String is the source as policies spell it.
func (d DataSource) String() string {
	return [...]string{"", "current_task", "pt_regs"}[d]
}

// RawReturn is the raw argument slot of the return value at return
// (RAW_RET, bpf/hook_types.h): the Index of an AtReturn argument.
const RawReturn = 6

// ReturnArg is the Filter.Arg of a filter on the return value.
const ReturnArg = 0xff

// Filter is one matchArgs or matchReturnArgs entry.
type Filter struct {
	// Arg is the position in Hook.Args, or ReturnArg.
	Arg      uint8
	Op       Op
	String   bool // compare as strings: Strings holds the values
	Unsigned bool
	Ints     []int64 // InRange/NotInRange: lo, hi pairs
	Strings  []string
}

// StringMatch is a matchBinaries entry.
type StringMatch struct {
	Op     Op
	Values []string
	// FollowChildren (In and NotIn) makes the processes that descend from
	// one running a listed binary match as it does, up to 8 generations
	// down.
	FollowChildren bool
}

// PIDMatch is a matchPIDs entry.
type PIDMatch struct {
	Op     Op
	Values []uint32
	// FollowForks makes descendants of the listed processes match too,
	// up to 8 generations down.
	FollowForks bool
	// NamespacePID compares pids as the process's own pid namespace
	// numbers them (a container's pid 1), not as the host does.
	NamespacePID bool
}

// Namespace is a type of Linux namespace, as matchNamespaces names it.
type Namespace int

const (
	NamespaceUts Namespace = iota + 1
	NamespaceIpc
	NamespaceMnt
	// NamespacePid is the pid namespace the process is in;
	// NamespacePidForChildren the one its children will be in.
	NamespacePid
	NamespacePidForChildren
	NamespaceNet
	NamespaceTime
	NamespaceTimeForChildren
	NamespaceCgroup
	NamespaceUser
)

var namespaceTypes = map[string]Namespace{
	"Uts": NamespaceUts, "Ipc": NamespaceIpc, "Mnt": NamespaceMnt,
	"Pid": NamespacePid, "PidForChildren": NamespacePidForChildren, "Net": NamespaceNet,
	"Time": NamespaceTime, "TimeForChildren": NamespaceTimeForChildren,
	"Cgroup": NamespaceCgroup, "User": NamespaceUser,
}

// String is the namespace type as policies spell it ("PidForChildren").
func (n Namespace) String() string {
	for name, t := range namespaceTypes {
		if t == n {
			return name
		}
	}
	return "unknown"
}

// NamespaceMatch is a matchNamespaces entry: the process's namespace of
// one type is (In) or is not (NotIn) one of the listed ones.
type NamespaceMatch struct {
	Namespace Namespace
	Op        Op // OpIn or OpNotIn
	// Values are namespace inode numbers, as /proc/PID/ns/ shows them.
	Values []uint32
	// HostNS lists host_ns too: the namespace of this type of the node's
	// init process, which only the node can resolve (/proc/1/ns/).
	HostNS bool
}

// NamespaceChangeMatch is matchNamespaceChanges: with OpIn, a namespace of
// one of Types changed since the process was forked or exec'd; with
// OpNotIn, one of another type did.
type NamespaceChangeMatch struct {
	Op    Op
	Types []Namespace
}

// CapabilitySet is a set of capabilities of a process's credentials.
type CapabilitySet int

const (
	CapEffective CapabilitySet = iota + 1
	CapInheritable
	CapPermitted
)

// CapabilityMatch is a matchCapabilities entry: In matches a process that
// has at least one of the capabilities in its set, NotIn one that has none
// of them (Tetragon's semantics).
type CapabilityMatch struct {
	Set CapabilitySet
	Op  Op // OpIn or OpNotIn
	// Mask has bit n set for capability n (CAP_SYS_ADMIN: 1 << 21).
	Mask uint64
	// NamespaceCapability (isNamespaceCapability) restricts the match to
	// processes outside the host's user namespace, which only the node can
	// resolve (/proc/1/ns/user).
	NamespaceCapability bool
}

// RateScope is what a rate limit counts per.
type RateScope int

const (
	RateThread RateScope = iota
	RateProcess
	RateGlobal
)

// Selector is one compiled selector: all its parts must match.
type Selector struct {
	Filters    []Filter
	RetFilters []Filter
	Binaries   *StringMatch
	// ParentBinaries is matchParentBinaries: Binaries, on the binary of
	// the process's parent.
	ParentBinaries *StringMatch
	// PIDs must all match (matchPIDs entries are ANDed).
	PIDs []PIDMatch
	// Namespaces must all match (matchNamespaces entries are ANDed).
	Namespaces   []NamespaceMatch
	Capabilities *CapabilityMatch
	// CapabilityChanges is matchCapabilityChanges: the set's capabilities
	// now against those the process's exec left.
	CapabilityChanges *CapabilityMatch
	// NamespaceChanges is matchNamespaceChanges; a change it matches is
	// reported once.
	NamespaceChanges *NamespaceChangeMatch
	// Post emits an event; NoPost clears it.
	Post bool
	// Count adds the match to the kernel's per-cgroup counters of the
	// selector (Vigil's Count action), read as the vigil.policy.counts
	// metric. It leaves posting as Tetragon decides it: with NoPost the
	// selector only counts, at no ring-buffer cost.
	Count bool
	// Deny refuses the operation (Override on a connect hook).
	Deny bool
	// Override is Override on a kprobe or LSM hook; OverrideErr is the
	// negative errno the call then returns.
	Override    bool
	OverrideErr int32
	// KernelStack and UserStack (Post's kernelStackTrace and
	// userStackTrace) add the kernel's and the process's stack at the hook
	// to the event, at most MaxStackFrames frames each.
	KernelStack bool
	UserStack   bool
	// ImaHash (Post's imaHash, LSM hooks) adds the IMA hash of the hook's
	// file to the event.
	ImaHash bool
	// Notify is NotifyEnforcer (NotifyEnforcer) or CleanupEnforcerNotification
	// (NotifyCleanup); NotifyError and NotifySignal are what the policy's
	// enforcer then does to the thread's next enforced call.
	Notify       Notify
	NotifyError  int32
	NotifySignal uint32
	// Signal is sent to the process when the selector matches (Sigkill: 9).
	Signal    uint32
	RateLimit time.Duration
	RateScope RateScope
	// Actions names what the selector does, for the event (vigil.action).
	Actions []string
	// Sock is the selector's TrackSock or UntrackSock, if any.
	Sock *SockAction
	// Set is the selector's Set action on a USDT probe, if any.
	Set *SetAction
	// URLs (GetUrl's argUrl) and Names (DnsLookup's argFqdn) are
	// requested by the collector for each event the selector posts, as
	// Tetragon's agent does: the kernel has no part in them, and an event
	// not posted (NoPost, a rate limit) requests nothing.
	URLs  []string
	Names []string
}

// SockAction is a TrackSock or UntrackSock action: the kernel remembers
// (or forgets) that the socket of a sock argument belongs to the current
// process, and reports that process in later events whose sock argument it
// is, whatever task they run in (softirq context included).
type SockAction struct {
	Untrack bool
	// Arg is the position of the sock argument in Hook.Args.
	Arg uint8
}

// SetAction is Tetragon's Set on a USDT probe: Value is written over the
// probe's argument Arg (its index in the probe, not in the policy's args),
// which must be 4 bytes of the traced process's memory at the site.
type SetAction struct {
	Arg   uint8
	Value uint32
}

// PodScoped reports whether p applies only to some pods of the node: it
// has a podSelector or containerSelector, or is a TracingPolicyNamespaced.
// Such a policy needs Kubernetes metadata to match anything.
func PodScoped(p *TracingPolicy) bool {
	return p.Kind == KindTracingPolicyNamespaced || p.Spec.PodSelector != nil || p.Spec.ContainerSelector != nil
}

// Target is how events name where a hook is (vigil.hook): its functions,
// tracepoints or syscalls (as Tetragon names them, "sys_" and the name),
// "binary:symbols,offsets" for a uprobe and "binary:provider:name" for a
// USDT probe.
func (h *Hook) Target() string {
	if h.List != "" {
		return h.List
	}
	switch h.Kind {
	case HookSyscall, HookConnect:
		calls := make([]string, len(h.Calls))
		for i, c := range h.Calls {
			calls[i] = "sys_" + c
		}
		return strings.Join(calls, ",")
	case HookUprobe:
		targets := slices.Clone(h.Calls)
		for _, off := range append(slices.Clone(h.Offsets), h.Addrs...) {
			targets = append(targets, "0x"+strconv.FormatUint(off, 16))
		}
		return h.Binary + ":" + strings.Join(targets, ",")
	case HookUsdt:
		return h.Binary + ":" + h.Calls[0]
	}
	return strings.Join(h.Calls, ",")
}

// Notify is a selector's note to its policy's enforcer (enum notify_op,
// bpf/hook_types.h).
type Notify uint8

const (
	NotifyEnforcer Notify = 1 // NotifyEnforcer: leave a note
	NotifyCleanup  Notify = 2 // CleanupEnforcerNotification: take it back
)
