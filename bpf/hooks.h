/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Policy hooks: what TracingPolicies attach. Every hook, whatever its
 * mechanism, reads its arguments into a hook_scratch and then runs the same
 * compiled selector table (struct hook_conf, written by internal/kernel from
 * what internal/policy compiled): selectors in order, the first that matches
 * decides the actions. Nothing that no selector wants reaches the ring buffer. */
#pragma once

#include "common.h"
#include "path.h"
#include "process.h"

/* Limits; internal/policy/limits.go refuses policies beyond them. */
#define MAX_HOOKS 256
#define MAX_ARGS 5
#define MAX_SELECTORS 5
#define MAX_FILTERS 5
#define MAX_RET_FILTERS 2
#define MAX_VALUES 8
#define MAX_PIDS 8
#define MAX_NS_FILTERS 4
#define MAX_NS_VALUES 4
#define HOOKS_PER_SYSCALL 8
#define MAX_SYSCALLS 512
/* A string argument is kept on its first STR_SLOT - 1 bytes; prefixes and
 * suffixes are matched on the first LPM_STR bytes (the LPM trie limit). */
#define STR_SLOT 256
#define LPM_STR 252
#define REC_DATA_MASK 2047
/* Stack traces (Post kernelStackTrace, userStackTrace): frames per stack,
 * Tetragon's PERF_MAX_STACK_DEPTH. */
#define MAX_STACK_FRAMES 127
#define STACK_BYTES (MAX_STACK_FRAMES * 8)

enum arg_type {
	ARG_NONE = 0,
	ARG_INT = 1,      /* any integer; arg_conf.flags says size and sign */
	ARG_STRING = 2,   /* user char * */
	ARG_FD = 3,       /* file descriptor: read as the file's path */
	ARG_CHAR_BUF = 4, /* user buffer whose size is another argument */
	ARG_SOCKADDR = 5, /* struct sockaddr *: a struct sock_arg in the string
			   * slot, its family, address and port as the source
			   * end (read_sockaddr) */
	ARG_FILE = 6,     /* struct file *: read as its path */
	ARG_PATH = 7,     /* struct path *: read as the path */
	ARG_SOCK = 8,     /* struct sock *: a struct sock_arg in the string slot;
			   * ival: destination address | port << 32, as sockaddr */
	ARG_SOCKET = 9,   /* struct socket *: its sock, as ARG_SOCK */
	ARG_SKB = 10,     /* struct sk_buff *: its IP and transport headers in a
			   * struct sock_arg, as ARG_SOCK */
	ARG_BINPRM = 11,  /* struct linux_binprm *: the path of the file it runs */
	ARG_CRED = 12,    /* struct cred *: a struct cred_arg in the string slot */
	ARG_CAPS = 13,    /* kernel_cap_t *: the mask, as an integer */
	ARG_KIOCB = 14,   /* struct kiocb *: the path of its file */
	ARG_IOV_ITER = 15, /* struct iov_iter *: the start of its user data */
	/* BPF and perf objects, each read into a struct of its own in the
	 * string slot (Tetragon's bpf_attr, perf_event and bpf_map). */
	ARG_BPF_ATTR = 16,   /* union bpf_attr * of a program load */
	ARG_PERF_EVENT = 17, /* struct perf_event * */
	ARG_BPF_MAP = 18,    /* struct bpf_map * */
};

#define BPF_NAME_LEN 16 /* BPF_OBJ_NAME_LEN */

struct bpf_attr_arg {
	__u32 prog_type;
	__u32 insn_cnt;
	char prog_name[BPF_NAME_LEN];
};

struct bpf_map_arg {
	__u32 map_type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	char map_name[BPF_NAME_LEN];
};

struct perf_event_arg {
	__u32 type;
	__u32 pad;
	__u64 config;
	__u64 probe_offset;
	char kprobe_func[128]; /* KSYM_NAME_LEN */
};

/* Kept in BTF for bpf2go: no map holds these. */
const struct bpf_attr_arg *unused_bpf_attr_arg __attribute__((unused));
const struct bpf_map_arg *unused_bpf_map_arg __attribute__((unused));
const struct perf_event_arg *unused_perf_event_arg __attribute__((unused));

/* A cred argument as read_cred leaves it in its argument's string slot, and
 * as the record carries it (internal/kernel/record.go). */
struct cred_arg {
	__u32 uid;
	__u32 gid;
	__u32 suid;
	__u32 sgid;
	__u32 euid;
	__u32 egid;
	__u32 fsuid;
	__u32 fsgid;
	__u32 securebits;
	__u32 user_ns; /* the inode number of its user namespace */
	__u64 cap_permitted;
	__u64 cap_effective;
	__u64 cap_inheritable;
};

/* Kept in BTF for bpf2go: no map holds a cred_arg. */
const struct cred_arg *unused_cred_arg __attribute__((unused));

/* A sock argument as read_sock leaves it in its argument's string slot (a
 * sockaddr as read_sockaddr does), and as the record carries it
 * (internal/kernel/record.go). */
struct sock_arg {
	__u32 saddr; /* IPv4, network order */
	__u32 daddr;
	__u16 sport; /* host order */
	__u16 dport;
	__u16 family;   /* AF_* */
	__u16 protocol; /* IPPROTO_* */
	__u8 state;     /* TCP_* */
	__u8 pad[3];
	__u8 saddr6[16]; /* AF_INET6 only */
	__u8 daddr6[16];
};

#define VIGIL_AF_INET 2
#define VIGIL_AF_INET6 10

enum arg_flags {
	ARGF_SIGNED = 1 << 0,
	ARGF_SIZE_MASK = 0x0e, /* log2(size) << 1: 1, 2, 4 or 8 bytes */
	ARGF_RETURN_COPY = 1 << 4,
	ARGF_KERNEL = 1 << 5,  /* a string or sockaddr in kernel memory */
	ARGF_DATALOC = 1 << 6, /* tracepoint __data_loc field: offset in the record */
};

/* The comparisons a selector filter makes, named as Tetragon spells the
 * operators: internal/policy's Op constants and their names are generated
 * from this enum (make generate), so an operator is numbered here only. */
enum filter_op {
	SOP_Equal = 1,
	SOP_NotEqual,
	SOP_Prefix,
	SOP_NotPrefix,
	SOP_Postfix,
	SOP_NotPostfix,
	SOP_GT,
	SOP_LT,
	SOP_Mask,
	SOP_InRange,
	SOP_NotInRange,
	SOP_In, /* matchPIDs, matchBinaries, matchNamespaces, matchCapabilities */
	SOP_NotIn,
	SOP_Addr, /* sock, sockaddr: the address is in a CIDR set */
	SOP_NotAddr,
	SOP_InMap, /* integers: the value is in the filter's set in int_set */
	SOP_NotInMap,
	SOP_SubString, /* strings: one of the set's values in str_sub occurs in it */
	SOP_SubStringIgnCase, /* the same, ASCII letters in either case */
};

/* Kept in BTF for the generator, though no variable has the type. */
const enum filter_op *unused_filter_op __attribute__((unused));

/* The return value is argument ARG_RET of a filter. */
#define ARG_RET 0xff

enum rate_scope {
	RATE_THREAD = 0,
	RATE_PROCESS = 1,
	RATE_GLOBAL = 2,
};

/* resolve: at most MAX_RESOLVE steps from the argument to the field read. */
#define MAX_RESOLVE 12
#define RES_DEREF 0x8000

struct arg_conf {
	__u8 type;
	__u8 index;      /* which argument of the hooked function */
	__u8 size_index; /* char_buf: 1-based index of the size argument */
	__u8 flags;
	__u16 off;       /* tracepoints: the field's offset in the record */
	__u8 fsize;      /* tracepoints: the field's size */
	__u8 nres;       /* resolve steps in res */
	/* resolve (internal/kernel/resolve.go): each step adds an offset to
	 * the address in hand or, RES_DEREF, loads the pointer stored there;
	 * then res_load bytes at the address are the value (0: the address
	 * is). */
	__u16 res[MAX_RESOLVE];
	__u8 res_load;
	__u8 pad[3];
};

enum filter_flags {
	FF_UNSIGNED = 1 << 0, /* compare integers as unsigned */
	FF_STRING = 1 << 1,   /* the argument is a string: use the sets */
	/* Bits 2-4: on a sock argument, the field compared (enum sock_field);
	 * 0 compares the argument's value. */
	FF_FIELD_SHIFT = 2,
	/* An exact-match string filter: vals holds a 512-bit Bloom filter of
	 * the set's values (string_bloom). */
	FF_BLOOM = 1 << 5,
};

