package policy

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// The vocabularies of Tetragon's policy language, as Tetragon accepts them:
// names, their aliases, and what each applies to. Validate checks against
// these; Supported narrows them to what Vigil's engine implements.

// argClass groups argument types by the operators that apply to them.
type argClass int

const (
	classNone   argClass = iota // read and reported, not matched on
	classInt                    // integers: Equal, GT, Mask, InMap, InRange...
	classString                 // strings, paths, buffers: Equal, Prefix, Postfix
	classSock                   // sockets and addresses: SAddr, DPort, Protocol...
	classCaps                   // capability sets: Equal, Mask, CapabilitiesGained
	classAuto                   // type left to BTF or the tracepoint format
)

// argTypeInfo describes one argument type.
type argTypeInfo struct {
	canonical string
	class     argClass
	bits      int  // integers: width
	signed    bool // integers: sign
}

// argTypes lists every argument type Tetragon reads, keyed by every
// spelling it accepts (its CRD enum plus the aliases of its type table).
var argTypes = map[string]argTypeInfo{
	"auto": {"auto", classAuto, 0, false},

	"int":   {"int", classInt, 32, true},
	"sint8": {"int8", classInt, 8, true}, "int8": {"int8", classInt, 8, true},
	"uint8":  {"uint8", classInt, 8, false},
	"sint16": {"int16", classInt, 16, true}, "int16": {"int16", classInt, 16, true},
	"uint16": {"uint16", classInt, 16, false},
	"sint32": {"int32", classInt, 32, true}, "int32": {"int32", classInt, 32, true},
	"uint32": {"uint32", classInt, 32, false},
	"long":   {"int64", classInt, 64, true}, "sint64": {"int64", classInt, 64, true}, "int64": {"int64", classInt, 64, true},
	"ulong": {"uint64", classInt, 64, false}, "unsigned long": {"uint64", classInt, 64, false}, "uint64": {"uint64", classInt, 64, false},
	"size_t":    {"size_t", classInt, 64, false},
	"syscall64": {"syscall64", classInt, 64, true},

	"string":       {"string", classString, 0, false},
	"char_buf":     {"char_buf", classString, 0, false},
	"fd":           {"fd", classString, 0, false},
	"file":         {"file", classString, 0, false},
	"path":         {"path", classString, 0, false},
	"filename":     {"filename", classString, 0, false},
	"dentry":       {"dentry", classString, 0, false},
	"linux_binprm": {"linux_binprm", classString, 0, false},
	"data_loc":     {"data_loc", classString, 0, false},
	"net_device":   {"net_device", classString, 0, false},
	"kiocb":        {"kiocb", classString, 0, false},

	"sock":     {"sock", classSock, 0, false},
	"skb":      {"skb", classSock, 0, false},
	"sockaddr": {"sockaddr", classSock, 0, false},
	"socket":   {"socket", classSock, 0, false},

	"sockaddr_un": {"sockaddr_un", classString, 0, false},

	"kernel_cap_t":    {"kernel_cap_t", classCaps, 64, false},
	"cap_inheritable": {"cap_inheritable", classCaps, 64, false},
	"cap_permitted":   {"cap_permitted", classCaps, 64, false},
	"cap_effective":   {"cap_effective", classCaps, 64, false},

	"char_iovec":     {"char_iovec", classNone, 0, false},
	"iov_iter":       {"iov_iter", classNone, 0, false},
	"cred":           {"cred", classNone, 0, false},
	"capability":     {"capability", classNone, 0, false},
	"user_namespace": {"user_namespace", classNone, 0, false},
	"bpf_attr":       {"bpf_attr", classNone, 0, false},
	"bpf_map":        {"bpf_map", classNone, 0, false},
	"bpf_prog":       {"bpf_prog", classNone, 0, false},
	"bpf_cmd":        {"bpf_cmd", classNone, 0, false},
	"perf_event":     {"perf_event", classNone, 0, false},
	"load_info":      {"load_info", classNone, 0, false},
	"module":         {"module", classNone, 0, false},
	"const_buf":      {"const_buf", classNone, 0, false},
	"int32_arr":      {"int32_arr", classNone, 0, false},
	"nop":            {"nop", classNone, 0, false},
}

