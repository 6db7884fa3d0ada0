// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Vigil's one BPF object. Its programs share the ring buffer, so that a
 * process's exec reaches user space before the events of what it does, and
 * the procs map, which selectors read. User space attaches what it needs. */
#include "common.h"
#include "path.h"
#include "process.h"
#include "hooks.h"
#include "syscalls.h"
#include "probes.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Keeps the layouts user space decodes in BTF for bpf2go. */
const struct hook_record *unused_hook_record __attribute__((unused));
const struct hook_conf *unused_hook_conf __attribute__((unused));
const struct syscall_entry *unused_syscall_entry __attribute__((unused));
const struct deny_connect_key *unused_deny_connect_key __attribute__((unused));