enum sock_field {
	SF_DADDR = 1,
	SF_DPORT,
	SF_SADDR,
	SF_SPORT,
	SF_PROTOCOL,
	SF_FAMILY,
	SF_STATE,
};

struct arg_filter {
	__u8 arg; /* position in hook_conf.args, or ARG_RET */
	__u8 op;
	__u8 nvals;
	__u8 flags;
	__u32 set; /* string ops: the set id in str_eq/str_prefix/str_postfix */
	/* integer ops: the values; InRange/NotInRange: [lo, hi] pairs */
	__s64 vals[MAX_VALUES];
};

/* Namespace types of matchNamespaces; internal/kernel mirrors them. */
enum ns_type {
	NS_UTS = 1,
	NS_IPC,
	NS_MNT,
	NS_PID,
	NS_PID_FOR_CHILDREN,
	NS_NET,
	NS_TIME,
	NS_TIME_FOR_CHILDREN,
	NS_CGROUP,
	NS_USER,
};

/* One matchNamespaces entry: the current task's namespace of type ns is
 * (SOP_In) or is not (SOP_NotIn) one of vals, inode numbers. */
struct ns_filter {
	__u8 ns; /* enum ns_type */
	__u8 op;
	__u8 nvals;
	__u8 pad;
	__u32 vals[MAX_NS_VALUES];
};

/* Capability sets of matchCapabilities. */
enum cap_set {
	CAPS_EFFECTIVE = 1,
	CAPS_INHERITABLE,
	CAPS_PERMITTED,
};

/* The matchCapabilities entry: the current task has (SOP_In) or has none
 * (SOP_NotIn) of the capabilities in mask, in its set. */
struct cap_filter {
	__u8 op; /* 0: no matchCapabilities */
	__u8 set; /* enum cap_set */
	__u8 pad[2];
	__u32 userns; /* isNamespaceCapability: the host's user namespace, where
		       * the entry matches nothing; 0: any */
	__u64 mask;
};

struct selector {
	__u8 nfilters;
	__u8 nret;
	__u8 post;
	__u8 bin_op;
	__u32 bin_set;
	__u32 signal;
	__u8 pid_op;
	__u8 npids;
	__u8 rate_scope;
	__u8 deny; /* Override on a connect hook: refuse the connection */
	__u64 rate_ns;
	__u8 pid_follow; /* matchPIDs followForks: ancestors count too */
	__u8 pid_ns;     /* matchPIDs isNamespacePID: pids as the process's namespace numbers them */
	__u8 nns;        /* matchNamespaces entries in ns */
	__u8 bin_follow; /* matchBinaries followChildren: ancestors' binaries count too */
	__u8 stack;      /* Post's stack traces: enum stack_flags */
	__u8 count;      /* Count: add the match to policy_counts */
	__s32 override;  /* Override: the error LSM and fmod_ret hooks return */
	__u32 cgroup_set; /* podSelector and namespaced policies: the policy's
			   * set in policy_cgroups; 0: every cgroup */
	__u32 pids[MAX_PIDS];
	struct cap_filter caps;
	struct ns_filter ns[MAX_NS_FILTERS];
	struct arg_filter f[MAX_FILTERS];
	struct arg_filter r[MAX_RET_FILTERS];
};

struct hook_conf {
	__u32 id; /* user space maps it to the policy and hook */
	__u8 nargs;
	__u8 nsel;
	__u8 ret; /* report at return: the event carries the return value */
	__u8 ret_unsigned;
	__u16 rec_size; /* tracepoints: bytes of the record to copy */
	/* A kprobe or fentry on a syscall wrapper (__x64_sys_*): its one
	 * argument is the syscall's pt_regs, which hold the arguments
	 * (syscalls.h, read_syscall_regs). */
	__u8 syscall_wrapper;
	/* 1 + the argument every selector of the hook wants in an exact
	 * string set (Equal, In); 0: none. pre_bloom is the union of those
	 * sets' Bloom filters: a string it rules out matches no selector. The
	 * hit ends there, before the other arguments and the selectors: in
	 * enter_hook for a user string (prefiltered), in read_args for the
	 * other types (make bench, openat table: 94 -> 76 ns per
	 * filtered-out hit). */
	__u8 pre_arg;
	__u32 pad;
	__s64 pre_bloom[MAX_VALUES];
	struct arg_conf args[MAX_ARGS];
	struct selector sel[MAX_SELECTORS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_HOOKS);
	__type(key, __u32);
	__type(value, struct hook_conf);
} hooks SEC(".maps");

/* Per hook slot: hits (calls seen), matched (a selector matched), posted
 * (records written), rate_limited, signaled. */
enum hook_counter {
	HC_HITS = 0,
	HC_MATCHED,
	HC_POSTED,
	HC_RATE_LIMITED,
	HC_SIGNALED,
	HC_MAX,
};

struct hook_counters {
	__u64 n[HC_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_HOOKS);
	__type(key, __u32);
	__type(value, struct hook_counters);
} hook_stats SEC(".maps");

static __always_inline void count_hook(__u32 slot, __u32 counter)
{
	struct hook_counters *c = bpf_map_lookup_elem(&hook_stats, &slot);

	if (c && counter < HC_MAX)
		c->n[counter] += 1;
}

/* policy_counts: the matches of the selectors with the Count action, per
 * hook (its id, not its slot: a slot is reused by the next policy), selector
 * and cgroup. User space reads them every metrics interval and deletes the
 * entries of hooks that no longer run. Per CPU, so that a hit adds without
 * an atomic; a hash, not LRU: a full map refuses new cgroups (counted in
 * count_overflow) instead of silently forgetting old counts. */
#define MAX_POLICY_COUNTS 16384

struct policy_count_key {
	__u32 hook; /* hook_conf.id */
	__u32 sel;
	__u64 cgroup;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_POLICY_COUNTS);
	__type(key, struct policy_count_key);
	__type(value, __u64);
} policy_counts SEC(".maps");

/* count_overflow: matches policy_counts had no room for, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} count_overflow SEC(".maps");

static __always_inline void count_match(__u32 hook, __u32 sel)
{
	struct policy_count_key key = {.hook = hook, .sel = sel, .cgroup = bpf_get_current_cgroup_id()};
	__u64 *n = bpf_map_lookup_elem(&policy_counts, &key);

	if (n) {
		*n += 1;
		return;
	}
	__u64 one = 1;

	if (bpf_map_update_elem(&policy_counts, &key, &one, BPF_NOEXIST) == 0)
		return;
	/* Another CPU may have added the key since the lookup. */
	n = bpf_map_lookup_elem(&policy_counts, &key);
	if (n) {
		*n += 1;
		return;
	}
	__u32 zero = 0;
	__u64 *o = bpf_map_lookup_elem(&count_overflow, &zero);

	if (o)
		*o += 1;
}

/* A string argument prepared to serve as a key: the header is rewritten
 * per lookup (str_eq: set, len; LPM tries: prefixlen, set) and the bytes are
 * zero padded, so the slot itself is the key and nothing is copied. */
struct str_slot {
	__u32 hdr0;
	__u32 hdr1;
	char s[STR_SLOT];
};


struct str_lpm_key {
	__u32 prefixlen; /* bits, the 32 of set included */
	__u32 set;
	char s[LPM_STR];
};

/* Exact values live in the smallest of four maps their length fits, keyed
 * by the first 8 + 32, 64, 128 or 256 bytes of a zero-padded slot: a hash
 * lookup hashes its whole key, and hashing 264 bytes for a 36-byte path was
 * most of what a filtered-out hit cost (make bench, openat table). The
 * length is in the key, so the bucket follows from it on both sides
 * (internal/kernel/hooks.go, strEqKey). */
#define STR_EQ_MAP(name, n)                                       \
	struct {                                                  \
		__uint(type, BPF_MAP_TYPE_HASH);                  \
		__uint(max_entries, 8192);                        \
		__uint(key_size, 8 + (n));                        \
		__uint(value_size, 1);                            \
	} name SEC(".maps")

STR_EQ_MAP(str_eq_32, 32);
STR_EQ_MAP(str_eq_64, 64);
STR_EQ_MAP(str_eq_128, 128);
STR_EQ_MAP(str_eq, STR_SLOT);

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct str_lpm_key);
	__type(value, __u8);
} str_prefix SEC(".maps");

struct addr_lpm_key {
	__u32 prefixlen; /* bits, the 32 of set included */
	__u32 set;
	__u32 addr; /* IPv4, network order */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct addr_lpm_key);
	__type(value, __u8);
} addr_lpm SEC(".maps");

