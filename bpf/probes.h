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
	enter_hook(s, slot);
	return 0;
}

SEC("uprobe")
int vigil_uprobe(struct pt_regs *ctx)
{
	__u32 slot = bpf_get_attach_cookie(ctx), zero = 0;
	struct hook_scratch *s = bpf_map_lookup_elem(&hook_heap, &zero);

	if (!s)
		return 0;
	s->a.raw[0] = PT_REGS_PARM1(ctx);
	s->a.raw[1] = PT_REGS_PARM2(ctx);
	s->a.raw[2] = PT_REGS_PARM3(ctx);
	s->a.raw[3] = PT_REGS_PARM4(ctx);
	s->a.raw[4] = PT_REGS_PARM5(ctx);
	s->a.raw[5] = ctx->r9; /* the sixth argument, x86-64 */
	s->call = 0;
	enter_hook(s, slot);
	return 0;
}

SEC("uretprobe")
int vigil_uretprobe(struct pt_regs *ctx)
{
	__u32 slot = bpf_get_attach_cookie(ctx), zero = 0;
	struct hook_scratch *s = bpf_map_lookup_elem(&hook_heap, &zero);

	if (!s)
		return 0;
	s->ret = PT_REGS_RC(ctx);
	s->call = 0;
	exit_hook(s, slot);
	return 0;
}
