/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Policy hooks: the maps the programs share (the hook table, counters,
 * the Count action, the string, address and integer sets filters look
 * values up in) and the per-CPU scratch a hook reads its arguments into. */
#pragma once

#include "hook_types.h"

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
	/* Post with imaHash: the record waits in ima_pending for the hook's
	 * sleepable program, which appends the file's IMA hash and emits it
	 * (probes.h, vigil_lsm_ima_*). */
	STACK_IMA = 1 << 2,
};

enum hook_record_flags {
	HRF_RETURN = 1 << 0,
};

/* IMA_HASH_MAX is the largest digest bpf_ima_file_hash writes (SHA-512). */
#define IMA_HASH_MAX 64

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
	/* Files (file, path, dentry, fd and the like): the inode's mode,
	 * for FileType. */
	__u16 mode[MAX_ARGS];
	__u8 trunc[MAX_ARGS];
	__u8 pad[7];
	struct str_slot str[MAX_ARGS];
};

/* ima_pending: the record of an LSM hook's Post imaHash, by pid_tgid,
 * between the hook's program and its sleepable one. LRU: a record whose
 * sleepable program never ran (it failed to attach) ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	/* A record waits only while its task runs the one hook: a few per
	 * CPU at most. Preallocated, at 3 KB each. */
	__uint(max_entries, 128);
	__type(key, __u64);
	__type(value, struct hook_record);
} ima_pending SEC(".maps");

struct hook_scratch {
	struct hook_args a;
	struct str_slot bin;
	struct str_slot rev;
	__s64 ret;
	/* The pt_regs of a kprobe or uprobe, for data entries read from a
	 * register (SRC_PT_REGS); other programs leave it. */
	__u64 regs;
	/* The key of ima_pending, here and not on the stack, which the
	 * programs' call chain has little of to spare. */
	__u64 ima_key;
	__u32 call; /* reported in hook_record.call */
	/* The record in rec waits for the stacks these flags name: the
	 * program that ran the hook takes them and emits it (stack.h). */
	__u32 stack;
	/* 1 + the selector enter_hook matched at entry; 0: none. */
	__u32 matched;
	__u32 pad_matched;
	/* What a return hook keeps from entry, laid out as struct pending
	 * (syscalls.h): pend_sel to pend_a are stored as one value. */
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
