/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The process sensor: exec, fork and exit of every thread group on the node.
 * Each hook exists twice, as tp_btf and as raw_tp; user space attaches the
 * pair the kernel supports (internal/kernel/sensor.go) and the logic is shared.
 * It also keeps procs, the binary of every process, for matchBinaries. */
#pragma once

#include "common.h"
#include "path.h"

#define ARGS_MAX 4095
#define CGROUP_NAME_MAX 256
/* filename, cwd and args are each below VIGIL_PATH_MAX, the cgroup name far
 * below; the packed data fits 3 * 4096 + 256, and the slack past the mask
 * keeps every masked offset plus a bounded length inside the buffer. */
#define EXEC_DATA_MASK 0x3fff
#define EXEC_DATA_SIZE (EXEC_DATA_MASK + 1 + VIGIL_PATH_MAX)

enum exec_flags {
	EXEC_ARGS_TRUNCATED = 1 << 0,
	EXEC_CWD_TRUNCATED = 1 << 1,
	EXEC_FILENAME_TRUNCATED = 1 << 2,
	EXEC_CWD_UNRESOLVED = 1 << 3,
	EXEC_DENIED = 1 << 4, /* killed at exec: its binary is in deny_exec */
};

struct exec_record {
	struct record_header hdr;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 egid;
	__u32 flags;
	__u64 start_time; /* task start, CLOCK_BOOTTIME */
	__u64 cgroup_id;
	__u16 filename_len;
	__u16 cwd_len;
	__u16 args_len;
	__u16 cgroup_name_len;
	__u32 args_size; /* bytes of arguments before truncation */
	__u32 pad;
	char data[EXEC_DATA_SIZE];
};

struct fork_record {
	struct record_header hdr;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 pad;
	__u64 start_time;
};

struct exit_record {
	struct record_header hdr;
	__u32 pid;
	__u32 tid;
	__u32 exit_code; /* wait(2) status: code << 8, or the signal */
	__u32 pad;
	__u64 start_time;
};

/* Fork and exit records live on the stack; these keep their types in BTF so
 * that bpf2go generates the Go side of the layout. */
const struct fork_record *unused_fork_record __attribute__((unused));
const struct exit_record *unused_exit_record __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_record);
} exec_heap SEC(".maps");

/* Binaries are kept, and matched, on their first BINARY_MAX - 1 bytes. */
#define BINARY_MAX 256

struct proc_info {
	__u32 bin_len;
	__u32 flags;
	char bin[BINARY_MAX]; /* zero padded: it is used as a map key */
};

/* procs holds what selectors need to know of every running thread group.
 * Exec writes it, fork copies it, exit deletes it; user space fills it from
 * /proc at start and makes relative exec paths absolute. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct proc_info);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct proc_info);
} proc_heap SEC(".maps");

/* deny_exec: binaries that must not run on this node, put there by the
 * enforcement processor (deny_exec action) and listed or removed with
 * `vigil enforcement`. The key is a proc_info with flags 0: the path, zero
 * padded. The map is pinned (internal/kernel/deny.go), so entries outlive
 * a collector restart. */
struct deny_value {
	__u64 expires; /* CLOCK_BOOTTIME ns; 0 never */
	__u64 rule;    /* user space's id of the rule that added it */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct proc_info);
	__type(value, struct deny_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} deny_exec SEC(".maps");

static __always_inline int denied(struct deny_value *v)
{
	return v && (v->expires == 0 || bpf_ktime_get_boot_ns() < v->expires);
}

static __always_inline void remember_binary(__u32 tgid, const char *filename, __u32 len,
					    __u32 *flags)
{
	__u32 zero = 0;
	struct proc_info *info = bpf_map_lookup_elem(&proc_heap, &zero);

	if (!info)
		return;
	__builtin_memset(info, 0, sizeof(*info));
	if (len > BINARY_MAX - 1)
		len = BINARY_MAX - 1;
	info->bin_len = len;
	bpf_probe_read_kernel(info->bin, len & (BINARY_MAX - 1), filename);
	bpf_map_update_elem(&procs, &tgid, info, BPF_ANY);
	/* A denied binary is killed here, before its first instruction:
	 * sched_process_exec runs before the return to user space. */
	if (denied(bpf_map_lookup_elem(&deny_exec, info))) {
		bpf_send_signal(9);
		*flags |= EXEC_DENIED;
	}
}

static __always_inline __u32 read_cwd(struct exec_record *rec, __u32 off, struct task_struct *task)
{
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&path_heap, &zero);
	bool truncated;

	if (!pb) {
		rec->flags |= EXEC_CWD_UNRESOLVED;
		return 0;
	}
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	int start = resolve_path(BPF_CORE_READ(fs, pwd.dentry), BPF_CORE_READ(fs, pwd.mnt),
				 BPF_CORE_READ(fs, root.dentry), BPF_CORE_READ(fs, root.mnt),
				 0, &truncated);
	if (start < 0 || start >= VIGIL_PATH_MAX) {
		rec->flags |= EXEC_CWD_UNRESOLVED;
		return 0;
	}
	if (truncated)
		rec->flags |= EXEC_CWD_TRUNCATED;
	__u32 len = VIGIL_PATH_MAX - start;

	bpf_probe_read_kernel(&rec->data[off & EXEC_DATA_MASK], len & (VIGIL_PATH_MAX - 1),
			      &pb->buf[start & (VIGIL_PATH_MAX - 1)]);
	return len & (VIGIL_PATH_MAX - 1);
}

