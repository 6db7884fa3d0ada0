/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Tracepoint and uprobe hooks. One program of each kind serves every hook
 * of that kind: user space attaches it once per hook with the hook's slot
 * as the attach cookie (Linux 5.15), and the program runs that slot's
 * selector table (hooks.h). */
#pragma once

#include "hooks.h"
#include "syscalls.h"

/* TP_RECORD_MAX bounds the part of a tracepoint record a hook copies; the
 * fields a policy reads must lie within it (internal/kernel checks). */
#define TP_RECORD_MAX 512

struct tp_record {
	char b[TP_RECORD_MAX + 8];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tp_record);
} tp_heap SEC(".maps");

SEC("tracepoint")
int vigil_tracepoint(void *ctx)
{
	__u32 slot = bpf_get_attach_cookie(ctx), zero = 0;
	struct hook_scratch *s = bpf_map_lookup_elem(&hook_heap, &zero);
	struct tp_record *r = bpf_map_lookup_elem(&tp_heap, &zero);
	const struct hook_conf *conf = bpf_map_lookup_elem(&hooks, &slot);

	if (!s || !r || !conf)
		return 0;
	/* The record is copied whole, at the size the format gives: fields
	 * are then read from the copy at offsets the verifier can bound. */
	__u32 size = conf->rec_size;
	if (size == 0 || size > TP_RECORD_MAX)
		return 0;
	if (bpf_probe_read_kernel(r->b, size, ctx))
		return 0;
	for (int i = 0; i < MAX_ARGS; i++) {
		if (i >= conf->nargs)
			break;
		const struct arg_conf *ac = &conf->args[i];
		__u64 v = 0;
		__u32 off = ac->off & (TP_RECORD_MAX - 1);

		switch (ac->fsize) {
		case 1:
			v = *(__u8 *)&r->b[off];
			break;
		case 2:
			v = *(__u16 *)&r->b[off];
			break;
		case 4:
			v = *(__u32 *)&r->b[off];
			break;
		default:
			v = *(__u64 *)&r->b[off];
		}
		if (ac->flags & ARGF_DATALOC)
			v = (__u64)&r->b[(v & 0xffff) & (TP_RECORD_MAX - 1)];
		s->a.raw[i & 7] = v;
	}
	s->call = 0;
	enter_hook(SCRATCH_ARGS(s) slot);
	post_stacks(ctx, s);
	return 0;
}

/* Kprobes on kernel functions: arguments by the kernel's calling
 * convention, the same registers as user functions (PT_REGS_PARM*). The same
 * body serves single kprobes and kprobe.multi, whose programs must be
 * loaded as such. On a syscall wrapper the first argument is the
 * syscall's pt_regs, which enter_hook reads the arguments from
 * (hook_conf.syscall_wrapper), and the syscall number with them.
 *
 * The cookie is the hook's slot, and in its upper half the index of the
 * function among the hook's (a list of kernel functions): the record's
 * call, so that the event names the function that ran. */
static __always_inline int kprobe_entry(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 slot = cookie, zero = 0;
	struct hook_scratch *s = bpf_map_lookup_elem(&hook_heap, &zero);

	if (!s)
		return 0;
	s->a.raw[0] = PT_REGS_PARM1(ctx);
	s->a.raw[1] = PT_REGS_PARM2(ctx);
	s->a.raw[2] = PT_REGS_PARM3(ctx);
	s->a.raw[3] = PT_REGS_PARM4(ctx);
	s->a.raw[4] = PT_REGS_PARM5(ctx);
	s->a.raw[5] = FUNC_ARG6(ctx);
	s->regs = (__u64)ctx;
	s->call = cookie >> 32;
	enter_hook(SCRATCH_ARGS(s) slot);
	post_stacks(ctx, s);
	return 0;
}

static __always_inline int kprobe_return(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 slot = cookie, zero = 0;
	struct hook_scratch *s = bpf_map_lookup_elem(&hook_heap, &zero);

	if (!s)
		return 0;
	s->ret = PT_REGS_RC(ctx);
	s->call = cookie >> 32;
	exit_hook(SCRATCH_ARGS(s) slot);
	post_stacks(ctx, s);
	return 0;
}