/* The IPv6 prefixes of the same sets: a set's IPv4 and IPv6 CIDRs share its
 * id, each family in its own trie. */
struct addr6_lpm_key {
	__u32 prefixlen; /* bits, the 32 of set included */
	__u32 set;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct addr6_lpm_key);
	__type(value, __u8);
} addr6_lpm SEC(".maps");

/* int_set: the values of InMap and NotInMap filters, one entry per (set,
 * value), ranges and lists expanded by user space. Sized for every policy's
 * sets together; internal/policy bounds one filter (MaxInMapEntries). */
struct int_set_key {
	__u32 set;
	__u32 pad;
	__s64 val; /* as read_args leaves the argument: sign or zero extended */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct int_set_key);
	__type(value, __u8);
} int_set SEC(".maps");

/* Suffixes are stored reversed, so a suffix match is a prefix match. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct str_lpm_key);
	__type(value, __u8);
} str_postfix SEC(".maps");

/* SubString: the values of a set, by index from 0, each at most
 * SUBSTR_LEN - 1 bytes (user space holds them to Tetragon's 99). */
#define SUBSTR_LEN 128
#define MAX_SUBSTR_VALUES 8

struct substr_key {
	__u32 set;
	__u32 idx;
};

struct substr_value {
	__u32 len;
	char s[SUBSTR_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct substr_key);
	__type(value, struct substr_value);
} str_sub SEC(".maps");

struct hook_record {
	struct record_header hdr;
	__u32 pid;
	__u32 tid;
	__u32 hook_id;
	__u32 selector;
	__u32 call; /* syscall hooks: the syscall number */
	__u16 kstack_len; /* bytes of kernel stack after the arguments */
	__u16 ustack_len; /* bytes of user stack after the kernel stack */
	__s64 ret;
	__u32 signal;
	__u16 flags;
	__u16 data_len;
	/* per argument: struct arg_header, then len bytes (integers: 8); the
	 * packed arguments fit below the mask, the slack keeps every masked
	 * offset plus a bounded length inside. Then the stacks (stack.h),
	 * return addresses innermost first; the slack holds both behind the
	 * masked end of the arguments. */
	char data[REC_DATA_MASK + 1 + 2 * STACK_BYTES];
};

enum stack_flags {
	STACK_KERNEL = 1 << 0,
	STACK_USER = 1 << 1,
};

enum hook_record_flags {
	HRF_RETURN = 1 << 0,
};

struct arg_header {
	__u8 type;
	__u8 truncated;
	__u16 len;
};

/* The arguments of one hit, decoded; what a return hook keeps from entry. */
struct hook_args {
	__s64 ival[MAX_ARGS];
	__u64 raw[8]; /* the hooked function's raw arguments (6 used; 8 for masking) */
	__u16 slen[MAX_ARGS];
	__u8 trunc[MAX_ARGS];
	__u8 pad[1];
	struct str_slot str[MAX_ARGS];
};

struct hook_scratch {
	struct hook_args a;
	struct str_slot bin;
	struct str_slot rev;
	__s64 ret;
	__u32 call; /* reported in hook_record.call */
	/* The record in rec waits for the stacks these flags name: the
	 * program that ran the hook takes them and emits it (stack.h). */
	__u32 stack;
	/* What a return hook keeps from entry (struct pending, syscalls.h). */
	__u32 pend_sel;
	__u32 pend_call;
	struct hook_args pend_a;
	struct hook_record rec;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hook_scratch);
} hook_heap SEC(".maps");

struct rate_key {
	__u32 hook;
	__u32 selector;
	__u32 scope;
	__u32 pad;
	__u64 args;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct rate_key);
	__type(value, __u64);
} rate_limits SEC(".maps");

static __always_inline int lookup_eq(struct str_slot *slot, __u32 set, __u32 len)
{
	slot->hdr0 = set;
	slot->hdr1 = len;
	if (len <= 32)
		return bpf_map_lookup_elem(&str_eq_32, slot) != NULL;
	if (len <= 64)
		return bpf_map_lookup_elem(&str_eq_64, slot) != NULL;
	if (len <= 128)
		return bpf_map_lookup_elem(&str_eq_128, slot) != NULL;
	return bpf_map_lookup_elem(&str_eq, slot) != NULL;
}

static __always_inline int lookup_lpm(void *map, struct str_slot *slot, __u32 set, __u32 len)
{
	if (len > LPM_STR)
		len = LPM_STR;
	slot->hdr0 = 32 + len * 8;
	slot->hdr1 = set;
	return bpf_map_lookup_elem(map, slot) != NULL;
}

/* reverse_into writes the first len bytes of src reversed into dst, zero
 * padded, for suffix lookups. */
static __always_inline void reverse_into(struct str_slot *dst, const struct str_slot *src,
					 __u32 len)
{
	__builtin_memset(dst->s, 0, sizeof(dst->s));
	for (int i = 0; i < STR_SLOT - 1; i++) {
		if (i >= len)
			break;
		dst->s[i] = src->s[(len - 1 - i) & (STR_SLOT - 1)];
	}
}

/* substr_walk is substr_step's state: the argument searched, and the value
 * sought, copied to the scratch's rev slot. */
struct substr_walk {
	__u32 arg;
	__u32 set;
	__u32 hlen;
	__u32 nlen;
	__u32 fold; /* SubStringIgnCase: 1 */
	int found;
};

/* fold_case lowers an ASCII capital when fold is 1. Arithmetic, no
 * branch: a branch per byte compared multiplies the verifier's states
 * past its limit. d is below 26 for a capital, which makes d - 26 wrap. */
static __always_inline __u32 fold_case(char c, __u32 fold)
{
	__u32 b = (unsigned char)c;
	__u32 d = (b - 'A') & 0xff;

	return b | ((((d - 26) >> 31) & fold) << 5);
}

/* substr_step compares the value with the argument at offset i. It runs
 * under bpf_loop: the verifier checks one comparison, not one per offset. */
static long substr_step(__u32 i, void *data)
{
	struct substr_walk *w = data;
	__u32 zero = 0;
	struct hook_scratch *s = bpf_map_lookup_elem(&hook_heap, &zero);

	if (!s || w->arg >= MAX_ARGS || i + w->nlen > w->hlen)
		return 1;
	const char *hay = s->a.str[w->arg].s;
	for (int j = 0; j < SUBSTR_LEN - 1; j++) {
		if (j >= w->nlen)
			break;
		if (fold_case(hay[(i + j) & (STR_SLOT - 1)], w->fold) != fold_case(s->rev.s[j], w->fold))
			return 0;
	}
	w->found = 1;
	return 1;
}

/* substr_value_step looks for value idx of the set: it copies the value
 * to the scratch and tries every offset. It runs under bpf_loop too, so
 * that a filter on a selector costs the programs one helper call to verify
 * wherever the compiler inlines the filters. */
static long substr_value_step(__u32 idx, void *data)
{
	struct substr_walk *w = data;
	struct substr_key k = {.set = w->set, .idx = idx};
	struct substr_value *v = bpf_map_lookup_elem(&str_sub, &k);
	__u32 zero = 0;
	struct hook_scratch *s = bpf_map_lookup_elem(&hook_heap, &zero);

	if (!v || !s)
		return 1; /* the set has no more values */
	if (v->len > w->hlen)
		return 0;
	__builtin_memcpy(s->rev.s, v->s, SUBSTR_LEN);
	w->nlen = v->len;
	bpf_loop(w->hlen - v->len + 1, substr_step, w, 0);
	return w->found ? 1 : 0;
}

/* substring_match reports whether one of the values of set occurs in
 * argument arg, len bytes; in either case of ASCII letters when fold is set.
 * Needs bpf_loop (Linux 5.17). */
static __always_inline int substring_match(__u32 arg, __u32 len, __u32 set, __u32 fold)
{
	struct substr_walk w = {.arg = arg, .hlen = len, .set = set, .fold = fold};

	bpf_loop(MAX_SUBSTR_VALUES, substr_value_step, &w, 0);
	return w.found;
}

/* string_match is the selector test for string operators on one slot. */
static __always_inline int string_match(struct hook_scratch *s, struct str_slot *slot, __u32 len,
					__u8 op, __u32 set)
{
	switch (op) {
	case SOP_Equal:
	case SOP_In:
		return lookup_eq(slot, set, len);
	case SOP_NotEqual:
	case SOP_NotIn:
		return !lookup_eq(slot, set, len);
	case SOP_Prefix:
		return lookup_lpm(&str_prefix, slot, set, len);
	case SOP_NotPrefix:
		return !lookup_lpm(&str_prefix, slot, set, len);
	case SOP_Postfix:
		reverse_into(&s->rev, slot, len);
		return lookup_lpm(&str_postfix, &s->rev, set, len);
	case SOP_NotPostfix:
		reverse_into(&s->rev, slot, len);
		return !lookup_lpm(&str_postfix, &s->rev, set, len);
	}
	return 0;
}