static __always_inline int handle_exec(struct task_struct *task, struct linux_binprm *bprm)
{
	__u32 zero = 0;
	struct exec_record *rec = bpf_map_lookup_elem(&exec_heap, &zero);

	if (!rec)
		return 0;

	fill_header(&rec->hdr, RECORD_EXEC);
	rec->pid = BPF_CORE_READ(task, tgid);
	rec->tid = BPF_CORE_READ(task, pid);
	rec->ppid = BPF_CORE_READ(task, real_parent, tgid);
	rec->uid = BPF_CORE_READ(task, cred, uid.val);
	rec->euid = BPF_CORE_READ(task, cred, euid.val);
	rec->gid = BPF_CORE_READ(task, cred, gid.val);
	rec->egid = BPF_CORE_READ(task, cred, egid.val);
	rec->start_time = BPF_CORE_READ(task, start_boottime);
	rec->cgroup_id = bpf_get_current_cgroup_id();
	rec->flags = 0;

	__u32 off = 0;
	long n = bpf_probe_read_kernel_str(&rec->data[0], VIGIL_PATH_MAX,
					   BPF_CORE_READ(bprm, filename));
	if (n < 1)
		n = 1;
	if (n == VIGIL_PATH_MAX)
		rec->flags |= EXEC_FILENAME_TRUNCATED;
	/* Lengths exclude the NUL the helper writes. */
	rec->filename_len = n - 1;
	off = (n - 1) & (VIGIL_PATH_MAX - 1);
	remember_binary(rec->pid, rec->data, rec->filename_len, &rec->flags);

	__u32 cwd_len = read_cwd(rec, off, task);
	rec->cwd_len = cwd_len;
	off += cwd_len;

	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	unsigned long arg_start = BPF_CORE_READ(mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(mm, arg_end);
	__u64 args = arg_end > arg_start ? arg_end - arg_start : 0;

	rec->args_size = args;
	if (args > ARGS_MAX) {
		args = ARGS_MAX;
		rec->flags |= EXEC_ARGS_TRUNCATED;
	}
	if (bpf_probe_read_user(&rec->data[off & EXEC_DATA_MASK], args & ARGS_MAX,
				(void *)arg_start))
		args = 0;
	rec->args_len = args;
	off += args & ARGS_MAX;

	n = bpf_probe_read_kernel_str(&rec->data[off & EXEC_DATA_MASK], CGROUP_NAME_MAX,
				      BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, name));
	if (n < 1)
		n = 1;
	rec->cgroup_name_len = n - 1;
	off += (n - 1) & (CGROUP_NAME_MAX - 1);

	__u64 size = offsetof(struct exec_record, data) + (off & EXEC_DATA_MASK);
	if (size > sizeof(*rec))
		size = sizeof(*rec);
	emit(rec, size);
	return 0;
}

static __always_inline int handle_fork(struct task_struct *child)
{
	struct fork_record rec = {};
	__u32 tgid = BPF_CORE_READ(child, tgid);
	__u32 tid = BPF_CORE_READ(child, pid);

	/* A new thread is not a new process. */
	if (tgid != tid)
		return 0;
	fill_header(&rec.hdr, RECORD_FORK);
	rec.pid = tgid;
	rec.tid = tid;
	rec.ppid = BPF_CORE_READ(child, real_parent, tgid);
	rec.start_time = BPF_CORE_READ(child, start_boottime);

	/* Until it execs, the child runs its parent's binary. */
	struct proc_info *parent = bpf_map_lookup_elem(&procs, &rec.ppid);
	if (parent)
		bpf_map_update_elem(&procs, &tgid, parent, BPF_ANY);
	emit(&rec, sizeof(rec));
	return 0;
}

static __always_inline int handle_exit(struct task_struct *task)
{
	struct exit_record rec = {};

	/* The tracepoint fires per thread, after the thread has left
	 * signal->live; the process is gone when the last one leaves. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	fill_header(&rec.hdr, RECORD_EXIT);
	rec.pid = BPF_CORE_READ(task, tgid);
	rec.tid = BPF_CORE_READ(task, pid);
	rec.exit_code = BPF_CORE_READ(task, exit_code);
	rec.start_time = BPF_CORE_READ(task, group_leader, start_boottime);
	bpf_map_delete_elem(&procs, &rec.pid);
	emit(&rec, sizeof(rec));
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(vigil_exec_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return handle_exec(p, bprm);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(vigil_fork_btf, struct task_struct *parent, struct task_struct *child)
{
	return handle_fork(child);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(vigil_exit_btf, struct task_struct *p)
{
	return handle_exit(p);
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(vigil_exec_raw, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return handle_exec(p, bprm);
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(vigil_fork_raw, struct task_struct *parent, struct task_struct *child)
{
	return handle_fork(child);
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(vigil_exit_raw, struct task_struct *p)
{
	return handle_exit(p);
}