SEC("kprobe")
int vigil_kprobe(struct pt_regs *ctx)
{
	return kprobe_entry(ctx);
}

SEC("kretprobe")
int vigil_kretprobe(struct pt_regs *ctx)
{
	return kprobe_return(ctx);
}

SEC("kprobe.multi")
int vigil_kprobe_multi(struct pt_regs *ctx)
{
	return kprobe_entry(ctx);
}

SEC("kretprobe.multi")
int vigil_kretprobe_multi(struct pt_regs *ctx)
{
	return kprobe_return(ctx);
}

/* A uprobe reads the user function's registers as a kprobe reads the
 * kernel function's: the same body serves both. */
SEC("uprobe")
int vigil_uprobe(struct pt_regs *ctx)
{
	return kprobe_entry(ctx);
}

SEC("uretprobe")
int vigil_uretprobe(struct pt_regs *ctx)
{
	return kprobe_return(ctx);
}

/* USDT probes. A probe's arguments are wherever the compiler left them at
 * each site (a register, memory at an offset from one, a constant), as the
 * binary's .note.stapsdt spells it; user space decodes that per site into
 * a usdt_site and attaches vigil_usdt there with the site's id as cookie.
 * The program computes the values into the raw arguments a uprobe would
 * have, then runs the hook as vigil_uprobe does. */
#define USDT_MAX_ARGS 8
#define MAX_USDT_SITES 4096

enum usdt_arg_kind {
	USDT_ARG_NONE = 0,
	USDT_ARG_CONST,     /* val_off */
	USDT_ARG_REG,       /* the register at reg_off in pt_regs */
	USDT_ARG_REG_DEREF, /* memory at the register plus val_off */
};

struct usdt_arg {
	__s64 val_off;
	__u16 reg_off;
	__u8 kind;    /* enum usdt_arg_kind */
	__u8 shift;   /* 64 - 8 * size: keeps the argument's own bytes */
	__u8 is_signed;
	__u8 pad[3];
};

struct usdt_site {
	__u32 slot;
	__u32 pad;
	struct usdt_arg args[USDT_MAX_ARGS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_USDT_SITES);
	__type(key, __u32);
	__type(value, struct usdt_site);
} usdt_sites SEC(".maps");

/* usdt_set takes the Set action of selector matched (1-based; 0: none
 * matched): its value written over the probe argument it names, 4 bytes of
 * the traced process's memory (user space checked the site keeps it
 * there). After the event: it reports the value the probe passed. */
static __always_inline void usdt_set(struct pt_regs *ctx, const struct usdt_site *site, __u32 matched)
{
	__u32 slot = site->slot, j = matched - 1;

	if (!matched)
		return;
	const struct hook_conf *conf = bpf_map_lookup_elem(&hooks, &slot);
	/* Keep the bounds check on the register that indexes. */
	asm volatile("" : "+r"(j));
	if (!conf || j >= MAX_SELECTORS)
		return;
	const struct selector *sel = &conf->sel[j];
	if (!sel->set_arg)
		return;
	const struct usdt_arg *a = &site->args[(sel->set_arg - 1) & (USDT_MAX_ARGS - 1)];
	__u32 v = sel->set_value;
	__u64 base = 0;

	if (a->kind != USDT_ARG_REG_DEREF)
		return;
	bpf_probe_read_kernel(&base, sizeof(base), (void *)ctx + (a->reg_off & 0xff));
	bpf_probe_write_user((void *)(base + a->val_off), &v, sizeof(v));
}