static __always_inline int int_match(__s64 v, const struct arg_filter *f)
{
	int any = 0;

	for (int i = 0; i < MAX_VALUES; i++) {
		if (i >= f->nvals)
			break;
		__s64 want = f->vals[i];

		switch (f->op) {
		case SOP_Equal:
			any |= v == want;
			break;
		case SOP_NotEqual:
			/* NotEqual: none of the values (values are ORed
			 * except for the negative operators). */
			if (v == want)
				return 0;
			any = 1;
			break;
		case SOP_GT:
			any |= (f->flags & FF_UNSIGNED) ? (__u64)v > (__u64)want : v > want;
			break;
		case SOP_LT:
			any |= (f->flags & FF_UNSIGNED) ? (__u64)v < (__u64)want : v < want;
			break;
		case SOP_Mask:
			any |= (v & want) != 0;
			break;
		case SOP_InRange:
		case SOP_NotInRange:
			if (i & 1)
				break;
			if (i + 1 < MAX_VALUES) {
				__s64 hi = f->vals[(i + 1) & (MAX_VALUES - 1)];
				int in = (f->flags & FF_UNSIGNED) ? (__u64)v >= (__u64)want && (__u64)v <= (__u64)hi
							: v >= want && v <= hi;
				if (f->op == SOP_InRange)
					any |= in;
				else if (in)
					return 0;
				else
					any = 1;
			}
			break;
		}
	}
	return any;
}

/* string_bloom reports whether the string in slot may be one of an exact
 * set's values, from a 512-bit Bloom filter user space computed the same
 * way (internal/kernel/hooks.go, stringBloomBit) over the length and last
 * eight bytes. A filtered-out hit mostly sees strings of another length or
 * ending, and answering those from the filter saves a hash lookup that
 * costs more than all the rest of the selector (make bench, openat table). */
static __always_inline int string_bloom(const __s64 *bloom, const struct str_slot *slot, __u32 len)
{
	__u32 off = len >= 8 ? len - 8 : 0;
	__u64 w = 0;

	/* A short string is zero padded, as in user space; the slot need not
	 * be (enter_hook's prefiltered reads into a slot it did not clear). */
	__builtin_memcpy(&w, &slot->s[off & (STR_SLOT - 1)], sizeof(w));
	if (len < 8)
		w &= (1ULL << (len * 8)) - 1;
	__u64 h = (w ^ ((__u64)len * 0x9E3779B97F4A7C15ULL)) * 0xff51afd7ed558ccdULL;
	__u32 bit = h >> 55;
	return (bloom[(bit >> 6) & (MAX_VALUES - 1)] >> (bit & 63)) & 1;
}

/* int_filter tests an integer: in the filter's set (InMap, NotInMap), or
 * against its values. */
static __always_inline int int_filter(__s64 v, const struct arg_filter *f)
{
	if (f->op == SOP_InMap || f->op == SOP_NotInMap) {
		struct int_set_key k = {.set = f->set, .val = v};
		int in = bpf_map_lookup_elem(&int_set, &k) != NULL;

		return f->op == SOP_InMap ? in : !in;
	}
	return int_match(v, f);
}

/* filter_match is a global function: the verifier checks it once, not once
 * per filter and selector of the caller's loops. */
/* scratch returns the per-CPU scratch as a map value. Global functions get
 * their pointer arguments as plain memory, which kernels before 6.2 refuse
 * as map keys: the ones that look up string sets take the scratch again. */
static __always_inline struct hook_scratch *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&hook_heap, &zero);
}

/* addr_in reports whether a socket's source (src) or destination address
 * is in set, as Tetragon matches them: an AF_INET address against the set's
 * IPv4 prefixes, an AF_INET6 one against its IPv6 prefixes (a v4-mapped
 * address is IPv6 and meets only IPv6 prefixes such as ::ffff:0:0/96). A
 * family without prefixes in the set is in none; -1 for a socket of
 * another family, which matches neither an address operator nor its
 * negation. */
static __always_inline int addr_in(__u32 set, const struct sock_arg *sk, int src)
{
	if (sk->family == VIGIL_AF_INET) {
		struct addr_lpm_key k = {.prefixlen = 64, .set = set, .addr = src ? sk->saddr : sk->daddr};

		return bpf_map_lookup_elem(&addr_lpm, &k) != NULL;
	}
	if (sk->family == VIGIL_AF_INET6) {
		struct addr6_lpm_key k = {.prefixlen = 160, .set = set};

		__builtin_memcpy(k.addr, src ? sk->saddr6 : sk->daddr6, sizeof(k.addr));
		return bpf_map_lookup_elem(&addr6_lpm, &k) != NULL;
	}
	return -1;
}

__noinline int filter_match(const struct arg_filter *f)
{
	struct hook_scratch *s = scratch();

	if (!s || !f)
		return 0;
	if (f->arg == ARG_RET)
		return int_filter(s->ret, f);
	__u32 a = f->arg;
	if (a >= MAX_ARGS)
		return 0;
	if (f->flags & FF_STRING) {
		if ((f->flags & FF_BLOOM) && !string_bloom(f->vals, &s->a.str[a], s->a.slen[a]))
			return f->op == SOP_NotEqual || f->op == SOP_NotIn;
		if (f->op == SOP_SubString || f->op == SOP_SubStringIgnCase)
			return substring_match(a, s->a.slen[a], f->set, f->op == SOP_SubStringIgnCase);
		return string_match(s, &s->a.str[a], s->a.slen[a], f->op, f->set);
	}
	__s64 v = s->a.ival[a];
	__u32 field = (f->flags >> FF_FIELD_SHIFT) & 7;
	if (field) {
		const struct sock_arg *sk = (const struct sock_arg *)s->a.str[a].s;

		switch (field) {
		case SF_DADDR:
			v = sk->daddr;
			break;
		case SF_DPORT:
			v = sk->dport;
			break;
		case SF_SADDR:
			v = sk->saddr;
			break;
		case SF_SPORT:
			v = sk->sport;
			break;
		case SF_PROTOCOL:
			v = sk->protocol;
			break;
		case SF_FAMILY:
			v = sk->family;
			break;
		case SF_STATE:
			v = sk->state;
			break;
		}
		if (f->op == SOP_Addr || f->op == SOP_NotAddr) {
			int in = addr_in(f->set, sk, field == SF_SADDR);

			if (in < 0)
				return 0;
			return f->op == SOP_Addr ? in : !in;
		}
	}
	return int_filter(v, f);
}

/* load_binary puts the binary of thread group tgid, as procs has it, in
 * s->bin and returns its length; 0 for a process Vigil knows nothing of. */
static __always_inline __u32 load_binary(struct hook_scratch *s, __u32 tgid)
{
	struct proc_info *info = bpf_map_lookup_elem(&procs, &tgid);

	__builtin_memset(s->bin.s, 0, sizeof(s->bin.s));
	if (!info)
		return 0;
	__builtin_memcpy(s->bin.s, info->bin, sizeof(s->bin.s));
	return info->bin_len & (BINARY_MAX - 1);
}

/* FOLLOW_DEPTH bounds how many ancestors matchPIDs followForks and
 * matchBinaries followChildren look at. */
#define FOLLOW_DEPTH 8

/* binary_in reports whether thread group tgid runs a binary of set. A
 * global function: the followChildren loop verifies it once. */
__noinline int binary_in(__u32 tgid, __u32 set)
{
	struct hook_scratch *s = scratch();

	if (!s)
		return 0;
	__u32 len = load_binary(s, tgid);
	/* A process Vigil knows nothing of runs no binary of any set. */
	return len && lookup_eq(&s->bin, set, len);
}

__noinline int binary_match(const struct selector *sel)
{
	struct hook_scratch *s = scratch();

	if (!s || !sel)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!sel->bin_follow) {
		/* Unknown processes match no binary, and therefore every
		 * NotIn. */
		__u32 len = load_binary(s, tgid);
		return string_match(s, &s->bin, len, sel->bin_op, sel->bin_set);
	}
	/* followChildren (In and NotIn only): the process, or one of the
	 * processes it descends from, runs a binary of the set. */
	int in = binary_in(tgid, sel->bin_set);
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();

	for (int i = 0; i < FOLLOW_DEPTH && !in; i++) {
		t = BPF_CORE_READ(t, real_parent);
		if (!t)
			break;
		__u32 p = BPF_CORE_READ(t, tgid);
		in = binary_in(p, sel->bin_set);
		if (p <= 1)
			break;
	}
	return sel->bin_op == SOP_In ? in : !in;
}

