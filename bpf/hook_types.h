/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Policy hooks: the layouts and numbers user space shares with the programs:
 * limits, argument types, the compiled selector table (struct hook_conf)
 * and its filters. internal/kernel writes them (bpf2go generates its Go
 * types) and internal/policy numbers its operators from enum filter_op. */
#pragma once

#include "common.h"
#include "path.h"
#include "process.h"

/* Limits of the kernel's tables. internal/policy refuses what does not fit
 * and internal/kernel sizes what it writes by them: both read these values
 * from Go constants generated from this enum (make generate). */
enum hook_limits {
	MAX_HOOKS = 256,
	MAX_ARGS = 5,
	MAX_SELECTORS = 5,
	MAX_FILTERS = 5,
	MAX_RET_FILTERS = 2,
	MAX_VALUES = 8,
	MAX_PIDS = 8,
	MAX_PID_FILTERS = 4,
	MAX_NS_FILTERS = 4,
	MAX_NS_VALUES = 4,
	HOOKS_PER_SYSCALL = 8,
	MAX_SYSCALLS = 512,
	/* A string argument is kept on its first STR_SLOT - 1 bytes;
	 * prefixes and suffixes are matched on the first LPM_STR bytes (the
	 * LPM trie limit). */
	STR_SLOT = 256,
	LPM_STR = 252,
	/* Stack traces (Post kernelStackTrace, userStackTrace): frames per
	 * stack, Tetragon's PERF_MAX_STACK_DEPTH. */
	MAX_STACK_FRAMES = 127,
};

/* Kept in BTF for the generator, though no variable has the type. */
const enum hook_limits *unused_hook_limits __attribute__((unused));

#define REC_DATA_MASK 2047
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
	ARG_DENTRY = 19,     /* struct dentry *: its path from its filesystem's root */
	ARG_BPF_PROG = 20,   /* struct bpf_prog *: a struct bpf_attr_arg, as a load's */
	ARG_CHAR_IOVEC = 21, /* struct iovec *: the start of the first buffer */
	ARG_SOCKADDR_UN = 22, /* struct sockaddr_un *: its path ("@name" when abstract) */
	/* Not an argument: the IMA hash an LSM hook's Post imaHash appends
	 * after the arguments, its enum hash_algo in the first byte. */
	ARG_IMA_HASH = 23,
};

/* Kept in BTF for the generator (internal/kernel's argtypes_gen.go). */
const enum arg_type *unused_arg_type __attribute__((unused));

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
	/* The hook's return value, a pointer (a returnArg of type sock):
	 * read at return from RAW_RET, not at entry. */
	ARGF_AT_RETURN = 1 << 7,
};

/* Kept in BTF for the generator (internal/kernel's argflags_gen.go). */
const enum arg_flags *unused_arg_flags __attribute__((unused));

/* RAW_RET is the raw argument slot that holds the return value at return. */
#define RAW_RET 6

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
	SOP_FileType, /* files: the type of the inode (mode & S_IFMT) is one of vals */
	SOP_NotFileType,
	/* Two capability sets: the argument vals[0] names has a capability
	 * the filter's own argument lacks (Tetragon's CapabilitiesGained,
	 * arg the old set, vals[0] the new). */
	SOP_CapabilitiesGained,
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
	__u8 source; /* enum arg_source: where a data entry is read from */
	__u8 pad[2];
};

/* Where an argument is read from: the hooked function's arguments, or
 * for an entry of a policy's data list the current task (resolve from
 * its task_struct) or a register of the kprobe or uprobe (index is its
 * slot in struct pt_regs). */
enum arg_source {
	SRC_ARGS = 0,
	SRC_CURRENT_TASK = 1,
	SRC_PT_REGS = 2,
};

/* Kept in BTF for the generator. */
const enum arg_source *unused_arg_source __attribute__((unused));

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

enum notify_op {
	NOTIFY_ENFORCER = 1, /* leave the thread's next enforced call a note */
	NOTIFY_CLEANUP = 2,  /* take back a note left and not yet used */
};

/* Kept in BTF for the generator. */
const enum notify_op *unused_notify_op __attribute__((unused));

/* One matchPIDs entry; a selector's entries are ANDed. */
struct pid_filter {
	__u8 op; /* SOP_In, SOP_NotIn */
	__u8 n;  /* values in pids */
	__u8 follow; /* followForks: ancestors count too */
	__u8 ns;     /* isNamespacePID: pids as the process's namespace numbers them */
	__u32 pids[MAX_PIDS];
};

struct selector {
	__u8 nfilters;
	__u8 nret;
	__u8 post;
	__u8 bin_op;
	__u32 bin_set;
	__u32 signal;
	__u8 npidf; /* matchPIDs entries in pidf */
	__u8 notify; /* enum notify_op: NotifyEnforcer, CleanupEnforcerNotification */
	__u8 rate_scope;
	__u8 deny; /* Override on a connect hook: refuse the connection */
	__u64 rate_ns;
	__u8 pbin_op;     /* matchParentBinaries, as bin_op for the parent */
	__u8 pbin_follow;
	__u8 nns;        /* matchNamespaces entries in ns */
	__u8 bin_follow; /* matchBinaries followChildren: ancestors' binaries count too */
	__u8 stack;      /* Post's stack traces: enum stack_flags */
	__u8 count;      /* Count: add the match to policy_counts */
	__s32 override;  /* Override: the error LSM and fmod_ret hooks return */
	__s32 notify_error;  /* NotifyEnforcer argError: what the enforced call returns */
	__u32 notify_signal; /* NotifyEnforcer argSig: sent when it is enforced */
	__u32 cgroup_set; /* podSelector and namespaced policies: the policy's
			   * set in policy_cgroups; 0: every cgroup */
	__u32 pbin_set;
	/* matchNamespaceChanges: In, a namespace of a type in the mask
	 * (bit t, enum ns_type) changed since exec; NotIn, one of another
	 * type did. */
	__u16 nsch_mask;
	__u8 nsch_op;
	__u8 set_arg;   /* Set on a USDT probe: 1 + the probe argument written */
	__u32 set_value; /* Set: the 4 bytes written over it */
	__u32 pad_set;
	struct pid_filter pidf[MAX_PID_FILTERS];
	struct cap_filter caps;
	struct cap_filter capch; /* matchCapabilityChanges */
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
	/* A kprobe or fentry on a syscall wrapper (__x64_sys_*, __arm64_sys_*): its one
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