static __always_inline int usdt_hook(struct pt_regs *ctx, int set)
{
	__u32 id = bpf_get_attach_cookie(ctx), zero = 0;
	const struct usdt_site *site = bpf_map_lookup_elem(&usdt_sites, &id);
	struct hook_scratch *s = bpf_map_lookup_elem(&hook_heap, &zero);

	if (!site || !s)
		return 0;
	for (int i = 0; i < USDT_MAX_ARGS; i++) {
		const struct usdt_arg *a = &site->args[i];
		__u64 v = 0;

		switch (a->kind) {
		case USDT_ARG_CONST:
			v = a->val_off;
			break;
		case USDT_ARG_REG:
			bpf_probe_read_kernel(&v, sizeof(v), (void *)ctx + (a->reg_off & 0xff));
			break;
		case USDT_ARG_REG_DEREF:
			bpf_probe_read_kernel(&v, sizeof(v), (void *)ctx + (a->reg_off & 0xff));
			if (bpf_probe_read_user(&v, sizeof(v), (void *)(v + a->val_off)))
				v = 0;
			break;
		default:
			break;
		}
		__u8 shift = a->shift & 63;
		v <<= shift;
		if (a->is_signed)
			v = (__u64)((__s64)v >> shift);
		else
			v >>= shift;
		s->a.raw[i] = v;
	}
	s->call = 0;
	enter_hook(SCRATCH_ARGS(s) site->slot);
	post_stacks(ctx, s);
	if (set)
		usdt_set(ctx, site, s->matched);
	return 0;
}

SEC("uprobe")
int vigil_usdt(struct pt_regs *ctx)
{
	return usdt_hook(ctx, 0);
}

/* vigil_usdt_set is vigil_usdt for probes with a Set action. Apart: its
 * bpf_probe_write_user is refused under lockdown, where the other USDT
 * probes still load. */
SEC("uprobe")
int vigil_usdt_set(struct pt_regs *ctx)
{
	return usdt_hook(ctx, 1);
}

#define NR_CONNECT 42

/* connect_hook runs one hook's selectors on a connect and returns 0 when a
 * matching selector refuses it (Override). Cgroup programs cannot send
 * signals: the compiler refuses Sigkill and Signal on connect hooks. */
__noinline int connect_hook(SCRATCH_PARAMS __u32 slot)
{
	SCRATCH_DECL;

	if (!s)
		return 1;
	const struct hook_conf *conf = bpf_map_lookup_elem(&hooks, &slot);
	if (!conf)
		return 1;
	count_hook(slot, HC_HITS);
	/* What read_args says of the prefilter goes unused: testing it costs
	 * this function stack that the cgroup programs' call chain cannot
	 * spare (512 bytes for all of it). No selector matches anyway. */
	read_args(HOOK_ARGS(s, conf, slot), 0);
	s->ret = 0;
	for (int j = 0; j < MAX_SELECTORS; j++) {
		if (j >= conf->nsel)
			break;
		const struct selector *sel = &conf->sel[j];

		if (!selector_match(SCRATCH_ARGS(s) SEL_ARGS(sel, slot, j), 0))
			continue;
		count_hook(slot, HC_MATCHED);
		if (sel->count)
			count_match(conf->id, j);
		post(s, conf, slot, j, sel, 0, 0, 0);
		return !sel->deny;
	}
	return 1;
}

/* deny_connect and deny_connect6: IPv4 and IPv6 destinations refused to a
 * cgroup (cgroup 0: to all), put there by the enforcement processor
 * (deny_connect action). The data is compared from the first byte: cgroup
 * and port exactly, then the address prefix. Pinned, like deny_exec. Two
 * maps, not one of 16-byte addresses: a pinned map keeps its layout across
 * upgrades. */
struct deny_connect_key {
	__u32 prefixlen; /* 32 (pad) + 64 + 32 + address bits */
	__u32 pad;
	__u64 cgroup;
	__u32 port; /* host order; 0: every port */
	__u32 addr; /* IPv4, network order */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct deny_connect_key);
	__type(value, struct deny_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} deny_connect SEC(".maps");

struct deny_connect6_key {
	__u32 prefixlen; /* 32 (pad) + 64 + 32 + address bits */
	__u32 pad;
	__u64 cgroup;
	__u32 port; /* host order; 0: every port */
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct deny_connect6_key);
	__type(value, struct deny_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} deny_connect6 SEC(".maps");

/* connect_denied looks k up in map with and without its cgroup and port
 * (an entry may name either or neither) and returns the entry that
 * refuses the connect, NULL when none does. The IPv6 key begins as the
 * IPv4 one does, so either is passed as the IPv4 kind. */