static __always_inline int pid_in(const struct selector *sel, __u32 tgid)
{
	int in = 0;

	for (int i = 0; i < MAX_PIDS; i++) {
		if (i >= sel->npids)
			break;
		in |= sel->pids[i] == tgid;
	}
	return in;
}

/* ns_tgid is the process id of task as its own pid namespace numbers it. */
static __always_inline __u32 ns_tgid(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up = {};

	bpf_probe_read_kernel(&up, sizeof(up), (void *)&pid->numbers[0] + (level & 31) * sizeof(struct upid));
	return up.nr;
}

static __always_inline int pid_match(const struct selector *sel)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (sel->pid_ns)
		tgid = ns_tgid((struct task_struct *)bpf_get_current_task());
	int in = pid_in(sel, tgid);

	if (!in && sel->pid_follow) {
		/* A descendant of a listed process matches too: the
		 * processes it forked, and theirs. */
		struct task_struct *t = (struct task_struct *)bpf_get_current_task();

		for (int i = 0; i < FOLLOW_DEPTH; i++) {
			t = BPF_CORE_READ(t, real_parent);
			if (!t)
				break;
			__u32 p = sel->pid_ns ? ns_tgid(t) : BPF_CORE_READ(t, tgid);
			if (pid_in(sel, p)) {
				in = 1;
				break;
			}
			if (p <= 1)
				break;
		}
	}
	return sel->pid_op == SOP_In ? in : !in;
}

/* ns_inum is the inode number of the current task's namespace of type ns,
 * as /proc/PID/ns/ shows it; 0 when the task has none (it is exiting) or
 * the kernel lacks the type. */
static __always_inline __u32 ns_inum(struct task_struct *task, __u8 ns)
{
	struct nsproxy *nsp = BPF_CORE_READ(task, nsproxy);

	switch (ns) {
	case NS_UTS:
		return BPF_CORE_READ(nsp, uts_ns, ns.inum);
	case NS_IPC:
		return BPF_CORE_READ(nsp, ipc_ns, ns.inum);
	case NS_MNT:
		return BPF_CORE_READ(nsp, mnt_ns, ns.inum);
	case NS_PID: {
		/* task_active_pid_ns: the namespace of the task's own pid at
		 * its deepest level, not nsproxy's, which is for children. */
		struct pid *pid = BPF_CORE_READ(task, thread_pid);
		unsigned int level = BPF_CORE_READ(pid, level);
		struct upid up = {};

		bpf_probe_read_kernel(&up, sizeof(up), (void *)&pid->numbers[0] + (level & 31) * sizeof(struct upid));
		return BPF_CORE_READ(up.ns, ns.inum);
	}
	case NS_PID_FOR_CHILDREN:
		return BPF_CORE_READ(nsp, pid_ns_for_children, ns.inum);
	case NS_NET:
		return BPF_CORE_READ(nsp, net_ns, ns.inum);
	case NS_TIME:
		if (!bpf_core_field_exists(nsp->time_ns))
			return 0;
		return BPF_CORE_READ(nsp, time_ns, ns.inum);
	case NS_TIME_FOR_CHILDREN:
		if (!bpf_core_field_exists(nsp->time_ns_for_children))
			return 0;
		return BPF_CORE_READ(nsp, time_ns_for_children, ns.inum);
	case NS_CGROUP:
		return BPF_CORE_READ(nsp, cgroup_ns, ns.inum);
	case NS_USER:
		return BPF_CORE_READ(task, cred, user_ns, ns.inum);
	}
	return 0;
}

/* namespaces_match tests matchNamespaces: every entry must hold. A global
 * function, verified once. */
__noinline int namespaces_match(const struct selector *sel)
{
	if (!sel)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	for (int i = 0; i < MAX_NS_FILTERS; i++) {
		if (i >= sel->nns)
			break;
		const struct ns_filter *f = &sel->ns[i];
		__u32 inum = ns_inum(task, f->ns);
		int in = 0;

		for (int j = 0; j < MAX_NS_VALUES; j++) {
			if (j >= f->nvals)
				break;
			in |= f->vals[j] == inum;
		}
		if (in != (f->op == SOP_In))
			return 0;
	}
	return 1;
}

/* caps_match tests matchCapabilities on the current task's credentials, as
 * Tetragon does: In, at least one of the capabilities; NotIn, none. */
__noinline int caps_match(const struct selector *sel)
{
	if (!sel)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	const struct cred *cred = BPF_CORE_READ(task, cred);
	__u64 caps = 0;

	if (sel->caps.userns && BPF_CORE_READ(cred, user_ns, ns.inum) == sel->caps.userns)
		return 0;
	/* kernel_cap_t is { u64 val; } from 6.3 and { u32 cap[2]; } before:
	 * on little-endian, the whole field read as 8 bytes is the mask in
	 * both. */
	switch (sel->caps.set) {
	case CAPS_EFFECTIVE:
		BPF_CORE_READ_INTO(&caps, cred, cap_effective);
		break;
	case CAPS_INHERITABLE:
		BPF_CORE_READ_INTO(&caps, cred, cap_inheritable);
		break;
	case CAPS_PERMITTED:
		BPF_CORE_READ_INTO(&caps, cred, cap_permitted);
		break;
	default:
		return 0;
	}
	int any = (caps & sel->caps.mask) != 0;
	return sel->caps.op == SOP_In ? any : !any;
}

/* policy_cgroups: the cgroups a Kubernetes-scoped policy applies to
 * (podSelector, containerSelector, the namespace of a
 * TracingPolicyNamespaced), kept current by user space as pods come and go.
 * One entry per (policy set, cgroup v2 id). */
struct policy_cgroup_key {
	__u32 set;
	__u32 pad;
	__u64 cgroup;
};

#define MAX_POLICY_CGROUPS 32768

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_POLICY_CGROUPS);
	__type(key, struct policy_cgroup_key);
	__type(value, __u8);
} policy_cgroups SEC(".maps");

static __always_inline int cgroup_in(__u32 set)
{
	struct policy_cgroup_key key = {.set = set, .cgroup = bpf_get_current_cgroup_id()};

	return bpf_map_lookup_elem(&policy_cgroups, &key) != NULL;
}

/* selector_match tests the entry part (ret == 0) or the return part of a
 * selector. */
__noinline int selector_match(struct hook_scratch *s, const struct selector *sel, int ret)
{
	if (!s || !sel)
		return 0;
	if (ret) {
		for (int i = 0; i < MAX_RET_FILTERS; i++) {
			if (i >= sel->nret)
				break;
			if (!filter_match(&sel->r[i]))
				return 0;
		}
		return 1;
	}
	/* The pod scope first: it is one lookup and, on a busy node, rejects
	 * the most. */
	if (sel->cgroup_set && !cgroup_in(sel->cgroup_set))
		return 0;
	if (sel->pid_op && !pid_match(sel))
		return 0;
	if (sel->caps.op && !caps_match(sel))
		return 0;
	if (sel->nns && !namespaces_match(sel))
		return 0;
	if (sel->bin_op && !binary_match(sel))
		return 0;
	for (int i = 0; i < MAX_FILTERS; i++) {
		if (i >= sel->nfilters)
			break;
		if (!filter_match(&sel->f[i]))
			return 0;
	}
	return 1;
}

/* arg_is_text reports whether an argument type's value is text read into
 * its slot (a string, a path, data): its ival is only the address it was
 * read from. */
static __always_inline int arg_is_text(__u8 type)
{
	switch (type) {
	case ARG_STRING:
	case ARG_FD:
	case ARG_CHAR_BUF:
	case ARG_FILE:
	case ARG_PATH:
	case ARG_BINPRM:
	case ARG_KIOCB:
	case ARG_IOV_ITER:
		return 1;
	}
	return 0;
}

/* RATE_KEY_BYTES of an argument's slot identify it to a rate limit: a
 * whole sock_arg, and more of a path than Tetragon's 40 bytes. */
#define RATE_KEY_BYTES 48

/* rate_limited reports whether an identical event (same hook, selector,
 * scope and argument values) was posted less than rate_ns ago. */
