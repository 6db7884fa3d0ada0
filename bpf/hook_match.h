/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Policy hooks: the selector tests, each a filter of Tetragon's: string
 * and integer operators, addresses, binaries, PIDs, namespaces,
 * capabilities, the pod scope (cgroups), and rate limits. */
#pragma once

#include "hook_maps.h"

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

#ifndef VIGIL_COMPAT
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

#endif

/* substring_match reports whether one of the values of set occurs in
 * argument arg, len bytes; in either case of ASCII letters when fold is set.
 * Needs bpf_loop (Linux 5.17). */
static __always_inline int substring_match(__u32 arg, __u32 len, __u32 set, __u32 fold)
{
#ifdef VIGIL_COMPAT
	/* User space refuses substring operators without bpf_loop. */
	return 0;
#else
	struct substr_walk w = {.arg = arg, .hlen = len, .set = set, .fold = fold};

	bpf_loop(MAX_SUBSTR_VALUES, substr_value_step, &w, 0);
	return w.found;
#endif
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

/* What the global functions take. A global function is verified once,
 * whatever its callers' loops, which keeps the hook programs inside the
 * verifier's limits. Before Linux 5.12 it may take only scalars and the
 * context, so the compat object (VIGIL_COMPAT, common.h) hands it the
 * place of what it works on, and it looks that up: an argument by its index
 * in the scratch (ARG_*, SLOT_*, OUT_*: a record read into its slot), a hook by its slot (HOOK_*), a selector by its
 * slot and number (SEL_*), a filter or matchPIDs entry by its selector's
 * reference and its number (FILTER_*, PIDF_*). The other object hands it
 * the pointers. Each *_PARAMS is the parameter list, *_ARGS what a caller
 * passes, *_DECL what the function declares first; SEL_SELF is what a
 * function that has a selector passes on for it. */
#ifdef VIGIL_COMPAT
static __always_inline const struct hook_conf *hook_at(__u32 slot)
{
	return bpf_map_lookup_elem(&hooks, &slot);
}

/* A selector reference: slot << 3 | selector. */
static __always_inline const struct selector *selector_at(__u32 ref)
{
	const struct hook_conf *conf = hook_at(ref >> 3);
	__u32 j = ref & 7;

	if (!conf || j >= MAX_SELECTORS)
		return NULL;
	/* Here, not before the test: clang would otherwise add the index to
	 * the pointer first, and the verifier see an unbounded offset. */
	barrier_var(j);
	return &conf->sel[j];
}

/* A filter reference: selector reference << 4 | return filter << 3 | i. */
static __always_inline const struct arg_filter *filter_at(__u32 ref)
{
	const struct selector *sel = selector_at(ref >> 4);
	__u32 i = ref & 7;

	if (!sel || i >= ((ref & 8) ? MAX_RET_FILTERS : MAX_FILTERS))
		return NULL;
	barrier_var(i);
	return (ref & 8) ? &sel->r[i] : &sel->f[i];
}

static __always_inline const struct pid_filter *pid_filter_at(__u32 ref)
{
	const struct selector *sel = selector_at(ref >> 3);
	__u32 i = ref & 7;

	if (!sel || i >= MAX_PID_FILTERS)
		return NULL;
	barrier_var(i);
	return &sel->pidf[i];
}

static __always_inline struct str_slot *arg_slot(__u32 i)
{
	struct hook_scratch *s = scratch();

	if (!s || i >= MAX_ARGS)
		return NULL;
	/* Masked where it is used: clang tests a copy of i. */
	return &s->a.str[BOUND(i, 7)];
}

static __always_inline __u8 *arg_trunc(__u32 i)
{
	struct hook_scratch *s = scratch();

	if (!s || i >= MAX_ARGS)
		return NULL;
	/* Masked where it is used: clang tests a copy of i. */
	return &s->a.trunc[BOUND(i, 7)];
}

#define ARG_PARAMS __u32 arg_i
#define ARG_ARGS(s, i) (i)
#define ARG_DECL                                \
	struct str_slot *slot = arg_slot(arg_i); \
	__u8 *trunc = arg_trunc(arg_i)
#define SLOT_PARAMS __u32 arg_i
#define SLOT_ARGS(s, i) (i)
#define SLOT_DECL struct str_slot *slot = arg_slot(arg_i)
#define OUT_PARAMS(type) __u32 arg_i
#define OUT_ARGS(type, s, i) (i)
#define OUT_DECL(type)                          \
	struct str_slot *out_slot = arg_slot(arg_i); \
	type *out = out_slot ? (type *)out_slot->s : NULL
#define SCRATCH_PARAMS
#define SCRATCH_ARGS(s)
#define SCRATCH_DECL struct hook_scratch *s = scratch()
#define HOOK_PARAMS __u32 conf_slot
#define HOOK_ARGS(s, conf, slot) (slot)
#define HOOK_DECL                             \
	struct hook_scratch *s = scratch(); \
	const struct hook_conf *conf = hook_at(conf_slot)
#define SEL_PARAMS __u32 sel_ref
#define SEL_ARGS(sel, slot, j) ((slot) << 3 | (j))
#define SEL_DECL const struct selector *sel = selector_at(sel_ref)
#define SEL_SELF sel_ref
#define FILTER_PARAMS __u32 f_ref
#define FILTER_ARGS(f, ret, i) (sel_ref << 4 | (ret) << 3 | (i))
#define FILTER_DECL const struct arg_filter *f = filter_at(f_ref)
#define PIDF_PARAMS __u32 pf_ref
#define PIDF_ARGS(pf, i) (sel_ref << 3 | (i))
#define PIDF_DECL const struct pid_filter *pf = pid_filter_at(pf_ref)
#else
#define ARG_PARAMS struct str_slot *slot, __u8 *trunc
#define ARG_ARGS(s, i) &(s)->a.str[i], &(s)->a.trunc[i]
#define ARG_DECL
#define SLOT_PARAMS struct str_slot *slot
#define SLOT_ARGS(s, i) &(s)->a.str[i]
#define SLOT_DECL
#define OUT_PARAMS(type) type *out
#define OUT_ARGS(type, s, i) (type *)(s)->a.str[i].s
#define OUT_DECL(type)
#define SCRATCH_PARAMS struct hook_scratch *s,
#define SCRATCH_ARGS(s) (s),
#define SCRATCH_DECL
#define HOOK_PARAMS struct hook_scratch *s, const struct hook_conf *conf
#define HOOK_ARGS(s, conf, slot) (s), (conf)
#define HOOK_DECL
#define SEL_PARAMS const struct selector *sel
#define SEL_ARGS(sel, slot, j) (sel)
#define SEL_DECL
#define SEL_SELF sel
#define FILTER_PARAMS const struct arg_filter *f
#define FILTER_ARGS(f, ret, i) (f)
#define FILTER_DECL
#define PIDF_PARAMS const struct pid_filter *pf
#define PIDF_ARGS(pf, i) (pf)
#define PIDF_DECL
#endif

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

__noinline int filter_match(FILTER_PARAMS)
{
	FILTER_DECL;
	struct hook_scratch *s = scratch();

	if (!s || !f)
		return 0;
	if (f->arg == ARG_RET)
		return int_filter(s->ret, f);
	__u32 a = f->arg;
	if (a >= MAX_ARGS)
		return 0;
	switch (f->op) {
	case SOP_FileType:
	case SOP_NotFileType: {
		/* S_IFMT: the type bits of an inode's mode. A file that
		 * could not be read has mode 0, of no type. */
		__s64 type = s->a.mode[a] & 0170000;
		int in = 0;

		for (int i = 0; i < MAX_VALUES; i++) {
			if (i >= f->nvals)
				break;
			in |= f->vals[i] == type;
		}
		return f->op == SOP_FileType ? in : !in;
	}
	case SOP_CapabilitiesGained: {
		__u64 n = f->vals[0];

		if (n >= MAX_ARGS)
			return 0;
		return (s->a.ival[n] & ~(__u64)s->a.ival[a]) != 0;
	}
	}
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

/* binary_match tests matchBinaries (parent 0) or matchParentBinaries
 * (parent 1): the binary of the current process, or of its parent. A
 * global function taking scalars: verified once for both. */
__noinline int binary_match(__u32 op, __u32 set, __u32 follow, __u32 parent)
{
	struct hook_scratch *s = scratch();

	if (!s)
		return 0;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (parent) {
		/* real_parent is the process that forked this one (or the
		 * reaper that adopted it); for a thread, its leader's. */
		t = BPF_CORE_READ(t, real_parent);
		if (!t)
			return op == SOP_NotIn;
		tgid = BPF_CORE_READ(t, tgid);
	}
	if (!follow) {
		/* Unknown processes match no binary, and therefore every
		 * NotIn. */
		__u32 len = load_binary(s, tgid);
		return string_match(s, &s->bin, len, op, set);
	}
	/* followChildren (In and NotIn only): the process, or one of the
	 * processes it descends from, runs a binary of the set. */
	int in = binary_in(tgid, set);

	for (int i = 0; i < FOLLOW_DEPTH && !in; i++) {
		t = BPF_CORE_READ(t, real_parent);
		if (!t)
			break;
		__u32 p = BPF_CORE_READ(t, tgid);
		in = binary_in(p, set);
		if (p <= 1)
			break;
	}
	return op == SOP_In ? in : !in;
}

static __always_inline int pid_in(const struct pid_filter *pf, __u32 tgid)
{
	int in = 0;

	for (int i = 0; i < MAX_PIDS; i++) {
		if (i >= pf->n)
			break;
		in |= pf->pids[i] == tgid;
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

/* pid_filter_match: one matchPIDs entry. A global function, verified
 * once whatever the number of entries and selectors that call it. */
__noinline int pid_filter_match(PIDF_PARAMS)
{
	PIDF_DECL;

	if (!pf)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (pf->ns)
		tgid = ns_tgid((struct task_struct *)bpf_get_current_task());
	int in = pid_in(pf, tgid);

	if (!in && pf->follow) {
		/* A descendant of a listed process matches too: the
		 * processes it forked, and theirs. */
		struct task_struct *t = (struct task_struct *)bpf_get_current_task();

		for (int i = 0; i < FOLLOW_DEPTH; i++) {
			t = BPF_CORE_READ(t, real_parent);
			if (!t)
				break;
			__u32 p = pf->ns ? ns_tgid(t) : BPF_CORE_READ(t, tgid);
			if (pid_in(pf, p)) {
				in = 1;
				break;
			}
			if (p <= 1)
				break;
		}
	}
	return pf->op == SOP_In ? in : !in;
}

static __always_inline int pid_match(SEL_PARAMS)
{
	SEL_DECL;

	if (!sel)
		return 0;
	for (int i = 0; i < MAX_PID_FILTERS; i++) {
		if (i >= sel->npidf)
			break;
		if (!pid_filter_match(PIDF_ARGS(&sel->pidf[i], i)))
			return 0;
	}
	return 1;
}

/* namespaces_match tests matchNamespaces: every entry must hold. A global
 * function, verified once. */
__noinline int namespaces_match(SEL_PARAMS)
{
	SEL_DECL;

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
__noinline int caps_match(SEL_PARAMS)
{
	SEL_DECL;

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

/* caps_change_match tests matchCapabilityChanges, as Tetragon does: the
 * set's capabilities now against those the process's exec left
 * (exec_caps). In: one of the listed capabilities changed; NotIn: none of
 * them did, but another one did; no change matches neither. A match takes
 * the current set as the new reference, so one change is reported once. */
__noinline int caps_change_match(SEL_PARAMS)
{
	SEL_DECL;

	if (!sel)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct exec_caps *init = bpf_map_lookup_elem(&exec_caps, &tgid);

	if (!init)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	const struct cred *cred = BPF_CORE_READ(task, cred);
	__u64 cur = 0, was;

	if (sel->capch.userns && BPF_CORE_READ(cred, user_ns, ns.inum) == sel->capch.userns)
		return 0;
	switch (sel->capch.set) {
	case CAPS_EFFECTIVE:
		BPF_CORE_READ_INTO(&cur, cred, cap_effective);
		was = init->c[0];
		break;
	case CAPS_INHERITABLE:
		BPF_CORE_READ_INTO(&cur, cred, cap_inheritable);
		was = init->c[1];
		break;
	case CAPS_PERMITTED:
		BPF_CORE_READ_INTO(&cur, cred, cap_permitted);
		was = init->c[2];
		break;
	default:
		return 0;
	}
	int match = 0;

	if ((was & sel->capch.mask) != (cur & sel->capch.mask))
		match = sel->capch.op == SOP_In;
	else if (was != cur)
		match = sel->capch.op == SOP_NotIn;
	if (match) {
		switch (sel->capch.set) {
		case CAPS_EFFECTIVE:
			init->c[0] = cur;
			break;
		case CAPS_INHERITABLE:
			init->c[1] = cur;
			break;
		default:
			init->c[2] = cur;
		}
	}
	return match;
}

/* ns_change_match tests matchNamespaceChanges, as Tetragon does: the
 * namespaces of the selected types now against those the process was
 * forked or exec'd with (exec_caps). A type whose reference is unknown
 * (0) is skipped. A match takes the current namespaces as the new
 * reference, so one change is reported once. */
__noinline int ns_change_match(SEL_PARAMS)
{
	SEL_DECL;

	if (!sel)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct exec_caps *init = bpf_map_lookup_elem(&exec_caps, &tgid);

	if (!init)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	int changed = 0;

	for (int t = 0; t < NS_TYPES; t++) {
		int listed = (sel->nsch_mask >> (t + 1)) & 1;

		if (listed != (sel->nsch_op == SOP_In) || !init->ns[t])
			continue;
		if (ns_inum(task, t + 1) != init->ns[t])
			changed = 1;
	}
	if (changed)
		exec_ns(init, task);
	return changed;
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
__noinline int selector_match(SCRATCH_PARAMS SEL_PARAMS, int ret)
{
	SCRATCH_DECL;
	SEL_DECL;

	if (!s || !sel)
		return 0;
	if (ret) {
		for (int i = 0; i < MAX_RET_FILTERS; i++) {
			if (i >= sel->nret)
				break;
			if (!filter_match(FILTER_ARGS(&sel->r[i], 1, i)))
				return 0;
		}
		return 1;
	}
	/* The pod scope first: it is one lookup and, on a busy node, rejects
	 * the most. */
	if (sel->cgroup_set && !cgroup_in(sel->cgroup_set))
		return 0;
	if (sel->npidf && !pid_match(SEL_SELF))
		return 0;
	if (sel->caps.op && !caps_match(SEL_SELF))
		return 0;
	if (sel->nns && !namespaces_match(SEL_SELF))
		return 0;
	if (sel->bin_op && !binary_match(sel->bin_op, sel->bin_set, sel->bin_follow, 0))
		return 0;
	if (sel->pbin_op && !binary_match(sel->pbin_op, sel->pbin_set, sel->pbin_follow, 1))
		return 0;
	for (int i = 0; i < MAX_FILTERS; i++) {
		if (i >= sel->nfilters)
			break;
		if (!filter_match(FILTER_ARGS(&sel->f[i], 0, i)))
			return 0;
	}
	/* Last: a change they match is taken as seen. */
	if (sel->capch.op && !caps_change_match(SEL_SELF))
		return 0;
	if (sel->nsch_op && !ns_change_match(SEL_SELF))
		return 0;
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
	case ARG_DENTRY:
	case ARG_CHAR_IOVEC:
	case ARG_SOCKADDR_UN:
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
