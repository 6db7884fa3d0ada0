/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Stack traces of Post's kernelStackTrace and userStackTrace.
 *
 * bpf_get_stack needs the program's context, which the shared selector code
 * (enter_hook, exit_hook: global functions, verified once for every program
 * type) does not have. So emit_hook leaves a record that wants stacks in the
 * scratch, and each program calls post_stacks after every hook it ran: the
 * stacks are copied into the record itself, behind the arguments, and the
 * record is emitted whole. Nothing is shared between records (a stack map
 * would be: its ids collide and are overwritten before user space reads
 * them), and only selectors that ask pay for the walk. */
#pragma once

#include "hooks.h"

/* take_stack appends one stack at *off; returns the bytes taken. */
static __always_inline __u32 take_stack(void *ctx, struct hook_record *rec, __u32 *off, __u64 flags)
{
	__u32 at = *off;

	if (at > REC_DATA_MASK + STACK_BYTES)
		return 0;
	long n = bpf_get_stack(ctx, &rec->data[at], STACK_BYTES, flags);
	if (n <= 0)
		return 0;
	if (n > STACK_BYTES)
		n = STACK_BYTES;
	*off = at + n;
	return n;
}

/* post_stacks completes and emits the record a matched selector left
 * waiting for its stacks, if any. */
static __always_inline void post_stacks(void *ctx, struct hook_scratch *s)
{
	if (!s->stack)
		return;
	struct hook_record *rec = &s->rec;
	__u32 off = rec->data_len & REC_DATA_MASK;

	if (s->stack & STACK_KERNEL)
		rec->kstack_len = take_stack(ctx, rec, &off, 0);
	if (s->stack & STACK_USER)
		rec->ustack_len = take_stack(ctx, rec, &off, BPF_F_USER_STACK);
	s->stack = 0;
	__u64 size = offsetof(struct hook_record, data) + off;
	if (size > sizeof(*rec))
		size = sizeof(*rec);
	emit(rec, size);
}