static __always_inline int rate_limited(struct hook_scratch *s, const struct hook_conf *conf, __u32 slot,
					__u32 sel_idx, const struct selector *sel)
{
	if (!sel->rate_ns)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct rate_key key = {.hook = slot, .selector = sel_idx};

	if (sel->rate_scope == RATE_THREAD)
		key.scope = (__u32)pid_tgid;
	else if (sel->rate_scope == RATE_PROCESS)
		key.scope = pid_tgid >> 32;
	/* FNV-1a over the hook's arguments: an integer's value, the first
	 * bytes of what the others read into their slot. Not a text's ival:
	 * equal strings read from two addresses (cat's argv) are the same
	 * event. Not the slots past the hook's arguments, nor an integer's
	 * slot, nor the bytes past a slot's length: they hold whatever ran
	 * before. */
	__u64 h = 14695981039346656037ULL;
	for (int a = 0; a < MAX_ARGS; a++) {
		if (a >= conf->nargs)
			break;
		__u32 len = s->a.slen[a];

		if (!len && !arg_is_text(conf->args[a].type)) {
			h = (h ^ (__u64)s->a.ival[a]) * 1099511628211ULL;
			continue;
		}
		for (int i = 0; i < RATE_KEY_BYTES; i++) {
			if (i >= len)
				break;
			h = (h ^ (__u8)s->a.str[a].s[i]) * 1099511628211ULL;
		}
	}
	key.args = h;

	__u64 now = bpf_ktime_get_boot_ns();
	__u64 *last = bpf_map_lookup_elem(&rate_limits, &key);
	if (last && now - *last < sel->rate_ns)
		return 1;
	bpf_map_update_elem(&rate_limits, &key, &now, BPF_ANY);
	return 0;
}

/* read_path writes the path of (dentry, mnt), as the current task sees it,
 * into slot; returns the length kept (the start of the path). Files
 * outside any mounted tree and unlinked files are named as d_path() names
 * them (name_pseudo): "socket:[ino]", "/memfd:x (deleted)". */
__noinline __u32 read_path(struct str_slot *slot, __u64 dentry_addr, __u64 mnt_addr, __u8 *trunc)
{
	struct dentry *dentry = (struct dentry *)dentry_addr;
	struct vfsmount *mnt = (struct vfsmount *)mnt_addr;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	bool truncated = false;
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&path_heap, &zero);
	int start = -1, tail = 0;

	if (!slot || !trunc || !pb)
		return 0;
	start = name_special(dentry, mnt, pb);
	if (start == NAME_DELETED) {
		start = -1;
		tail = sizeof(DELETED_SUFFIX) - 1;
	}
	if (start < 0)
		start = resolve_path(dentry, mnt, BPF_CORE_READ(fs, root.dentry), BPF_CORE_READ(fs, root.mnt),
				     tail, &truncated);
	if (start < 0 || start >= VIGIL_PATH_MAX)
		return 0;
	__u32 len = VIGIL_PATH_MAX - start;
	if (len > STR_SLOT - 1) {
		len = STR_SLOT - 1;
		truncated = true;
	}
	*trunc = truncated;
	bpf_probe_read_kernel(slot->s, len & (STR_SLOT - 1), &pb->buf[start & (VIGIL_PATH_MAX - 1)]);
	return len;
}

/* read_fd_path resolves fd of the current task to its path, the way the
 * process sees it, into slot; returns the length kept. */
static __always_inline __u32 read_fd_path(struct str_slot *slot, __u64 fd, __u8 *trunc)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);

	if (fd >= max)
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	if (!file)
		return 0;
	return read_path(slot, (__u64)BPF_CORE_READ(file, f_path.dentry),
						      (__u64)BPF_CORE_READ(file, f_path.mnt), trunc);
}

/* read_sockaddr reads the struct sockaddr at raw (user memory; kernel
 * memory when kernel is set) into out as a sock argument's source end:
 * family, address and port, which SAddr, SPort and Family match, as
 * Tetragon's sockaddr. Only AF_INET and AF_INET6 carry an address. A global
 * function: verified once. */
__noinline int read_sockaddr(struct sock_arg *out, __u64 raw, int kernel)
{
	struct sockaddr_in6 sa = {};
	__u32 size = sizeof(struct sockaddr_in);
	long err;

	if (!out)
		return 0;
	__builtin_memset(out, 0, sizeof(*out));
	if (!raw)
		return 0;
	err = kernel ? bpf_probe_read_kernel(&sa.sin6_family, sizeof(sa.sin6_family), (void *)raw)
		     : bpf_probe_read_user(&sa.sin6_family, sizeof(sa.sin6_family), (void *)raw);
	if (err)
		return 0;
	out->family = sa.sin6_family;
	if (out->family != VIGIL_AF_INET && out->family != VIGIL_AF_INET6)
		return 0;
	/* Read only what the family needs, which the caller's buffer holds:
	 * a sockaddr_in, or a sockaddr_in6 up to its address (24 bytes, the
	 * shortest length connect and bind accept; sin6_scope_id may be
	 * missing). */
	if (out->family == VIGIL_AF_INET6)
		size = offsetof(struct sockaddr_in6, sin6_scope_id);
	err = kernel ? bpf_probe_read_kernel(&sa, size, (void *)raw) : bpf_probe_read_user(&sa, size, (void *)raw);
	if (err)
		return 0;
	if (out->family == VIGIL_AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&sa;

		out->saddr = in->sin_addr.s_addr;
		out->sport = bpf_ntohs(in->sin_port);
	} else {
		__builtin_memcpy(out->saddr6, &sa.sin6_addr, sizeof(out->saddr6));
		out->sport = bpf_ntohs(sa.sin6_port);
	}
	return 0;
}

/* read_sock reads the struct sock at raw into out: its addresses, ports,
 * family, protocol and state (Tetragon's sock argument). A global function:
 * verified once, whatever the callers' loops. */
__noinline int read_sock(struct sock_arg *out, __u64 raw)
{
	struct sock *sk = (struct sock *)raw;

	if (!out)
		return 0;
	__builtin_memset(out, 0, sizeof(*out));
	if (!sk)
		return 0;
	out->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	out->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	out->protocol = BPF_CORE_READ(sk, sk_protocol);
	out->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	out->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (out->family == VIGIL_AF_INET) {
		out->saddr = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		out->daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	} else if (out->family == VIGIL_AF_INET6) {
		BPF_CORE_READ_INTO(&out->saddr6, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&out->daddr6, sk, __sk_common.skc_v6_daddr);
	}
	return 0;
}

/* read_skb reads the addresses, ports and protocol of the IPv4 or IPv6
 * packet in skb into out (Tetragon's skb argument). */
__noinline int read_skb(struct sock_arg *out, __u64 raw)
{
	struct sk_buff *skb = (struct sk_buff *)raw;

	if (!out)
		return 0;
	__builtin_memset(out, 0, sizeof(*out));
	if (!skb)
		return 0;
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u32 th;
	__u8 version = 0;

	bpf_probe_read_kernel(&version, 1, head + nh);
	version >>= 4;
	if (version == 4) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return 0;
		out->family = VIGIL_AF_INET;
		out->protocol = ip.protocol;
		out->saddr = ip.saddr;
		out->daddr = ip.daddr;
		/* The transport header follows the IP header: skb's own
		 * offset is unset, or the network header's, until the IP
		 * layer has parsed the packet. */
		th = nh + ip.ihl * 4;
	} else if (version == 6) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return 0;
		out->family = VIGIL_AF_INET6;
		out->protocol = ip6.nexthdr;
		__builtin_memcpy(out->saddr6, &ip6.saddr, 16);
		__builtin_memcpy(out->daddr6, &ip6.daddr, 16);
		th = nh + sizeof(ip6); /* extension headers are not followed */
	} else {
		return 0;
	}
	switch (out->protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP: {
		__be16 ports[2] = {};

		bpf_probe_read_kernel(ports, sizeof(ports), head + th);
		out->sport = bpf_ntohs(ports[0]);
		out->dport = bpf_ntohs(ports[1]);
	}
	}
	return 0;
}

/* The iov_iter of kernels before 6.4 named its iovec array iov. */
struct iov_iter___v61 {
	const struct iovec *iov;
} __attribute__((preserve_access_index));

/* read_iov_iter copies the first bytes of the user data an iov_iter
 * describes (ITER_UBUF, or the first ITER_IOVEC segment) into slot and
 * returns how many; kernel-memory iterators read as empty. */
