/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The process sensor: exec, fork and exit of every thread group on the node.
 * Each hook exists twice, as tp_btf and as raw_tp; user space attaches the
 * pair the kernel supports (internal/kernel/sensor.go) and the logic is shared.
 * It also keeps procs, the binary of every process, for matchBinaries. */
#pragma once

#include "common.h"
#include "path.h"
#include "ns.h"

#define ARGS_MAX 4095
#define CGROUP_NAME_MAX 256
/* The environment is read only when user space asks (exec_config), at most
 * ENV_MAX bytes of it. An enum, so that Go has it generated. */
enum exec_limits {
	ENV_MAX = 2047,
};
/* filename, cwd and args are each below VIGIL_PATH_MAX, the cgroup name and
 * the environment far below; the packed data fits 3 * 4096 + 256 + 2048,
 * and the slack past the mask keeps every masked offset plus a bounded
 * length inside the buffer. */
#define EXEC_DATA_MASK 0x3fff
#define EXEC_DATA_SIZE (EXEC_DATA_MASK + 1 + VIGIL_PATH_MAX)

enum exec_flags {
	EXEC_ARGS_TRUNCATED = 1 << 0,
	EXEC_CWD_TRUNCATED = 1 << 1,
	EXEC_FILENAME_TRUNCATED = 1 << 2,
	EXEC_CWD_UNRESOLVED = 1 << 3,
	EXEC_DENIED = 1 << 4, /* killed at exec: its binary is in deny_exec */
	/* The file's setuid (setgid) bit made the effective uid (gid) its
	 * owner's, other than the real one. */
	EXEC_SETUID = 1 << 5,
	EXEC_SETGID = 1 << 6,
	/* The kernel ran the program in secure mode (AT_SECURE): the exec
	 * raised privileges, by setuid, setgid or file capabilities. */
	EXEC_SECURE = 1 << 7,
	/* The file is in no mounted tree (a memfd), unlinked, or on tmpfs. */
	EXEC_MEMFD = 1 << 8,
	EXEC_DELETED = 1 << 9,
	EXEC_TMPFS = 1 << 10,
	/* The process descends from its container's init (pid 1 of its pid
	 * namespace), not from an exec into the container. */
	EXEC_IN_INIT_TREE = 1 << 11,
	EXEC_ENV_TRUNCATED = 1 << 12,
};

/* proc_info flags. */
enum proc_flags {
	PROC_IN_INIT_TREE = 1 << 0,
};

#define TMPFS_MAGIC 0x01021994
#define S_ISUID 04000
#define S_ISGID 02000

/* exec_config is set by user space: env_max, the bytes of environment each
 * exec record carries (0: none). */
struct exec_settings {
	__u32 env_max;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_settings);
} exec_config SEC(".maps");

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
	__u16 env_len;
	__u16 pad;
	/* The credentials the program runs with. */
	__u64 cap_effective;
	__u64 cap_permitted;
	__u64 cap_inheritable;
	__u32 auid; /* loginuid; (u32)-1 when unset or not built in */
	/* Namespace inode numbers, as /proc/PID/ns shows them. */
	__u32 ns_mnt;
	__u32 ns_pid;
	__u32 ns_net;
	__u32 ns_uts;
	__u32 ns_ipc;
	__u32 ns_cgroup;
	__u32 ns_user;
	__u32 ns_time;
	__u32 pad2;
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
/* The flags too: Go reads them as generated constants, never restated. */
const enum exec_flags *unused_exec_flags __attribute__((unused));
const enum proc_flags *unused_proc_flags __attribute__((unused));
const enum exec_limits *unused_exec_limits __attribute__((unused));

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

/* exec_caps: each process's capability sets as its exec left them
 * (indexed by enum cap_set less one: effective, inheritable, permitted),
 * for matchCapabilityChanges, and its namespaces as it was forked or
 * exec'd (indexed by enum ns_type less one), for matchNamespaceChanges;
 * both compare them with the current ones. Fork copies the capabilities,
 * exit deletes the entry; processes found in /proc have none, and match no
 * change, as in Tetragon. */
struct exec_caps {
	__u64 c[3];
	__u32 ns[NS_TYPES];
};

/* exec_ns fills the namespaces of an exec_caps from task. */
static __always_inline void exec_ns(struct exec_caps *ec, struct task_struct *task)
{
	for (int t = 0; t < NS_TYPES; t++)
		ec->ns[t] = ns_inum(task, t + 1);
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct exec_caps);
} exec_caps SEC(".maps");

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
	/* The key of deny_exec is the path alone: the flags go in after. */
	if (len > BINARY_MAX - 1)
		len = BINARY_MAX - 1;
	info->bin_len = len;
	bpf_probe_read_kernel(info->bin, len & (BINARY_MAX - 1), filename);
	/* A denied binary is killed here, before its first instruction:
	 * sched_process_exec runs before the return to user space. */
	if (denied(bpf_map_lookup_elem(&deny_exec, info))) {
		bpf_send_signal(9);
		*flags |= EXEC_DENIED;
	}
	if (*flags & EXEC_IN_INIT_TREE)
		info->flags = PROC_IN_INIT_TREE;
	bpf_map_update_elem(&procs, &tgid, info, BPF_ANY);
}

/* read_exec_context fills the credentials, namespaces and file properties
 * of the program being run: what detections key on (privilege gained,
 * fileless, in a container's init tree). */