// lookupArgType resolves a type name; "" is auto, Tetragon's CRD default.
func lookupArgType(t string) (argTypeInfo, bool) {
	if t == "" {
		return argTypes["auto"], true
	}
	info, ok := argTypes[t]
	return info, ok
}

// CanonicalArgType returns the name Tetragon reports for an argument type
// given in any spelling it accepts: "sint32" and "int32" are "int32",
// "long" is "int64", "ulong" is "uint64"; "" is "auto". ok is false for an
// unknown type.
func CanonicalArgType(t string) (canonical string, ok bool) {
	info, ok := lookupArgType(t)
	return info.canonical, ok
}

// operatorInfo is what an argument operator (a row of operators) applies
// to and takes. sockaddr takes only the source side (its ports and address
// are the ones being connected or bound).
type operatorInfo struct {
	classes     []argClass
	sockaddr    bool     // also applies to sockaddr
	onlyTypes   []string // applies to these types only (instead of classes)
	values      valueKind
	description string // what it applies to, for errors
}

type valueKind int

const (
	valuesTyped     valueKind = iota // parsed for the argument's type
	valuesMap                        // integers, ranges or list:NAME
	valuesRange                      // "min:max" pairs
	valuesAddr                       // IP addresses and CIDRs
	valuesPort                       // ports and port ranges
	valuesProtocol                   // IPPROTO_* names, numbers, ranges
	valuesFamily                     // AF_* names, numbers, ranges
	valuesState                      // TCP_* names, numbers, ranges
	valuesSubstring                  // short strings
	valuesFileType                   // file type names
	valuesNone                       // no values
)

// actionNames maps the lower-case action name (Tetragon compares actions
// case-insensitively) to its canonical spelling.
var actionNames = map[string]string{
	"post": "Post", "nopost": "NoPost", "sigkill": "Sigkill", "signal": "Signal",
	"override": "Override", "followfd": "FollowFD", "unfollowfd": "UnfollowFD", "copyfd": "CopyFD",
	"geturl": "GetUrl", "dnslookup": "DnsLookup", "tracksock": "TrackSock", "untracksock": "UntrackSock",
	"notifyenforcer": "NotifyEnforcer", "cleanupenforcernotification": "CleanupEnforcerNotification",
	"set": "Set",
	// Vigil's: count the match in the kernel, per cgroup (Selector.Count).
	"count": "Count",
}

// CanonicalAction returns the canonical spelling of an action (Tetragon
// reads "sigkill" as "Sigkill"). ok is false for an unknown action.
func CanonicalAction(action string) (canonical string, ok bool) {
	c, ok := actionNames[strings.ToLower(action)]
	return c, ok
}

// namespaceNames maps lower-case namespace names to their spelling.
var namespaceNames = map[string]string{
	"uts": "Uts", "ipc": "Ipc", "mnt": "Mnt", "pid": "Pid", "pidforchildren": "PidForChildren",
	"net": "Net", "time": "Time", "timeforchildren": "TimeForChildren", "cgroup": "Cgroup", "user": "User",
}

// capabilitySets maps lower-case capability set names to their spelling.
var capabilitySets = map[string]string{
	"effective": "Effective", "inheritable": "Inheritable", "permitted": "Permitted",
}

// capabilityNumbers are Linux's capabilities (linux/capability.h).
var capabilityNumbers = map[string]int{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
	"CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
	"CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
	"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
	"CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
	"CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
	"CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
	"CAP_CHECKPOINT_RESTORE": 40,
}

// CapabilityNumber returns the number of a capability named as Tetragon
// accepts it (case and surrounding blanks do not matter: " cap_bpf" is 39).
func CapabilityNumber(name string) (int, bool) {
	n, ok := capabilityNumbers[strings.ToUpper(strings.TrimSpace(name))]
	return n, ok
}

