package policy

// Limits on the size of a policy. Validate refuses a policy that exceeds one
// of them, naming the field, so that no policy reaches the kernel that the
// compiler cannot lay out or the verifier would refuse. Where Tetragon has
// the same limit the number is Tetragon's, so that a policy both tools load
// behaves the same in both; where Tetragon has none (it stores such values in
// hash maps and LPM tries sized by the policy), the number is Vigil's own and
// chosen to bound the kernel memory one policy can take.
const (
	// MaxHooksPerPolicy bounds kprobes+tracepoints+uprobes+lsmhooks (and
	// the other hook lists) of one policy. Each hook is at least one BPF
	// program and its maps; 128 is far above the largest real policy seen
	// (the Tetragon policy library stays under 20) and keeps a mistaken
	// generated policy from loading thousands of programs.
	MaxHooksPerPolicy = 128

	// MaxListsPerPolicy and MaxListValues bound spec.lists. 512 values
	// cover every syscall of any architecture (x86-64 has about 460).
	MaxListsPerPolicy = 16
	MaxListValues     = 512

	// MaxArgsPerHook is Tetragon's: its programs read at most five
	// arguments, and Vigil's event records have five argument slots.
	MaxArgsPerHook = kernelMaxArgs

	// MaxFunctionArgIndex is the highest argument index of a kprobe, LSM
	// hook or uprobe: arguments come from the first five registers of the
	// calling convention. Tracepoint indexes name fields of the
	// tracepoint's format instead and are not bounded here.
	MaxFunctionArgIndex = 4

	// MaxRawTracepointArgIndex is the highest argument index of a raw
	// tracepoint (raw: true), whose arguments are those of the tracepoint's
	// prototype: Tetragon reads six.
	MaxRawTracepointArgIndex = 5

	// MaxSelectorsPerHook is Tetragon's (MAX_SELECTORS in its BPF code):
	// selectors are tried in order, and a fixed bound keeps that loop
	// verifiable.
	MaxSelectorsPerHook = kernelMaxSelectors

	// MaxMatchArgsPerSelector is Tetragon's bound on matchArgs (plus
	// matchData) filters in one selector.
	MaxMatchArgsPerSelector = kernelMaxFilters

	// MaxMatchReturnArgsPerSelector bounds matchReturnArgs. There is one
	// return value; two filters express any interval on it (GT and LT),
	// and the kernel's selector table has room for two.
	MaxMatchReturnArgsPerSelector = kernelMaxRetFilters

	// MaxIntValues bounds the values of one matchArgs filter whose
	// operator compares numbers one by one (Equal/NotEqual on an integer,
	// Mask, GT, LT, InRange, NotInRange, and Equal/NotEqual/Mask on
	// capability sets). It is Tetragon's MAX_MATCH_VALUES: the kernel
	// checks them in an unrolled loop. More values belong in InMap.
	MaxIntValues = 4

	// MaxMapValues bounds the values of one filter that the kernel looks
	// up in a map: InMap/NotInMap, the port, protocol, family and state
	// operators, and the address operators. A "min:max" range counts as
	// one value; MaxRangeWidth bounds what it may span.
	MaxMapValues = 1024

	// MaxInMapEntries bounds the integers one InMap/NotInMap filter puts
	// in the kernel's set once its ranges and lists are expanded (Tetragon
	// stores them one by one too): a range counts its width, a list its
	// values. It is MaxRangeWidth, so that one widest range fits. The
	// kernel's map (int_set, bpf/hook_maps.h) holds 262144 entries for every
	// policy loaded, four full filters, at about 5 MiB of map memory each.
	MaxInMapEntries = 65536

	// MaxRangeWidth is the widest "min:max" range accepted in a map-backed
	// filter (InMap, ports, protocol, family, state): every port fits.
	MaxRangeWidth = 65536

	// MaxResolveDepth bounds the members of an argument's resolve path;
	// the kernel follows at most 12 steps (members and the pointers
	// between them), which the kernel package checks against BTF.
	MaxResolveDepth = 8

	// MaxStringValues bounds the values of one string filter (Equal,
	// NotEqual, Prefix, NotPrefix, Postfix, NotPostfix on strings, paths
	// and buffers). Tetragon keeps them in hash maps and LPM tries without
	// a count limit; 256 keys of at most MaxStringLen bytes keep one
	// filter under 70 KiB of map memory.
	MaxStringValues = 256

	// MaxStringLen is the longest value of an Equal/NotEqual string
	// filter, in bytes. Tetragon accepts up to 4096 bytes on kernels from
	// 5.11 and about 256 before; Vigil keeps the smaller bound on every
	// kernel so that a match key is one bounded 256-byte copy (255 bytes
	// and a NUL). Longer paths are rare; Prefix covers them.
	MaxStringLen = kernelStrSlot - 1

	// MaxPrefixLen is the longest Prefix/NotPrefix value (string filters
	// and matchBinaries), in bytes: the data of the kernel's 256-byte
	// LPM-trie key less its header. Tetragon's key holds 256 bytes.
	MaxPrefixLen = kernelLpmStr

	// MaxPostfixLen is the longest Postfix/NotPostfix value. It is
	// Tetragon's: the kernel compares the tail of the string reversed in a
	// 128-byte LPM-trie key, which leaves 127 bytes.
	MaxPostfixLen = 127

	// MaxSubstringLen is the longest SubString/SubStringIgnCase value
	// (Tetragon's).
	MaxSubstringLen = 99

	// MaxMatchBinariesPerSelector is Tetragon's: one matchBinaries (and
	// one matchParentBinaries) filter per selector.
	MaxMatchBinariesPerSelector = 1

	// MaxBinaryValues bounds the paths of one matchBinaries filter. They
	// live in a hash map keyed by the 256-byte path; 128 keys keep one
	// selector under 40 KiB.
	MaxBinaryValues = 128

	// MaxBinaryPathLen is the longest In/NotIn binary path. It is
	// Tetragon's (BINARY_PATH_MAX_LEN 256, less the terminating NUL).
	MaxBinaryPathLen = 255

	// MaxMatchPIDsPerSelector and MaxPIDValues bound matchPIDs. Tetragon
	// compares PIDs in an unrolled loop of four (MAX_SELECTOR_VALUES).
	MaxMatchPIDsPerSelector = 4
	MaxPIDValues            = 4

	// MaxMatchNamespacesPerSelector is one filter per namespace type (ten
	// types); MaxNamespaceValues is Tetragon's unrolled loop of four.
	// Vigil's kernel table holds four matchNamespaces entries per selector
	// (Tetragon's own bound on kernels without large programs) of four
	// values each, host_ns included; Compile refuses a fifth entry, naming
	// the field.
	MaxMatchNamespacesPerSelector = 10
	MaxNamespaceValues            = 4

	// MaxMatchCapabilitiesPerSelector is Tetragon's: its kernel code
	// evaluates only the first matchCapabilities filter, so Vigil refuses
	// a second rather than evaluate something Tetragon ignores. The one
	// filter takes any number of capabilities: the kernel tests them as
	// one 64-bit mask.
	MaxMatchCapabilitiesPerSelector = 1

	// MaxMatchNamespaceChangesPerSelector is Tetragon's.
	MaxMatchNamespaceChangesPerSelector = 1

	// MaxActionsPerSelector bounds matchActions and matchReturnActions
	// (Tetragon's: three).
	MaxActionsPerSelector = 3

	// MaxTags and the tag lengths are Tetragon's.
	MaxTags       = 16
	MinTagLen     = 2
	MaxTagLen     = 128
	MinMessageLen = 2
	// MaxMessageLen is Tetragon's; Tetragon truncates a longer message,
	// Vigil refuses it instead.
	MaxMessageLen = 256

	// MaxStackFrames is how many frames a kernelStackTrace or a
	// userStackTrace keeps, innermost first: Tetragon's
	// PERF_MAX_STACK_DEPTH. The kernel walks no deeper than its
	// kernel.perf_event_max_stack sysctl (127 by default) either. The
	// frames travel in the event's record, behind its arguments, so a
	// deeper stack is cut, never lost to another event. Policies cannot
	// ask for more: Tetragon's two flags take no depth.
	MaxStackFrames = kernelMaxStackFrames

	// MaxUprobeTargets bounds symbols+offsets+addrs of one uprobe: each is
	// one attachment.
	MaxUprobeTargets = 64

	// MaxUsdtArgIndex is the last USDT argument a hook reads (the probes
	// have up to 12); the kernel computes 8 per site.
	MaxUsdtArgIndex = 7
	// MaxUsdtSites bounds the sites of one USDT hook (a probe inlined in
	// many places): each is one attachment.
	MaxUsdtSites = 64
)