static __always_inline void read_exec_context(struct exec_record *rec, struct task_struct *task,
					      struct linux_binprm *bprm)
{
	const struct cred *cred = BPF_CORE_READ(task, cred);

	/* kernel_cap_t is a u64 from Linux 6.3 and two u32 before: the
	 * same 8 bytes either way. */
	bpf_core_read(&rec->cap_effective, 8, &cred->cap_effective);
	bpf_core_read(&rec->cap_permitted, 8, &cred->cap_permitted);
	bpf_core_read(&rec->cap_inheritable, 8, &cred->cap_inheritable);
	rec->ns_user = BPF_CORE_READ(cred, user_ns, ns.inum);
	rec->auid = (__u32)-1;
	if (bpf_core_field_exists(task->loginuid))
		rec->auid = BPF_CORE_READ(task, loginuid.val);

	struct nsproxy *nsp = BPF_CORE_READ(task, nsproxy);
	rec->ns_mnt = BPF_CORE_READ(nsp, mnt_ns, ns.inum);
	rec->ns_net = BPF_CORE_READ(nsp, net_ns, ns.inum);
	rec->ns_uts = BPF_CORE_READ(nsp, uts_ns, ns.inum);
	rec->ns_ipc = BPF_CORE_READ(nsp, ipc_ns, ns.inum);
	rec->ns_cgroup = BPF_CORE_READ(nsp, cgroup_ns, ns.inum);
	rec->ns_time = 0;
	if (bpf_core_field_exists(nsp->time_ns))
		rec->ns_time = BPF_CORE_READ(nsp, time_ns, ns.inum);

	/* The pid namespace the task runs in, and its pid there: pid 1 of a
	 * namespace below the host's is a container's init. */
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up = {};
	bpf_probe_read_kernel(&up, sizeof(up),
			      (void *)pid + bpf_core_field_offset(struct pid, numbers) +
				      (level & 31) * bpf_core_type_size(struct upid));
	rec->ns_pid = BPF_CORE_READ(up.ns, ns.inum);
	if (level > 0) {
		struct proc_info *before = bpf_map_lookup_elem(&procs, &rec->pid);

		if (up.nr == 1 || (before && (before->flags & PROC_IN_INIT_TREE)))
			rec->flags |= EXEC_IN_INIT_TREE;
	}

	struct file *file = BPF_CORE_READ(bprm, file);
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	umode_t mode = BPF_CORE_READ(inode, i_mode);

	switch (dentry_kind(dentry, BPF_CORE_READ(file, f_path.mnt))) {
	case DENTRY_PSEUDO:
		rec->flags |= EXEC_MEMFD;
		break;
	case DENTRY_UNLINKED:
		rec->flags |= EXEC_DELETED;
		break;
	default:
		if (BPF_CORE_READ(inode, i_sb, s_magic) == TMPFS_MAGIC)
			rec->flags |= EXEC_TMPFS;
	}
	if ((mode & S_ISUID) && rec->euid == BPF_CORE_READ(inode, i_uid.val) && rec->euid != rec->uid)
		rec->flags |= EXEC_SETUID;
	if ((mode & S_ISGID) && rec->egid == BPF_CORE_READ(inode, i_gid.val) && rec->egid != rec->gid)
		rec->flags |= EXEC_SETGID;
	if (bpf_core_field_exists(bprm->secureexec) && BPF_CORE_READ_BITFIELD_PROBED(bprm, secureexec))
		rec->flags |= EXEC_SECURE;
}

/* read_env copies the start of the new program's environment after off,
 * when user space asked for it; returns its length. */
static __always_inline __u32 read_env(struct exec_record *rec, __u32 off, struct mm_struct *mm)
{
	__u32 zero = 0;
	struct exec_settings *cfg = bpf_map_lookup_elem(&exec_config, &zero);

	if (!cfg || !cfg->env_max)
		return 0;
	unsigned long start = BPF_CORE_READ(mm, env_start);
	unsigned long end = BPF_CORE_READ(mm, env_end);
	__u64 n = end > start ? end - start : 0;

	if (n > cfg->env_max || n > ENV_MAX) {
		n = cfg->env_max < ENV_MAX ? cfg->env_max : ENV_MAX;
		rec->flags |= EXEC_ENV_TRUNCATED;
	}
	if (bpf_probe_read_user(&rec->data[off & EXEC_DATA_MASK], n & ENV_MAX, (void *)start))
		return 0;
	return n & ENV_MAX;
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
	read_exec_context(rec, task, bprm);

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
	{
		struct exec_caps ec = {.c = {rec->cap_effective, rec->cap_inheritable, rec->cap_permitted}};

		exec_ns(&ec, task);
		bpf_map_update_elem(&exec_caps, &rec->pid, &ec, BPF_ANY);
	}

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

	__u32 env = read_env(rec, off, mm);
	rec->env_len = env;
	off += env;

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
	struct exec_caps *caps = bpf_map_lookup_elem(&exec_caps, &rec.ppid);
	if (caps) {
		/* The child's own namespaces: a clone into new ones is not
		 * a change (Tetragon takes them at clone too). */
		struct exec_caps ec = *caps;

		exec_ns(&ec, child);
		bpf_map_update_elem(&exec_caps, &tgid, &ec, BPF_ANY);
	}
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
	bpf_map_delete_elem(&exec_caps, &rec.pid);
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