var capabilityNames = func() map[int]string {
	m := make(map[int]string, len(capabilityNumbers))
	for name, n := range capabilityNumbers {
		m[n] = name
	}
	return m
}()

// CapabilityName is the name of capability n ("CAP_SYS_ADMIN" for 21), or
// "CAP_<n>" for a number Linux has not named here.
func CapabilityName(n int) string {
	if name, ok := capabilityNames[n]; ok {
		return name
	}
	return "CAP_" + strconv.Itoa(n)
}

// CapabilityNames names the capabilities of a mask, lowest first.
func CapabilityNames(mask uint64) []string {
	var names []string
	for n := 0; n < 64; n++ {
		if mask&(1<<n) != 0 {
			names = append(names, CapabilityName(n))
		}
	}
	return names
}

// capsMask reads a capability set value: a number (a mask), or capability
// names separated by commas.
func capsMask(val string) (uint64, bool) {
	if m, err := strconv.ParseUint(strings.TrimSpace(val), 0, 64); err == nil {
		return m, true
	}
	var m uint64
	for _, name := range strings.Split(val, ",") {
		n, ok := CapabilityNumber(name)
		if !ok {
			return 0, false
		}
		m |= 1 << n
	}
	return m, true
}

// protocolNumbers are the IPPROTO_* names the Protocol operator accepts.
var protocolNumbers = map[string]uint64{
	"IPPROTO_IP": 0, "IPPROTO_ICMP": 1, "IPPROTO_IGMP": 2, "IPPROTO_IPIP": 4, "IPPROTO_TCP": 6,
	"IPPROTO_EGP": 8, "IPPROTO_PUP": 12, "IPPROTO_UDP": 17, "IPPROTO_IDP": 22, "IPPROTO_TP": 29,
	"IPPROTO_DCCP": 33, "IPPROTO_IPV6": 41, "IPPROTO_RSVP": 46, "IPPROTO_GRE": 47,
	"IPPROTO_ESP": 50, "IPPROTO_AH": 51, "IPPROTO_ICMPV6": 58, "IPPROTO_MTP": 92,
	"IPPROTO_BEETPH": 94, "IPPROTO_ENCAP": 98, "IPPROTO_PIM": 103, "IPPROTO_COMP": 108,
	"IPPROTO_L2TP": 115, "IPPROTO_SCTP": 132, "IPPROTO_UDPLITE": 136, "IPPROTO_MPLS": 137,
	"IPPROTO_ETHERNET": 143, "IPPROTO_RAW": 255, "IPPROTO_MPTCP": 262,
}

// familyNumbers are the AF_* names the Family operator accepts.
var familyNumbers = map[string]uint64{
	"AF_UNSPEC": 0, "AF_UNIX": 1, "AF_LOCAL": 1, "AF_INET": 2, "AF_AX25": 3, "AF_IPX": 4,
	"AF_APPLETALK": 5, "AF_NETROM": 6, "AF_BRIDGE": 7, "AF_ATMPVC": 8, "AF_X25": 9,
	"AF_INET6": 10, "AF_ROSE": 11, "AF_DECnet": 12, "AF_NETBEUI": 13, "AF_SECURITY": 14,
	"AF_KEY": 15, "AF_NETLINK": 16, "AF_ROUTE": 16, "AF_PACKET": 17, "AF_ASH": 18,
	"AF_ECONET": 19, "AF_ATMSVC": 20, "AF_RDS": 21, "AF_SNA": 22, "AF_IRDA": 23,
	"AF_PPPOX": 24, "AF_WANPIPE": 25, "AF_LLC": 26, "AF_IB": 27, "AF_MPLS": 28, "AF_CAN": 29,
	"AF_TIPC": 30, "AF_BLUETOOTH": 31, "AF_IUCV": 32, "AF_RXRPC": 33, "AF_ISDN": 34,
	"AF_PHONET": 35, "AF_IEEE802154": 36, "AF_CAIF": 37, "AF_ALG": 38, "AF_NFC": 39,
	"AF_VSOCK": 40, "AF_KCM": 41, "AF_QIPCRTR": 42, "AF_SMC": 43, "AF_XDP": 44, "AF_MCTP": 45,
}

