/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Namespaces: their types, as matchNamespaces and matchNamespaceChanges
 * number them, and the current inode number of each. */
#pragma once

#include "common.h"

/* Namespace types of matchNamespaces; internal/kernel mirrors them. */
enum ns_type {
	NS_UTS = 1,
	NS_IPC,
	NS_MNT,
	NS_PID,
	NS_PID_FOR_CHILDREN,
	NS_NET,
	NS_TIME,
	NS_TIME_FOR_CHILDREN,
	NS_CGROUP,
	NS_USER,
};

/* NS_TYPES is the number of namespace types, NS_UTS to NS_USER. */
#define NS_TYPES 10

/* ns_inum is the inode number of the current task's namespace of type ns,
 * as /proc/PID/ns/ shows it; 0 when the task has none (it is exiting) or
 * the kernel lacks the type. */
static __always_inline __u32 ns_inum(struct task_struct *task, __u8 ns)
{
	struct nsproxy *nsp = BPF_CORE_READ(task, nsproxy);

	switch (ns) {
	case NS_UTS:
		return BPF_CORE_READ(nsp, uts_ns, ns.inum);
	case NS_IPC:
		return BPF_CORE_READ(nsp, ipc_ns, ns.inum);
	case NS_MNT:
		return BPF_CORE_READ(nsp, mnt_ns, ns.inum);
	case NS_PID: {
		/* task_active_pid_ns: the namespace of the task's own pid at
		 * its deepest level, not nsproxy's, which is for children. */
		struct pid *pid = BPF_CORE_READ(task, thread_pid);
		unsigned int level = BPF_CORE_READ(pid, level);
		struct upid up = {};

		bpf_probe_read_kernel(&up, sizeof(up), (void *)&pid->numbers[0] + (level & 31) * sizeof(struct upid));
		return BPF_CORE_READ(up.ns, ns.inum);
	}
	case NS_PID_FOR_CHILDREN:
		return BPF_CORE_READ(nsp, pid_ns_for_children, ns.inum);
	case NS_NET:
		return BPF_CORE_READ(nsp, net_ns, ns.inum);
	case NS_TIME:
		if (!bpf_core_field_exists(nsp->time_ns))
			return 0;
		return BPF_CORE_READ(nsp, time_ns, ns.inum);
	case NS_TIME_FOR_CHILDREN:
		if (!bpf_core_field_exists(nsp->time_ns_for_children))
			return 0;
		return BPF_CORE_READ(nsp, time_ns_for_children, ns.inum);
	case NS_CGROUP:
		return BPF_CORE_READ(nsp, cgroup_ns, ns.inum);
	case NS_USER:
		return BPF_CORE_READ(task, cred, user_ns, ns.inum);
	}
	return 0;
}