static __always_inline struct deny_value *connect_denied(void *map, struct deny_connect_key *k, __u32 port)
{
	__u64 cg = bpf_get_current_cgroup_id();

	for (int i = 0; i < 4; i++) {
		k->cgroup = i & 1 ? 0 : cg;
		k->port = i & 2 ? 0 : port;
		struct deny_value *v = bpf_map_lookup_elem(map, k);

		if (denied(v))
			return v;
	}
	return NULL;
}

/* A connect the deny list refused: the receiver audits each, as it does
 * the execs deny_exec kills. */
struct connect_denied_record {
	struct record_header hdr;
	__u32 pid;
	__u32 tid;
	__u64 rule; /* the entry's rule id */
	__u16 family;
	__u16 port;    /* host order */
	__u8 addr[16]; /* network order; IPv4 in the first 4 bytes */
	__u8 pad[4];
};

const struct connect_denied_record *unused_connect_denied_record __attribute__((unused));

static __always_inline void report_denied(const struct deny_value *v, __u16 family, const __u32 *addr,
					  __u32 port)
{
	struct connect_denied_record rec = {};
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	fill_header(&rec.hdr, RECORD_CONNECT_DENIED);
	rec.pid = pid_tgid >> 32;
	rec.tid = (__u32)pid_tgid;
	rec.rule = v->rule;
	rec.family = family;
	rec.port = port;
	if (family == VIGIL_AF_INET)
		__builtin_memcpy(rec.addr, addr, 4);
	else
		__builtin_memcpy(rec.addr, addr, 16);
	emit(&rec, sizeof(rec));
}

/* connect4_refused reports whether the IPv4 deny list refuses the
 * connect, and reports the refusal. */
static __always_inline int connect4_refused(__u32 addr, __u32 port)
{
	struct deny_connect_key k = {.prefixlen = 160, .addr = addr};
	struct deny_value *v = connect_denied(&deny_connect, &k, port);

	if (v)
		report_denied(v, VIGIL_AF_INET, &addr, port);
	return v != NULL;
}

/* connect6_refused is connect4_refused for an address as the context gives
 * it, in 4-byte words. A v4-mapped address is an IPv4 connect through a
 * dual-stack socket: the IPv4 list applies to it. */
static __always_inline int connect6_refused(const __u32 addr[4], __u32 port)
{
	if (addr[0] == 0 && addr[1] == 0 && addr[2] == bpf_htonl(0xffff))
		return connect4_refused(addr[3], port);
	struct deny_connect6_key k;

	/* All of it, the tail padding too: the lookup reads the whole key. */
	__builtin_memset(&k, 0, sizeof(k));
	k.prefixlen = 256;
	__builtin_memcpy(k.addr, addr, sizeof(k.addr));
	struct deny_value *v = connect_denied(&deny_connect6, (struct deny_connect_key *)&k, port);

	if (v)
		report_denied(v, VIGIL_AF_INET6, addr, port);
	return v != NULL;
}

/* connect_addr: the sockaddr a connect hook reads, rebuilt from the cgroup
 * program's context (which has no pointer to the caller's); connect hooks
 * read their sockaddr argument from here, as kernel memory. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sockaddr_in6);
} connect_addr SEC(".maps");

/* connect_hooks runs the connect hooks on the sockaddr in connect_addr, of
 * len bytes, and returns 0 when one of them refuses the connection. */
static __always_inline int connect_hooks(struct sockaddr_in6 *sa, __u32 len)
{
	__u32 zero = 0;
	struct syscall_entry *e = syscall_entry_of(CONNECT4_KEY);

	if (!e)
		return 1;
	struct hook_scratch *s = bpf_map_lookup_elem(&hook_heap, &zero);
	if (!s)
		return 1;
	/* As connect(fd, addr, len) would see them; the fd is not known here. */
	s->a.raw[0] = 0;
	s->a.raw[1] = (__u64)sa;
	s->a.raw[2] = len;
	s->call = NR_CONNECT;
	int allow = 1;
	for (int i = 0; i < HOOKS_PER_SYSCALL; i++) {
		if (i >= e->n)
			break;
		if (!connect_hook(SCRATCH_ARGS(s) e->slot[i]))
			allow = 0;
	}
	return allow;
}