__noinline int read_iov_iter(struct str_slot *slot, __u64 raw, __u8 *trunc)
{
	struct iov_iter *it = (struct iov_iter *)raw;

	if (!slot || !trunc || !it)
		return 0;
	__u8 type = BPF_CORE_READ(it, iter_type);
	__u64 off = BPF_CORE_READ(it, iov_offset);
	__u64 count = BPF_CORE_READ(it, count);
	void *base = NULL;

	if (bpf_core_enum_value_exists(enum iter_type, ITER_UBUF) &&
	    type == bpf_core_enum_value(enum iter_type, ITER_UBUF)) {
		base = BPF_CORE_READ(it, ubuf);
	} else if (type == bpf_core_enum_value(enum iter_type, ITER_IOVEC)) {
		const struct iovec *iov;
		__u64 len;

		if (bpf_core_field_exists(it->__iov))
			iov = BPF_CORE_READ(it, __iov);
		else
			iov = BPF_CORE_READ((struct iov_iter___v61 *)it, iov);
		base = BPF_CORE_READ(iov, iov_base);
		len = BPF_CORE_READ(iov, iov_len);
		if (len < count + off)
			count = len > off ? len - off : 0;
	}
	if (!base)
		return 0;
	if (count > STR_SLOT - 1) {
		count = STR_SLOT - 1;
		*trunc = 1;
	}
	if (!count || bpf_probe_read_user(slot->s, BOUND(count, 255), base + off))
		return 0;
	return count;
}

/* read_cred reads the ids, securebits, capabilities and user namespace of
 * the struct cred at raw into out (Tetragon's cred argument). */
__noinline int read_cred(struct cred_arg *out, __u64 raw)
{
	const struct cred *c = (const struct cred *)raw;

	if (!out)
		return 0;
	__builtin_memset(out, 0, sizeof(*out));
	if (!c)
		return 0;
	out->uid = BPF_CORE_READ(c, uid.val);
	out->gid = BPF_CORE_READ(c, gid.val);
	out->suid = BPF_CORE_READ(c, suid.val);
	out->sgid = BPF_CORE_READ(c, sgid.val);
	out->euid = BPF_CORE_READ(c, euid.val);
	out->egid = BPF_CORE_READ(c, egid.val);
	out->fsuid = BPF_CORE_READ(c, fsuid.val);
	out->fsgid = BPF_CORE_READ(c, fsgid.val);
	out->securebits = BPF_CORE_READ(c, securebits);
	out->user_ns = BPF_CORE_READ(c, user_ns, ns.inum);
	/* kernel_cap_t read as 8 bytes is the mask before and after 6.3
	 * (caps_match). */
	BPF_CORE_READ_INTO(&out->cap_permitted, c, cap_permitted);
	BPF_CORE_READ_INTO(&out->cap_effective, c, cap_effective);
	BPF_CORE_READ_INTO(&out->cap_inheritable, c, cap_inheritable);
	return 0;
}

/* read_bpf_object reads the BPF or perf object at raw, an argument of type
 * (ARG_BPF_ATTR, ARG_PERF_EVENT, ARG_BPF_MAP), into the slot; returns the
 * bytes it holds. */
__noinline __u32 read_bpf_object(struct str_slot *slot, __u64 raw, __u32 type)
{
	if (!slot)
		return 0;
	__builtin_memset(slot->s, 0, sizeof(struct perf_event_arg));
	if (type == ARG_BPF_ATTR) {
		struct bpf_attr_arg *out = (struct bpf_attr_arg *)slot->s;
		const union bpf_attr *attr = (const union bpf_attr *)raw;

		out->prog_type = BPF_CORE_READ(attr, prog_type);
		out->insn_cnt = BPF_CORE_READ(attr, insn_cnt);
		BPF_CORE_READ_INTO(&out->prog_name, attr, prog_name);
		return sizeof(*out);
	}
	if (type == ARG_BPF_MAP) {
		struct bpf_map_arg *out = (struct bpf_map_arg *)slot->s;
		const struct bpf_map *m = (const struct bpf_map *)raw;

		out->map_type = BPF_CORE_READ(m, map_type);
		out->key_size = BPF_CORE_READ(m, key_size);
		out->value_size = BPF_CORE_READ(m, value_size);
		out->max_entries = BPF_CORE_READ(m, max_entries);
		BPF_CORE_READ_INTO(&out->map_name, m, name);
		return sizeof(*out);
	}
	struct perf_event_arg *out = (struct perf_event_arg *)slot->s;
	const struct perf_event *ev = (const struct perf_event *)raw;

	out->type = BPF_CORE_READ(ev, attr.type);
	out->config = BPF_CORE_READ(ev, attr.config);
	out->probe_offset = BPF_CORE_READ(ev, attr.probe_offset);
	/* The caller's pointer to the function name of a kprobe event (config1
	 * of other events: a read that fails leaves it empty), still in the
	 * perf_event_open call that allocates the event. */
	bpf_probe_read_user_str(out->kprobe_func, sizeof(out->kprobe_func),
				(const void *)BPF_CORE_READ(ev, attr.kprobe_func));
	return sizeof(*out);
}

/* resolve_arg follows an argument's resolve path from its value. */
static __always_inline __u64 resolve_arg(const struct arg_conf *ac, __u64 p)
{
	for (int i = 0; i < MAX_RESOLVE; i++) {
		if (i >= ac->nres)
			break;
		__u16 op = ac->res[i];

		if (op & RES_DEREF) {
			__u64 v = 0;

			bpf_probe_read_kernel(&v, sizeof(v), (void *)p);
			p = v;
		} else {
			p += op;
		}
	}
	if (ac->res_load) {
		__u64 v = 0;
		__u32 n = ac->res_load;

		bpf_probe_read_kernel(&v, sizeof(v), (void *)p);
		if (n < 8)
			v &= (1ULL << ((n & 7) * 8)) - 1;
		p = v;
	}
	return p;
}

static __always_inline __s64 int_value(__u64 raw, __u8 flags)
{
	switch (flags & ARGF_SIZE_MASK) {
	case 0 << 1:
		return flags & ARGF_SIGNED ? (__s64)(__s8)raw : (__s64)(__u8)raw;
	case 1 << 1:
		return flags & ARGF_SIGNED ? (__s64)(__s16)raw : (__s64)(__u16)raw;
	case 2 << 1:
		return flags & ARGF_SIGNED ? (__s64)(__s32)raw : (__s64)(__u32)raw;
	}
	return (__s64)raw;
}

/* read_args decodes the hooked function's raw arguments per the hook's
 * argument list. At return only char_buf arguments with returnCopy are read
 * (again), with the return value as their size. At entry it returns 1, and
 * leaves the arguments after it unread, when the hook's prefilter rules out
 * the argument it names (hook_conf.pre_arg): no selector can match. */
