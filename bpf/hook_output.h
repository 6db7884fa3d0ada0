/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Policy hooks: what a matched selector does besides matching: socket
 * tracking (TrackSock, UntrackSock) and the event it writes. */
#pragma once

#include "hook_args.h"

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

/* enforcer_notes: what a NotifyEnforcer left a thread (by pid_tgid) for
 * the enforcer of its policy (vigil_enforcer, probes.h), which acts on the
 * thread's next call of an enforced syscall and takes the note. LRU: a
 * note never used ages out. */
struct enforcer_note {
	__s32 error;
	__u32 signal;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u64);
	__type(value, struct enforcer_note);
} enforcer_notes SEC(".maps");

static __always_inline void notify_act(const struct selector *sel)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (sel->notify == NOTIFY_CLEANUP) {
		bpf_map_delete_elem(&enforcer_notes, &id);
		return;
	}
	struct enforcer_note n = {.error = sel->notify_error, .signal = sel->notify_signal};
	bpf_map_update_elem(&enforcer_notes, &id, &n, BPF_ANY);
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
	if (stack & STACK_IMA) {
		/* The hook's sleepable program, which runs next, appends the
		 * hash and emits it (no stacks: user space refuses both on
		 * one selector). Here, not in post_stacks, whose programs'
		 * frames are at the end of the verifier's stack budget; key
		 * and value from the scratch map, as kernels before 6.2 want
		 * them (s may be a global function's argument). */
		struct hook_scratch *hs = scratch();

		if (hs) {
			hs->ima_key = pid_tgid;
			bpf_map_update_elem(&ima_pending, &hs->ima_key, &hs->rec, BPF_ANY);
		}
		return;
	}
	if (stack) {
		s->stack = stack;
		return;
	}
	__u64 size = offsetof(struct hook_record, data) + (off & REC_DATA_MASK);
	if (size > sizeof(*rec))
		size = sizeof(*rec);
	emit(rec, size);
}