SEC("cgroup/connect4")
int vigil_connect4(struct bpf_sock_addr *ctx)
{
	__u32 zero = 0;

	if (connect4_refused(ctx->user_ip4, bpf_ntohs(ctx->user_port)))
		return 0;
	struct sockaddr_in *sa = bpf_map_lookup_elem(&connect_addr, &zero);
	if (!sa)
		return 1;
	sa->sin_family = VIGIL_AF_INET;
	sa->sin_port = (__u16)ctx->user_port;
	sa->sin_addr.s_addr = ctx->user_ip4;
	return connect_hooks((struct sockaddr_in6 *)sa, sizeof(*sa));
}

SEC("cgroup/connect6")
int vigil_connect6(struct bpf_sock_addr *ctx)
{
	__u32 zero = 0;
	struct sockaddr_in6 *sa = bpf_map_lookup_elem(&connect_addr, &zero);

	if (!sa)
		return 1;
	sa->sin6_family = VIGIL_AF_INET6;
	sa->sin6_port = (__u16)ctx->user_port;
	/* The context allows 4-byte loads of the address only. */
	sa->sin6_addr.in6_u.u6_addr32[0] = ctx->user_ip6[0];
	sa->sin6_addr.in6_u.u6_addr32[1] = ctx->user_ip6[1];
	sa->sin6_addr.in6_u.u6_addr32[2] = ctx->user_ip6[2];
	sa->sin6_addr.in6_u.u6_addr32[3] = ctx->user_ip6[3];
	if (connect6_refused(sa->sin6_addr.in6_u.u6_addr32, bpf_ntohs(ctx->user_port)))
		return 0;
	return connect_hooks(sa, sizeof(*sa));
}

/* Trampoline hooks (BPF LSM, fmod_ret, fentry) are loaded once per hook,
 * attached to their function at load: tramp_slot is set in each copy. */
const volatile __u32 tramp_slot = 0;
/* tramp_call: which of the hook's functions this copy is attached to (a
 * fentries hook on a list has a copy per function). */
const volatile __u32 tramp_call = 0;

/* run_copy runs this copy's hook on the arguments its program read into s,
 * then posts the stacks a matched selector asked for. */
static __always_inline int run_copy(void *ctx, struct hook_scratch *s)
{
	s->call = tramp_call;
	int ret = enter_hook(SCRATCH_ARGS(s) tramp_slot);

	post_stacks(ctx, s);
	return ret;
}

static __always_inline int tramp_hook(void *ctx)
{
	struct hook_scratch *s = scratch();

	if (!s)
		return 0;
	for (int i = 0; i < 6; i++) {
		__u64 v = 0;

		bpf_get_func_arg(ctx, i, &v);
		s->a.raw[i] = v;
	}
	return run_copy(ctx, s);
}

/* A raw tracepoint hook, attached by name (internal/kernel, one copy per
 * hook). Its arguments are read through a helper, not from ctx directly:
 * a direct read past the tracepoint's own arguments would make the attach
 * fail, and unused ones are never looked at. */
SEC("raw_tp")
int vigil_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	struct hook_scratch *s = scratch();

	if (!s)
		return 0;
	for (int i = 0; i < 6; i++) {
		__u64 v = 0;

		bpf_probe_read_kernel(&v, sizeof(v), &ctx->args[i]);
		s->a.raw[i] = v;
	}
	run_copy(ctx, s);
	return 0;
}

/* An LSM hook allows with 0 and refuses with a negative errno; newer
 * verifiers check that the return is within [-MAX_ERRNO, 0]. */
SEC("lsm/file_open")
int vigil_lsm(void *ctx)
{
	int ret = tramp_hook(ctx);

	if (ret >= 0)
		return 0;
	/* Built so the verifier can bound it: a mask, then a subtraction from
	 * a zero the compiler must keep (not a negation, which it would not
	 * follow). User space keeps Override errors within 1..4095. */
	__u64 err = (__u64)(-(__s64)ret) & 4095;
	__s64 zero = 0;

	barrier_var(zero);
	return zero - (__s64)err;
}

