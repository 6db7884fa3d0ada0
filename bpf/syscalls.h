/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Syscall hooks. Where the kernel has kprobes, a `syscall: true` kprobe is
 * a kprobe (or fentry) on the syscall's wrapper, __x64_sys_<name>
 * or __arm64_sys_<name> (probes.h): enter_hook finds the syscall's registers behind the
 * wrapper's one argument (hook_conf.syscall_wrapper).
 *
 * Elsewhere they run on the raw syscall tracepoints: one program on
 * sys_enter and one on sys_exit serve every such hook of every policy,
 * dispatching on the syscall number; a hook costs one lookup on syscalls
 * no policy names. Arguments are read from the user registers (arch.h). */
#pragma once

#include "arch.h"
#include "hooks.h"
#include "stack.h"

struct syscall_entry {
	__u32 n;
	__u32 slot[HOOKS_PER_SYSCALL];
};

/* CONNECT4_KEY is the syscall table's key of connect hooks, IPv4 and IPv6
 * (probes.h): one past the syscall numbers. */
#define CONNECT4_KEY MAX_SYSCALLS

/* A syscall table: syscall number -> the hook slots that watch it. An
 * array, not a hash: its lookup is a few inlined instructions, and every
 * syscall of the host pays for it once a syscall hook is attached (a hash
 * lookup added about 7 ns to each; make bench, openat table). */
struct syscall_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CONNECT4_KEY + 1);
	__type(key, __u32);
	__type(value, struct syscall_entry);
};

/* syscall_hooks holds the one table in use. User space never writes a
 * table the programs may be reading: it fills a new one and swaps it in
 * (internal/kernel, publishSyscalls), which is what makes reloads atomic,
 * for every syscall at once; a program still on the old table finishes
 * with it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct syscall_table);
} syscall_hooks SEC(".maps");

/* syscall_entry_of returns the hooks of key (a syscall number or
 * CONNECT4_KEY), NULL when none. */
static __always_inline struct syscall_entry *syscall_entry_of(__u32 key)
{
	__u32 zero = 0;
	void *table = bpf_map_lookup_elem(&syscall_hooks, &zero);

	if (!table)
		return NULL;
	struct syscall_entry *e = bpf_map_lookup_elem(table, &key);

	if (!e || !e->n)
		return NULL;
	return e;
}

struct pending_key {
	__u32 tid;
	__u32 slot;
};

/* What a return hook selected at entry, waiting for the return: a
 * kretprobe sees neither the syscall's registers nor its number. */
struct pending {
	__u32 sel;
	__u32 call;
	struct hook_args a;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct pending_key);
	__type(value, struct pending);
} pending_returns SEC(".maps");

/* post reports a matched selector, unless NoPost or its rate limit says
 * otherwise. stacks is 0 where no selector can ask for stacks or an IMA
 * hash (connect hooks): the code for them is left out of that frame. */
static __always_inline void post(struct hook_scratch *s, const struct hook_conf *conf, __u32 slot,
				 __u32 sel_idx, const struct selector *sel, __u32 signal, int at_return,
				 int stacks)
{
	if (!sel->post)
		return;
	if (rate_limited(s, conf, slot, sel_idx, sel)) {
		count_hook(slot, HC_RATE_LIMITED);
		return;
	}
	emit_hook(s, conf, slot, sel_idx, signal, at_return, stacks ? sel->stack : 0);
	count_hook(slot, HC_POSTED);
}

static __always_inline void act(struct hook_scratch *s, const struct hook_conf *conf, __u32 slot,
				__u32 sel_idx, const struct selector *sel, int at_return)
{
	count_hook(slot, HC_MATCHED);
	if (sel->count)
		count_match(conf->id, sel_idx);
	if (sel->signal) {
		bpf_send_signal(sel->signal);
		count_hook(slot, HC_SIGNALED);
	}
	if (sel->notify)
		notify_act(sel);
	post(s, conf, slot, sel_idx, sel, sel->signal, at_return, 1);
	/* After the event: the event of an UntrackSock still reports the
	 * socket's owner, as Tetragon's does. */
	sock_act(s, conf, slot, sel_idx);
}

/* read_syscall_regs reads a syscall's arguments from the user registers
 * the kernel saved at its entry. */
static __always_inline void read_syscall_regs(struct hook_scratch *s, struct pt_regs *regs)
{
	s->a.raw[0] = PT_REGS_PARM1_CORE_SYSCALL(regs);
	s->a.raw[1] = PT_REGS_PARM2_CORE_SYSCALL(regs);
	s->a.raw[2] = PT_REGS_PARM3_CORE_SYSCALL(regs);
	s->a.raw[3] = PT_REGS_PARM4_CORE_SYSCALL(regs);
	s->a.raw[4] = PT_REGS_PARM5_CORE_SYSCALL(regs);
	s->a.raw[5] = SYSCALL_ARG6(regs);
}

/* prefiltered reports whether the hook's prefilter rules the hit out on a
 * user string, reading that one argument: most hits of a hook on a busy
 * syscall end here, without the rest of read_args (its other arguments,
 * clearing the slots). Other argument types are tested by read_args. */
static __always_inline int prefiltered(struct hook_scratch *s, const struct hook_conf *conf)
{
	__u32 a = conf->pre_arg - 1;

	if (a >= MAX_ARGS)
		return 0;
	const struct arg_conf *ac = &conf->args[a];
	if (ac->type != ARG_STRING || ac->nres || ac->res_load || (ac->flags & ARGF_KERNEL))
		return 0;
	/* Not zero padded: string_bloom looks at nothing past the string,
	 * and read_args reads it again for a hit that goes on. */
	long n = bpf_probe_read_user_str(s->a.str[a].s, STR_SLOT, (void *)s->a.raw[ac->index & 7]);
	return !string_bloom(conf->pre_bloom, &s->a.str[a], n > 0 ? n - 1 : 0);
}