__noinline int read_args(struct hook_scratch *s, const struct hook_conf *conf, int at_return)
{
	if (!s || !conf)
		return 0;
	for (int i = 0; i < MAX_ARGS; i++) {
		if (i >= conf->nargs)
			break;
		const struct arg_conf *ac = &conf->args[i];
		__u64 raw = s->a.raw[ac->index & 7];

		if (ac->nres || ac->res_load)
			raw = resolve_arg(ac, raw);

		if (at_return && !(ac->type == ARG_CHAR_BUF && (ac->flags & ARGF_RETURN_COPY)))
			continue;
		s->a.ival[i] = int_value(raw, ac->flags);
		s->a.slen[i] = 0;
		s->a.trunc[i] = 0;
		/* Strings and paths are used as keys: zero the slot's tail.
		 * Integers never touch their slot; clearing 256 bytes for them
		 * is most of a filtered-out hit's cost. */
		if (arg_is_text(ac->type))
			__builtin_memset(s->a.str[i].s, 0, sizeof(s->a.str[i].s));
		switch (ac->type) {
		case ARG_STRING: {
			long n = ac->flags & ARGF_KERNEL
					 ? bpf_probe_read_kernel_str(s->a.str[i].s, STR_SLOT, (void *)raw)
					 : bpf_probe_read_user_str(s->a.str[i].s, STR_SLOT, (void *)raw);
			if (n > 0) {
				s->a.slen[i] = n - 1;
				s->a.trunc[i] = n == STR_SLOT;
			}
			break;
		}
		case ARG_FD:
			s->a.slen[i] = read_fd_path(&s->a.str[i], raw, &s->a.trunc[i]);
			break;
		case ARG_FILE: {
			struct file *f = (struct file *)raw;

			if (f)
				s->a.slen[i] = read_path(&s->a.str[i], (__u64)BPF_CORE_READ(f, f_path.dentry),
						      (__u64)BPF_CORE_READ(f, f_path.mnt), &s->a.trunc[i]);
			break;
		}
		case ARG_SOCKADDR:
			read_sockaddr((struct sock_arg *)s->a.str[i].s, raw, ac->flags & ARGF_KERNEL);
			s->a.slen[i] = sizeof(struct sock_arg);
			s->a.ival[i] = 0; /* the pointer says nothing, and would defeat rate limits */
			break;
		case ARG_SOCK:
		case ARG_SOCKET:
		case ARG_SKB: {
			struct sock_arg *sk = (struct sock_arg *)s->a.str[i].s;

			if (ac->type == ARG_SKB)
				read_skb(sk, raw);
			else
				read_sock(sk, ac->type == ARG_SOCKET ? (__u64)BPF_CORE_READ((struct socket *)raw, sk)
								     : raw);
			s->a.slen[i] = sizeof(*sk);
			s->a.ival[i] = (__u64)sk->daddr | ((__u64)sk->dport << 32);
			break;
		}
		case ARG_CRED:
			read_cred((struct cred_arg *)s->a.str[i].s, raw);
			s->a.slen[i] = sizeof(struct cred_arg);
			break;
		case ARG_CAPS: {
			__u64 caps = 0;

			bpf_probe_read_kernel(&caps, sizeof(caps), (void *)raw);
			s->a.ival[i] = caps;
			break;
		}
		case ARG_IOV_ITER:
			s->a.slen[i] = read_iov_iter(&s->a.str[i], raw, &s->a.trunc[i]);
			break;
		case ARG_BPF_ATTR:
		case ARG_PERF_EVENT:
		case ARG_BPF_MAP:
			s->a.slen[i] = read_bpf_object(&s->a.str[i], raw, ac->type);
			break;
		case ARG_KIOCB:
		case ARG_BINPRM: {
			struct file *f = ac->type == ARG_KIOCB ? BPF_CORE_READ((struct kiocb *)raw, ki_filp)
							       : BPF_CORE_READ((struct linux_binprm *)raw, file);

			if (f)
				s->a.slen[i] = read_path(&s->a.str[i], (__u64)BPF_CORE_READ(f, f_path.dentry),
						      (__u64)BPF_CORE_READ(f, f_path.mnt), &s->a.trunc[i]);
			break;
		}
		case ARG_PATH: {
			struct path *p = (struct path *)raw;

			if (p)
				s->a.slen[i] = read_path(&s->a.str[i], (__u64)BPF_CORE_READ(p, dentry),
						      (__u64)BPF_CORE_READ(p, mnt), &s->a.trunc[i]);
			break;
		}
		case ARG_CHAR_BUF: {
			__u64 size = at_return ? (__u64)s->ret : s->a.raw[(ac->size_index - 1) & 7];
			if (at_return && s->ret < 0)
				size = 0;
			if (size > STR_SLOT - 1) {
				size = STR_SLOT - 1;
				s->a.trunc[i] = 1;
			}
			if (size && !bpf_probe_read_user(s->a.str[i].s, BOUND(size, 255), (void *)raw))
				s->a.slen[i] = size;
			break;
		}
		}
		if (i + 1 == conf->pre_arg && !at_return &&
		    !string_bloom(conf->pre_bloom, &s->a.str[i], s->a.slen[i]))
			return 1;
	}
	return 0;
}

/* sock_owners: sockets a TrackSock action tied to the process that ran
 * it, by struct sock address, so that later hooks whose sock argument is
 * one of them report that process, even where they run in another task's
 * context (softirq). UntrackSock forgets one. LRU: a socket freed without
 * an UntrackSock ages out instead of filling the map. */
struct sock_owner {
	__u32 pid;
	__u32 tid;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u64);
	__type(value, struct sock_owner);
} sock_owners SEC(".maps");

enum sock_action_op {
	SA_TRACK = 1,
	SA_UNTRACK,
};

/* sock_actions: per hook slot and selector (slot * MAX_SELECTORS +
 * selector), its TrackSock or UntrackSock and the position of the sock
 * argument in the hook's args. Kept apart from struct selector: few hooks
 * need it. */
struct sock_action {
	__u8 op; /* enum sock_action_op; 0: none */
	__u8 arg;
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_HOOKS * MAX_SELECTORS);
	__type(key, __u32);
	__type(value, struct sock_action);
} sock_actions SEC(".maps");

/* sock_act takes a matched selector's TrackSock or UntrackSock. As in
 * Tetragon, only a process Vigil knows is recorded as an owner. */
static __always_inline void sock_act(struct hook_scratch *s, const struct hook_conf *conf, __u32 slot,
				     __u32 sel_idx)
{
	__u32 key = slot * MAX_SELECTORS + sel_idx;
	const struct sock_action *a = bpf_map_lookup_elem(&sock_actions, &key);

	if (!a || !a->op || a->arg >= MAX_ARGS)
		return;
	/* Keys are copied to the stack: s may be a global function's
	 * argument, which kernels before 6.2 refuse as a key. */
	__u64 sk = s->a.raw[conf->args[a->arg].index & 7];
	if (!sk)
		return;
	if (a->op == SA_UNTRACK) {
		bpf_map_delete_elem(&sock_owners, &sk);
		return;
	}
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (!bpf_map_lookup_elem(&procs, &tgid))
		return;
	struct sock_owner o = {.pid = tgid, .tid = (__u32)pid_tgid};
	bpf_map_update_elem(&sock_owners, &sk, &o, BPF_ANY);
}

/* hook_pid_tgid is the task an event reports: the owner of its first
 * tracked sock argument, else the current one. */
static __always_inline __u64 hook_pid_tgid(struct hook_scratch *s, const struct hook_conf *conf)
{
	for (int i = 0; i < MAX_ARGS; i++) {
		if (i >= conf->nargs)
			break;
		if (conf->args[i].type != ARG_SOCK)
			continue;
		__u64 sk = s->a.raw[conf->args[i].index & 7];
		const struct sock_owner *o = bpf_map_lookup_elem(&sock_owners, &sk);
		if (o)
			return (__u64)o->pid << 32 | o->tid;
	}
	return bpf_get_current_pid_tgid();
}

/* emit_hook writes the event of a matched selector. A selector that wants
 * stack traces leaves it in s->rec for the program, which has the context
 * bpf_get_stack needs (post_stacks, stack.h). */
static __always_inline void emit_hook(struct hook_scratch *s, const struct hook_conf *conf,
				      __u32 slot, __u32 sel_idx, __u32 signal, int at_return,
				      __u8 stack)
{
	struct hook_record *rec = &s->rec;
	__u64 pid_tgid = hook_pid_tgid(s, conf);
	__u32 off = 0;

	fill_header(&rec->hdr, RECORD_HOOK);
	rec->pid = pid_tgid >> 32;
	rec->tid = (__u32)pid_tgid;
	rec->hook_id = conf->id;
	rec->selector = sel_idx;
	rec->call = s->call;
	rec->signal = signal;
	rec->ret = s->ret;
	rec->flags = at_return ? HRF_RETURN : 0;
	for (int i = 0; i < MAX_ARGS; i++) {
		if (i >= conf->nargs)
			break;
		__u8 type = conf->args[i].type;
		/* The record knows integers, strings, socks and creds. */
		switch (type) {
		case ARG_CAPS:
			type = ARG_INT;
			break;
		case ARG_SOCKET:
		case ARG_SKB:
			type = ARG_SOCK;
			break;
		case ARG_BINPRM:
		case ARG_KIOCB:
			type = ARG_FILE;
			break;
		case ARG_IOV_ITER:
			type = ARG_CHAR_BUF;
			break;
		}
		/* ARG_SOCK and ARG_SOCKADDR are carried as their struct
		 * sock_arg, from their slot. */
		__u32 len = type == ARG_INT ? 8 : s->a.slen[i] & (STR_SLOT - 1);
		struct arg_header hdr = {.type = type, .truncated = s->a.trunc[i], .len = len};

		__builtin_memcpy(&rec->data[off & REC_DATA_MASK], &hdr, sizeof(hdr));
		off += sizeof(hdr);
		if (type == ARG_INT)
			__builtin_memcpy(&rec->data[off & REC_DATA_MASK], &s->a.ival[i], 8);
		else
			bpf_probe_read_kernel(&rec->data[off & REC_DATA_MASK], len & (STR_SLOT - 1),
					      s->a.str[i].s);
		off += len;
	}
	rec->data_len = off;
	rec->kstack_len = 0;
	rec->ustack_len = 0;
	if (stack) {
		s->stack = stack;
		return;
	}
	__u64 size = offsetof(struct hook_record, data) + (off & REC_DATA_MASK);
	if (size > sizeof(*rec))
		size = sizeof(*rec);
	emit(rec, size);
}