/* fmod_ret on a security_* or syscall function: a non-zero return skips
 * the function and is what its caller sees. */
SEC("fmod_ret/security_file_open")
long vigil_fmod_ret(void *ctx)
{
	/* Sign-extended: a syscall function returns a long, and a negative
	 * int taken as its low 32 bits would read as a huge descriptor. */
	__s64 ret = tramp_hook(ctx);

	return ret;
}

/* An enforcer (spec.enforcers) on a syscall function: a thread that a
 * NotifyEnforcer left a note has this call fail with the note's error, and
 * gets its signal; the note is used up. Other threads pass. */
SEC("fmod_ret/security_file_open")
long vigil_enforcer(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct enforcer_note *n = bpf_map_lookup_elem(&enforcer_notes, &id);

	if (!n)
		return 0;
	__s64 err = n->error;
	__u32 sig = n->signal;

	bpf_map_delete_elem(&enforcer_notes, &id);
	if (sig)
		bpf_send_signal(sig);
	return err;
}

/* ima_emit appends the IMA hash of file to the record waiting in
 * ima_pending for the current task, as an ARG_IMA_HASH entry after its
 * arguments (the hash algorithm, then the digest), and emits it. */
static __always_inline void ima_emit(struct file *file)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct hook_record *rec = bpf_map_lookup_elem(&ima_pending, &id);

	if (!rec)
		return;
	__u32 off = rec->data_len & REC_DATA_MASK;
	struct arg_header hdr = {.type = ARG_IMA_HASH, .len = 1 + IMA_HASH_MAX};
	long algo = file ? bpf_ima_file_hash(file, &rec->data[off + sizeof(hdr) + 1], IMA_HASH_MAX) : -1;

	if (algo >= 0) {
		__builtin_memcpy(&rec->data[off], &hdr, sizeof(hdr));
		rec->data[off + sizeof(hdr)] = algo;
		off += sizeof(hdr) + 1 + IMA_HASH_MAX;
		rec->data_len = off;
	}
	/* A hash that failed (no IMA) still reports the event, without. */
	__u64 size = offsetof(struct hook_record, data) + off;
	if (size > sizeof(*rec))
		size = sizeof(*rec);
	emit(rec, size);
	bpf_map_delete_elem(&ima_pending, &id);
}

/* The sleepable programs of imaHash, attached to the hook after its
 * program: bpf_ima_file_hash may sleep. The file is the hook's first
 * argument (file_open, mmap_file...) or that argument's bprm->file
 * (bprm_check_security...); the verifier types ctx[0] from the hook. */
SEC("lsm.s/file_open")
int BPF_PROG(vigil_lsm_ima_file, struct file *file)
{
	ima_emit(file);
	return 0;
}

SEC("lsm.s/bprm_check_security")
int BPF_PROG(vigil_lsm_ima_bprm, struct linux_binprm *bprm)
{
	ima_emit(bprm->file);
	return 0;
}

/* fentry on a kernel function or a syscall wrapper: where kprobes are
 * missing, or preferred. Reports only; its return value is ignored. */
SEC("fentry/security_file_open")
int vigil_fentry(void *ctx)
{
	tramp_hook(ctx);
	return 0;
}

/* fexit: a fentries hook that reports at return. It sees the arguments
 * and the return value together: the selectors' entry part runs as at
 * entry (leaving the call pending), then the return part and the event. */
SEC("fexit/security_file_open")
int vigil_fexit(void *ctx)
{
	struct hook_scratch *s = scratch();
	__u64 ret = 0;

	if (!s)
		return 0;
	for (int i = 0; i < 6; i++) {
		__u64 v = 0;

		bpf_get_func_arg(ctx, i, &v);
		s->a.raw[i] = v;
	}
	s->call = tramp_call;
	enter_hook(SCRATCH_ARGS(s) tramp_slot);
	bpf_get_func_ret(ctx, &ret);
	s->ret = ret;
	exit_hook(SCRATCH_ARGS(s) tramp_slot);
	post_stacks(ctx, s);
	return 0;
}
