/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What differs between the architectures Vigil builds for, in the pt_regs
 * the kernel saves at a syscall's entry: where the syscall's number and its
 * six arguments are. bpf2go -target defines __TARGET_ARCH_x86 or
 * __TARGET_ARCH_arm64, which also picks bpf_tracing.h's PT_REGS_* macros
 * and vmlinux.h's types. */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>

#if defined(__TARGET_ARCH_x86)

/* x32 calls reach the 64-bit syscall wrappers with this bit set. */
#define X32_SYSCALL_BIT 0x40000000

/* SYSCALL_ID is the syscall's id as the raw syscall tracepoints give it
 * (an x32 call's has X32_SYSCALL_BIT); SYSCALL_NR is the number a 64-bit
 * syscall wrapper serves, as the syscall table indexes it. */
#define SYSCALL_ID(regs) BPF_CORE_READ(regs, orig_ax)
#define SYSCALL_NR(regs) (SYSCALL_ID(regs) & ~X32_SYSCALL_BIT)

/* SYSCALL_ARG6 is the sixth argument, which libbpf 1.1's PT_REGS_* macros
 * do not name. */
#define SYSCALL_ARG6(regs) BPF_CORE_READ(regs, r9)

/* FUNC_ARG6 is a kprobe's or uprobe's sixth argument register (ctx). */
#define FUNC_ARG6(ctx) ((ctx)->r9)

/* SYSCALL_ARGS_BTF reads the six arguments with plain loads from regs, a
 * kernel pointer the verifier knows (tp_btf programs). */
#define SYSCALL_ARGS_BTF(raw, regs)      \
	do {                             \
		(raw)[0] = (regs)->di;   \
		(raw)[1] = (regs)->si;   \
		(raw)[2] = (regs)->dx;   \
		(raw)[3] = (regs)->r10;  \
		(raw)[4] = (regs)->r8;   \
		(raw)[5] = (regs)->r9;   \
	} while (0)

#elif defined(__TARGET_ARCH_arm64)

/* The first argument's register is the return value's: orig_x0 keeps the
 * argument (as bpf_tracing.h's PT_REGS_PARM1_CORE_SYSCALL reads it). */
#define SYSCALL_ID(regs) ((__u32)BPF_CORE_READ(regs, syscallno))
#define SYSCALL_NR(regs) SYSCALL_ID(regs)
#define SYSCALL_ARG6(regs) BPF_CORE_READ(regs, regs[5])
/* A probe's ctx is the user_pt_regs part, as bpf_tracing.h casts it. */
#define FUNC_ARG6(ctx) (((const struct user_pt_regs *)(ctx))->regs[5])
#define SYSCALL_ARGS_BTF(raw, regs)         \
	do {                                \
		(raw)[0] = (regs)->orig_x0; \
		(raw)[1] = (regs)->regs[1]; \
		(raw)[2] = (regs)->regs[2]; \
		(raw)[3] = (regs)->regs[3]; \
		(raw)[4] = (regs)->regs[4]; \
		(raw)[5] = (regs)->regs[5]; \
	} while (0)

#else
#error "Vigil's BPF builds for -target amd64 or arm64"
#endif