// tcpStates are the TCP_* names the State operator accepts.
var tcpStates = map[string]uint64{
	"TCP_ESTABLISHED": 1, "TCP_SYN_SENT": 2, "TCP_SYN_RECV": 3, "TCP_FIN_WAIT1": 4,
	"TCP_FIN_WAIT2": 5, "TCP_TIME_WAIT": 6, "TCP_CLOSE": 7, "TCP_CLOSE_WAIT": 8,
	"TCP_LAST_ACK": 9, "TCP_LISTEN": 10, "TCP_CLOSING": 11, "TCP_NEW_SYN_RECV": 12,
	"TCP_BOUND_INACTIVE": 13,
}

// fileTypes are the names the FileType operator accepts.
// fileTypes are FileType's values, Tetragon's names for the type bits
// (S_IFMT) of an inode's mode.
var fileTypes = map[string]int64{
	"sock": 0o140000, "socket": 0o140000, "lnk": 0o120000, "link": 0o120000, "reg": 0o100000, "regular": 0o100000,
	"blk": 0o060000, "block": 0o060000, "dir": 0o040000, "chr": 0o020000, "char": 0o020000, "fifo": 0o010000, "pipe": 0o010000,
}

// listTypes are the types of spec.lists; "" is a list of kernel functions.
var listTypes = map[string]bool{"": true, "syscalls": true, "generated_syscalls": true, "generated_ftrace": true}

// optionValues checks the value of each option Tetragon knows.
var optionValues = map[string]func(string) string{
	"policy-mode": func(v string) string {
		if v == "enforce" || v == "monitor" {
			return ""
		}
		return "want enforce or monitor"
	},
	"disable-kprobe-multi": boolOption,
	"disable-uprobe-multi": boolOption,
	"override-method": func(v string) string {
		if v == "fmod-ret" || v == "override-return" {
			return ""
		}
		return "want fmod-ret or override-return"
	},
	"uprobe-heap-size": func(v string) string {
		if n, err := parseUintValue(v, 32); err != nil || n == 0 {
			return "want a positive number of entries"
		}
		return ""
	},
}

func boolOption(v string) string {
	switch v {
	case "1", "t", "T", "true", "TRUE", "True", "0", "f", "F", "false", "FALSE", "False":
		return ""
	}
	return "want true or false"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var (
	// dns1123SubdomainRE is Kubernetes' object name syntax (at most 253).
	dns1123SubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// dns1123LabelRE is Kubernetes' namespace syntax (at most 63).
	dns1123LabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// labelNameRE is the name part of a label key and a label value (at
	// most 63).
	labelNameRE = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	// symbolRE is a kernel or ELF symbol (GCC adds ".isra.0", ".cold").
	symbolRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.$@]*$`)
	// syscallRE is a syscall name with an optional architecture prefix.
	syscallRE = regexp.MustCompile(`^(__[A-Za-z0-9]+_)?(compat_)?sys_[a-z0-9_]+$`)
	// tracepointRE is a tracepoint subsystem or event name.
	tracepointRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	// lsmHookRE is an LSM hook name (file_open, bprm_check_security).
	lsmHookRE = regexp.MustCompile(`^[a-z0-9_]+$`)
	// usdtNameRE is a USDT provider or probe name: a C identifier.
	usdtNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// resolveRE is a resolve path: fields separated by dots, each with an
	// optional [N] index.
	resolveRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\[[0-9]+\])?(\.[A-Za-z_][A-Za-z0-9_]*(\[[0-9]+\])?)*$`)
	// hostnameRE is a DNS name for DnsLookup.
	hostnameRE = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?\.)*[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?\.?$`)
)