__noinline int enter_hook(SCRATCH_PARAMS __u32 slot)
{
	SCRATCH_DECL;

	if (!s)
		return 0;
	const struct hook_conf *conf = bpf_map_lookup_elem(&hooks, &slot);
	if (!conf)
		return 0;
	count_hook(slot, HC_HITS);
	if (conf->syscall_wrapper) {
		struct pt_regs *regs = (struct pt_regs *)s->a.raw[0];

		read_syscall_regs(s, regs);
		s->call = SYSCALL_NR(regs);
	}
	s->matched = 0;
	if (prefiltered(s, conf) || read_args(HOOK_ARGS(s, conf, slot), 0))
		return 0;
	s->ret = 0;
	for (int j = 0; j < MAX_SELECTORS; j++) {
		if (j >= conf->nsel)
			break;
		const struct selector *sel = &conf->sel[j];

		if (!selector_match(SCRATCH_ARGS(s) SEL_ARGS(sel, slot, j), 0))
			continue;
		if (conf->ret) {
			struct pending_key key = {.tid = (__u32)bpf_get_current_pid_tgid(), .slot = slot};
			/* A map update takes its value from a map value, not from
			 * s (see scratch()). */
			struct hook_scratch *hs = scratch();

			if (!hs)
				return 0;
			hs->pend_sel = j;
			hs->pend_call = hs->call;
			bpf_probe_read_kernel(&hs->pend_a, sizeof(hs->pend_a), &hs->a);
			bpf_map_update_elem(&pending_returns, &key, &hs->pend_sel, BPF_ANY);
			return 0;
		}
		s->matched = j + 1;
		act(s, conf, slot, j, sel, 0);
		/* What LSM and fmod_ret programs return; 0 elsewhere. */
		return sel->override;
	}
	return 0;
}

__noinline int exit_hook(SCRATCH_PARAMS __u32 slot)
{
	SCRATCH_DECL;

	if (!s)
		return 0;
	struct pending_key key = {.tid = (__u32)bpf_get_current_pid_tgid(), .slot = slot};
	struct pending *p = bpf_map_lookup_elem(&pending_returns, &key);
	if (!p)
		return 0;
	__u32 j = p->sel;
	s->call = p->call;
	bpf_probe_read_kernel(&s->a, sizeof(s->a), &p->a);
	bpf_map_delete_elem(&pending_returns, &key);
	/* A returnArg of a pointer type is read from here (ARGF_AT_RETURN). */
	s->a.raw[RAW_RET] = s->ret;

	const struct hook_conf *conf = bpf_map_lookup_elem(&hooks, &slot);
	if (!conf || j >= MAX_SELECTORS)
		return 0;
	const struct selector *sel = &conf->sel[j];
	read_args(HOOK_ARGS(s, conf, slot), 1);
	if (selector_match(SCRATCH_ARGS(s) SEL_ARGS(sel, slot, j), 1))
		act(s, conf, slot, j, sel, 1);
	return 0;
}

/* btf: the program is tp_btf, where regs is a kernel pointer the verifier
 * knows, read with plain loads; six probe-read helper calls instead cost
 * more than the rest of a filtered-out hit. */
static __always_inline int sys_enter(void *ctx, struct pt_regs *regs, long id, int btf)
{
	__u32 nr = id, zero = 0;

	if (id < 0 || id >= MAX_SYSCALLS)
		return 0;
	struct syscall_entry *e = syscall_entry_of(nr);
	if (!e)
		return 0;
	struct hook_scratch *s = bpf_map_lookup_elem(&hook_heap, &zero);
	if (!s)
		return 0;
	if (btf) {
		SYSCALL_ARGS_BTF(s->a.raw, regs);
	} else {
		read_syscall_regs(s, regs);
	}
	s->call = nr;
	for (int i = 0; i < HOOKS_PER_SYSCALL; i++) {
		if (i >= e->n)
			break;
		enter_hook(SCRATCH_ARGS(s) e->slot[i]);
		post_stacks(ctx, s);
	}
	return 0;
}

static __always_inline int sys_exit(void *ctx, struct pt_regs *regs, long ret)
{
	__u32 nr = SYSCALL_ID(regs), zero = 0;

	if (nr >= MAX_SYSCALLS)
		return 0;
	struct syscall_entry *e = syscall_entry_of(nr);
	if (!e)
		return 0;
	struct hook_scratch *s = bpf_map_lookup_elem(&hook_heap, &zero);
	if (!s)
		return 0;
	s->call = nr;
	for (int i = 0; i < HOOKS_PER_SYSCALL; i++) {
		if (i >= e->n)
			break;
		s->ret = ret;
		exit_hook(SCRATCH_ARGS(s) e->slot[i]);
		post_stacks(ctx, s);
	}
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(vigil_sys_enter_btf, struct pt_regs *regs, long id)
{
	return sys_enter(ctx, regs, id, 1);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(vigil_sys_exit_btf, struct pt_regs *regs, long ret)
{
	return sys_exit(ctx, regs, ret);
}

SEC("raw_tp/sys_enter")
int BPF_PROG(vigil_sys_enter_raw, struct pt_regs *regs, long id)
{
	return sys_enter(ctx, regs, id, 0);
}

SEC("raw_tp/sys_exit")
int BPF_PROG(vigil_sys_exit_raw, struct pt_regs *regs, long ret)
{
	return sys_exit(ctx, regs, ret);
}
