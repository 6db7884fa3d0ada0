/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The kernel's types for the architecture being built (bpf2go -target
 * defines __TARGET_ARCH_*). Both are bpftool's C dump of a kernel's BTF;
 * CO-RE relocates every field access against the running kernel's BTF, so
 * they only need the names the programs use. vmlinux_x86.h: a 6.18 x86-64
 * kernel's /sys/kernel/btf/vmlinux. vmlinux_arm64.h: Debian's
 * linux-image-6.12.118+deb13-cloud-arm64 (trixie-security), made by
 * scripts/vmlinux-h.sh. */
#pragma once

#if defined(__TARGET_ARCH_arm64)
#include "vmlinux_arm64.h"
#else
#include "vmlinux_x86.h"
#endif
