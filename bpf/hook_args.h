/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Policy hooks: reading a hooked function's arguments into the scratch, by
 * type (paths, sockets, credentials, iov_iter, BPF objects, resolve). */
#pragma once

#include "hook_match.h"

/* read_path writes the path of (dentry, mnt), as the current task sees it,
 * into slot; returns the length kept (the start of the path). Files
 * outside any mounted tree and unlinked files are named as d_path() names
 * them (name_pseudo): "socket:[ino]", "/memfd:x (deleted)". */
__noinline __u32 read_path(ARG_PARAMS, __u64 dentry_addr, __u64 mnt_addr)
{
	ARG_DECL;
	struct dentry *dentry = (struct dentry *)dentry_addr;
	struct vfsmount *mnt = (struct vfsmount *)mnt_addr;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	bool truncated = false;
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&path_heap, &zero);
	int start = -1, tail = 0;

	if (!slot || !trunc || !pb)
		return 0;
	start = name_special(dentry, mnt, pb);
	if (start == NAME_DELETED) {
		start = -1;
		tail = sizeof(DELETED_SUFFIX) - 1;
	}
	if (start < 0)
		start = resolve_path(dentry, mnt, BPF_CORE_READ(fs, root.dentry), BPF_CORE_READ(fs, root.mnt),
				     tail, &truncated);
	if (start < 0 || start >= VIGIL_PATH_MAX)
		return 0;
	__u32 len = VIGIL_PATH_MAX - start;
	if (len > STR_SLOT - 1) {
		len = STR_SLOT - 1;
		truncated = true;
	}
	*trunc = truncated;
	bpf_probe_read_kernel(slot->s, len & (STR_SLOT - 1), &pb->buf[start & (VIGIL_PATH_MAX - 1)]);
	return len;
}

/* fd_file is the struct file behind fd in the current task's table. */
static __always_inline struct file *fd_file(__u64 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	struct file *file = NULL;

	if (fd >= max)
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

/* read_file_at reads the path of dentry (mount mnt) into argument i, and
 * the inode's mode for FileType. */
static __always_inline void read_file_at(struct hook_scratch *s, int i, struct dentry *d, struct vfsmount *mnt)
{
	if (!d)
		return;
	s->a.slen[i] = read_path(ARG_ARGS(s, i), (__u64)d, (__u64)mnt);
	s->a.mode[i] = BPF_CORE_READ(d, d_inode, i_mode);
}

/* read_char_iovec reads the first buffer of the user struct iovec array at
 * raw, of count entries, into slot; more entries, or a longer buffer, mark
 * it truncated (Tetragon concatenates up to 7). Returns the length kept. A
 * global function: its iovec is on its own stack, not on the hook's. */
__noinline __u32 read_char_iovec(ARG_PARAMS, __u64 raw, __u64 count)
{
	ARG_DECL;
	struct iovec iov = {};

	if (!slot || !trunc || bpf_probe_read_user(&iov, sizeof(iov), (void *)raw))
		return 0;
	__u64 size = (__u64)iov.iov_len;

	if (size > STR_SLOT - 1) {
		size = STR_SLOT - 1;
		*trunc = 1;
	}
	if (count > 1)
		*trunc = 1;
	if (size && !bpf_probe_read_user(slot->s, BOUND(size, 255), iov.iov_base))
		return size;
	return 0;
}

/* read_sockaddr_un reads the path of the struct sockaddr_un at raw (user
 * memory; kernel memory when kernel is set) into slot, an abstract name
 * (a leading NUL) as "@name", as Tetragon shows it; nothing for another
 * family. Returns the length kept. A global function: verified once. */
__noinline __u32 read_sockaddr_un(ARG_PARAMS, __u64 raw, int kernel)
{
	ARG_DECL;
	__u16 family = 0;
	char first = 0;
	long n;

	if (!slot || !trunc)
		return 0;
	if (kernel) {
		bpf_probe_read_kernel(&family, sizeof(family), (void *)raw);
		bpf_probe_read_kernel(&first, 1, (void *)raw + 2);
	} else {
		bpf_probe_read_user(&family, sizeof(family), (void *)raw);
		bpf_probe_read_user(&first, 1, (void *)raw + 2);
	}
	if (family != 1 /* AF_UNIX */)
		return 0;
	__u32 at = 0;

	if (!first) {
		slot->s[0] = '@';
		at = 1;
		raw++;
	}
	/* sun_path is 108 bytes. */
	n = kernel ? bpf_probe_read_kernel_str(&slot->s[at & 1], 108, (void *)raw + 2)
		   : bpf_probe_read_user_str(&slot->s[at & 1], 108, (void *)raw + 2);
	if (n <= 0)
		return at;
	return (at + n - 1) & 0xff;
}

/* read_sockaddr reads the struct sockaddr at raw (user memory; kernel
 * memory when kernel is set) into out as a sock argument's source end:
 * family, address and port, which SAddr, SPort and Family match, as
 * Tetragon's sockaddr. Only AF_INET and AF_INET6 carry an address. A global
 * function: verified once. */
__noinline int read_sockaddr(OUT_PARAMS(struct sock_arg), __u64 raw, int kernel)
{
	OUT_DECL(struct sock_arg);
	struct sockaddr_in6 sa = {};
	__u32 size = sizeof(struct sockaddr_in);
	long err;

	if (!out)
		return 0;
	__builtin_memset(out, 0, sizeof(*out));
	if (!raw)
		return 0;
	err = kernel ? bpf_probe_read_kernel(&sa.sin6_family, sizeof(sa.sin6_family), (void *)raw)
		     : bpf_probe_read_user(&sa.sin6_family, sizeof(sa.sin6_family), (void *)raw);
	if (err)
		return 0;
	out->family = sa.sin6_family;
	if (out->family != VIGIL_AF_INET && out->family != VIGIL_AF_INET6)
		return 0;
	/* Read only what the family needs, which the caller's buffer holds:
	 * a sockaddr_in, or a sockaddr_in6 up to its address (24 bytes, the
	 * shortest length connect and bind accept; sin6_scope_id may be
	 * missing). */
	if (out->family == VIGIL_AF_INET6)
		size = offsetof(struct sockaddr_in6, sin6_scope_id);
	err = kernel ? bpf_probe_read_kernel(&sa, size, (void *)raw) : bpf_probe_read_user(&sa, size, (void *)raw);
	if (err)
		return 0;
	if (out->family == VIGIL_AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&sa;

		out->saddr = in->sin_addr.s_addr;
		out->sport = bpf_ntohs(in->sin_port);
	} else {
		__builtin_memcpy(out->saddr6, &sa.sin6_addr, sizeof(out->saddr6));
		out->sport = bpf_ntohs(sa.sin6_port);
	}
	return 0;
}

/* read_sock reads the struct sock at raw into out: its addresses, ports,
 * family, protocol and state (Tetragon's sock argument). A global function:
 * verified once, whatever the callers' loops. */
__noinline int read_sock(OUT_PARAMS(struct sock_arg), __u64 raw)
{
	OUT_DECL(struct sock_arg);
	struct sock *sk = (struct sock *)raw;

	if (!out)
		return 0;
	__builtin_memset(out, 0, sizeof(*out));
	if (!sk)
		return 0;
	out->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	out->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	out->protocol = BPF_CORE_READ(sk, sk_protocol);
	out->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	out->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (out->family == VIGIL_AF_INET) {
		out->saddr = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		out->daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	} else if (out->family == VIGIL_AF_INET6) {
		BPF_CORE_READ_INTO(&out->saddr6, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&out->daddr6, sk, __sk_common.skc_v6_daddr);
	}
	return 0;
}

/* read_skb reads the addresses, ports and protocol of the IPv4 or IPv6
 * packet in skb into out (Tetragon's skb argument). */
__noinline int read_skb(OUT_PARAMS(struct sock_arg), __u64 raw)
{
	OUT_DECL(struct sock_arg);
	struct sk_buff *skb = (struct sk_buff *)raw;

	if (!out)
		return 0;
	__builtin_memset(out, 0, sizeof(*out));
	if (!skb)
		return 0;
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u32 th;
	__u8 version = 0;

	bpf_probe_read_kernel(&version, 1, head + nh);
	version >>= 4;
	if (version == 4) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return 0;
		out->family = VIGIL_AF_INET;
		out->protocol = ip.protocol;
		out->saddr = ip.saddr;
		out->daddr = ip.daddr;
		/* The transport header follows the IP header: skb's own
		 * offset is unset, or the network header's, until the IP
		 * layer has parsed the packet. */
		th = nh + ip.ihl * 4;
	} else if (version == 6) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return 0;
		out->family = VIGIL_AF_INET6;
		out->protocol = ip6.nexthdr;
		__builtin_memcpy(out->saddr6, &ip6.saddr, 16);
		__builtin_memcpy(out->daddr6, &ip6.daddr, 16);
		th = nh + sizeof(ip6); /* extension headers are not followed */
	} else {
		return 0;
	}
	switch (out->protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP: {
		__be16 ports[2] = {};

		bpf_probe_read_kernel(ports, sizeof(ports), head + th);
		out->sport = bpf_ntohs(ports[0]);
		out->dport = bpf_ntohs(ports[1]);
	}
	}
	return 0;
}

/* The iov_iter of kernels before 6.4 named its iovec array iov. */
struct iov_iter___v61 {
	const struct iovec *iov;
} __attribute__((preserve_access_index));

/* Before 5.14 the iterator's type shared a field with its direction, the
 * low bit (READ or WRITE). */
struct iov_iter___v510 {
	unsigned int type;
} __attribute__((preserve_access_index));

/* read_iov_iter copies the first bytes of the user data an iov_iter
 * describes (ITER_UBUF, or the first ITER_IOVEC segment) into slot and
 * returns how many; kernel-memory iterators read as empty. */
__noinline int read_iov_iter(ARG_PARAMS, __u64 raw)
{
	ARG_DECL;
	struct iov_iter *it = (struct iov_iter *)raw;

	if (!slot || !trunc || !it)
		return 0;
	__u8 type;

	if (bpf_core_field_exists(it->iter_type))
		type = BPF_CORE_READ(it, iter_type);
	else
		type = BPF_CORE_READ((struct iov_iter___v510 *)it, type) & ~1;
	__u64 off = BPF_CORE_READ(it, iov_offset);
	__u64 count = BPF_CORE_READ(it, count);
	void *base = NULL;

	if (bpf_core_enum_value_exists(enum iter_type, ITER_UBUF) &&
	    type == bpf_core_enum_value(enum iter_type, ITER_UBUF)) {
		base = BPF_CORE_READ(it, ubuf);
	} else if (type == bpf_core_enum_value(enum iter_type, ITER_IOVEC)) {
		const struct iovec *iov;
		__u64 len;

		if (bpf_core_field_exists(it->__iov))
			iov = BPF_CORE_READ(it, __iov);
		else
			iov = BPF_CORE_READ((struct iov_iter___v61 *)it, iov);
		base = BPF_CORE_READ(iov, iov_base);
		len = BPF_CORE_READ(iov, iov_len);
		if (len < count + off)
			count = len > off ? len - off : 0;
	}
	if (!base)
		return 0;
	if (count > STR_SLOT - 1) {
		count = STR_SLOT - 1;
		*trunc = 1;
	}
	if (!count || bpf_probe_read_user(slot->s, BOUND(count, 255), base + off))
		return 0;
	return count;
}

/* read_cred reads the ids, securebits, capabilities and user namespace of
 * the struct cred at raw into out (Tetragon's cred argument). */
__noinline int read_cred(OUT_PARAMS(struct cred_arg), __u64 raw)
{
	OUT_DECL(struct cred_arg);
	const struct cred *c = (const struct cred *)raw;

	if (!out)
		return 0;
	__builtin_memset(out, 0, sizeof(*out));
	if (!c)
		return 0;
	out->uid = BPF_CORE_READ(c, uid.val);
	out->gid = BPF_CORE_READ(c, gid.val);
	out->suid = BPF_CORE_READ(c, suid.val);
	out->sgid = BPF_CORE_READ(c, sgid.val);
	out->euid = BPF_CORE_READ(c, euid.val);
	out->egid = BPF_CORE_READ(c, egid.val);
	out->fsuid = BPF_CORE_READ(c, fsuid.val);
	out->fsgid = BPF_CORE_READ(c, fsgid.val);
	out->securebits = BPF_CORE_READ(c, securebits);
	out->user_ns = BPF_CORE_READ(c, user_ns, ns.inum);
	/* kernel_cap_t read as 8 bytes is the mask before and after 6.3
	 * (caps_match). */
	BPF_CORE_READ_INTO(&out->cap_permitted, c, cap_permitted);
	BPF_CORE_READ_INTO(&out->cap_effective, c, cap_effective);
	BPF_CORE_READ_INTO(&out->cap_inheritable, c, cap_inheritable);
	return 0;
}

/* read_bpf_object reads the BPF or perf object at raw, an argument of type
 * (ARG_BPF_ATTR, ARG_PERF_EVENT, ARG_BPF_MAP), into the slot; returns the
 * bytes it holds. */
__noinline __u32 read_bpf_object(SLOT_PARAMS, __u64 raw, __u32 type)
{
	SLOT_DECL;

	if (!slot)
		return 0;
	__builtin_memset(slot->s, 0, sizeof(struct perf_event_arg));
	if (type == ARG_BPF_ATTR) {
		struct bpf_attr_arg *out = (struct bpf_attr_arg *)slot->s;
		const union bpf_attr *attr = (const union bpf_attr *)raw;

		out->prog_type = BPF_CORE_READ(attr, prog_type);
		out->insn_cnt = BPF_CORE_READ(attr, insn_cnt);
		BPF_CORE_READ_INTO(&out->prog_name, attr, prog_name);
		return sizeof(*out);
	}
	if (type == ARG_BPF_PROG) {
		struct bpf_attr_arg *out = (struct bpf_attr_arg *)slot->s;
		const struct bpf_prog *p = (const struct bpf_prog *)raw;

		out->prog_type = BPF_CORE_READ(p, type);
		out->insn_cnt = BPF_CORE_READ(p, len);
		BPF_CORE_READ_INTO(&out->prog_name, p, aux, name);
		return sizeof(*out);
	}
	if (type == ARG_BPF_MAP) {
		struct bpf_map_arg *out = (struct bpf_map_arg *)slot->s;
		const struct bpf_map *m = (const struct bpf_map *)raw;

		out->map_type = BPF_CORE_READ(m, map_type);
		out->key_size = BPF_CORE_READ(m, key_size);
		out->value_size = BPF_CORE_READ(m, value_size);
		out->max_entries = BPF_CORE_READ(m, max_entries);
		BPF_CORE_READ_INTO(&out->map_name, m, name);
		return sizeof(*out);
	}
	struct perf_event_arg *out = (struct perf_event_arg *)slot->s;
	const struct perf_event *ev = (const struct perf_event *)raw;

	out->type = BPF_CORE_READ(ev, attr.type);
	out->config = BPF_CORE_READ(ev, attr.config);
	out->probe_offset = BPF_CORE_READ(ev, attr.probe_offset);
	/* The caller's pointer to the function name of a kprobe event (config1
	 * of other events: a read that fails leaves it empty), still in the
	 * perf_event_open call that allocates the event. */
	bpf_probe_read_user_str(out->kprobe_func, sizeof(out->kprobe_func),
				(const void *)BPF_CORE_READ(ev, attr.kprobe_func));
	return sizeof(*out);
}

/* resolve_arg follows an argument's resolve path from its value. */
static __always_inline __u64 resolve_arg(const struct arg_conf *ac, __u64 p)
{
	for (int i = 0; i < MAX_RESOLVE; i++) {
		if (i >= ac->nres)
			break;
		__u16 op = ac->res[i];

		if (op & RES_DEREF) {
			__u64 v = 0;

			bpf_probe_read_kernel(&v, sizeof(v), (void *)p);
			p = v;
		} else {
			p += op;
		}
	}
	if (ac->res_load) {
		__u64 v = 0;
		__u32 n = ac->res_load;

		bpf_probe_read_kernel(&v, sizeof(v), (void *)p);
		if (n < 8)
			v &= (1ULL << ((n & 7) * 8)) - 1;
		p = v;
	}
	return p;
}

static __always_inline __s64 int_value(__u64 raw, __u8 flags)
{
	switch (flags & ARGF_SIZE_MASK) {
	case 0 << 1:
		return flags & ARGF_SIGNED ? (__s64)(__s8)raw : (__s64)(__u8)raw;
	case 1 << 1:
		return flags & ARGF_SIGNED ? (__s64)(__s16)raw : (__s64)(__u16)raw;
	case 2 << 1:
		return flags & ARGF_SIGNED ? (__s64)(__s32)raw : (__s64)(__u32)raw;
	}
	return (__s64)raw;
}

/* read_args decodes the hooked function's raw arguments per the hook's
 * argument list. At return only char_buf arguments with returnCopy are read
 * (again), with the return value as their size. At entry it returns 1, and
 * leaves the arguments after it unread, when the hook's prefilter rules out
 * the argument it names (hook_conf.pre_arg): no selector can match. */
__noinline int read_args(HOOK_PARAMS, int at_return)
{
	HOOK_DECL;

	if (!s || !conf)
		return 0;
	for (int i = 0; i < MAX_ARGS; i++) {
		if (i >= conf->nargs)
			break;
		const struct arg_conf *ac = &conf->args[i];
		__u64 raw = s->a.raw[ac->index & 7];

		if (ac->source == SRC_CURRENT_TASK) {
			raw = bpf_get_current_task();
		} else if (ac->source == SRC_PT_REGS) {
			/* Read through the argument's slot, not the stack,
			 * which the call chain has little of to spare. */
			s->a.ival[i] = 0;
			if (s->regs)
				bpf_probe_read_kernel(&s->a.ival[i], sizeof(s->a.ival[i]),
						      (void *)s->regs + (ac->index & 31) * 8);
			raw = s->a.ival[i];
		}

		if (ac->nres || ac->res_load)
			raw = resolve_arg(ac, raw);

		if (at_return && !(ac->type == ARG_CHAR_BUF && (ac->flags & ARGF_RETURN_COPY)) &&
		    !(ac->flags & ARGF_AT_RETURN))
			continue;
		if (!at_return && (ac->flags & ARGF_AT_RETURN)) {
			/* The return value is not there yet. */
			s->a.ival[i] = 0;
			s->a.slen[i] = 0;
			continue;
		}
		s->a.ival[i] = int_value(raw, ac->flags);
		s->a.slen[i] = 0;
		s->a.mode[i] = 0;
		s->a.trunc[i] = 0;
		/* Strings and paths are used as keys: zero the slot's tail.
		 * Integers never touch their slot; clearing 256 bytes for them
		 * is most of a filtered-out hit's cost. */
		if (arg_is_text(ac->type))
			__builtin_memset(s->a.str[i].s, 0, sizeof(s->a.str[i].s));
		switch (ac->type) {
		case ARG_STRING: {
			long n = ac->flags & ARGF_KERNEL
					 ? bpf_probe_read_kernel_str(s->a.str[i].s, STR_SLOT, (void *)raw)
					 : bpf_probe_read_user_str(s->a.str[i].s, STR_SLOT, (void *)raw);
			if (n > 0) {
				s->a.slen[i] = n - 1;
				s->a.trunc[i] = n == STR_SLOT;
			}
			break;
		}
		case ARG_FD: {
			struct file *f = fd_file(raw);

			if (f)
				read_file_at(s, i, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt));
			break;
		}
		case ARG_DENTRY:
			/* No mount: the walk stops at the filesystem's root,
			 * as Tetragon's dentry does. */
			read_file_at(s, i, (struct dentry *)raw, 0);
			break;
		case ARG_FILE: {
			struct file *f = (struct file *)raw;

			if (f)
				read_file_at(s, i, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt));
			break;
		}
		case ARG_SOCKADDR:
			read_sockaddr(OUT_ARGS(struct sock_arg, s, i), raw, ac->flags & ARGF_KERNEL);
			s->a.slen[i] = sizeof(struct sock_arg);
			s->a.ival[i] = 0; /* the pointer says nothing, and would defeat rate limits */
			break;
		case ARG_SOCK:
		case ARG_SOCKET:
		case ARG_SKB: {
			struct sock_arg *sk = (struct sock_arg *)s->a.str[i].s;

			if (ac->type == ARG_SKB)
				read_skb(OUT_ARGS(struct sock_arg, s, i), raw);
			else
				read_sock(OUT_ARGS(struct sock_arg, s, i), ac->type == ARG_SOCKET ? (__u64)BPF_CORE_READ((struct socket *)raw, sk)
								     : raw);
			s->a.slen[i] = sizeof(*sk);
			s->a.ival[i] = (__u64)sk->daddr | ((__u64)sk->dport << 32);
			break;
		}
		case ARG_CRED:
			read_cred(OUT_ARGS(struct cred_arg, s, i), raw);
			s->a.slen[i] = sizeof(struct cred_arg);
			break;
		case ARG_CAPS: {
			__u64 caps = 0;

			bpf_probe_read_kernel(&caps, sizeof(caps), (void *)raw);
			s->a.ival[i] = caps;
			break;
		}
		case ARG_IOV_ITER:
			s->a.slen[i] = read_iov_iter(ARG_ARGS(s, i), raw);
			break;
		case ARG_BPF_ATTR:
		case ARG_PERF_EVENT:
		case ARG_BPF_MAP:
		case ARG_BPF_PROG:
			s->a.slen[i] = read_bpf_object(SLOT_ARGS(s, i), raw, ac->type);
			break;
		case ARG_KIOCB:
		case ARG_BINPRM: {
			struct file *f = ac->type == ARG_KIOCB ? BPF_CORE_READ((struct kiocb *)raw, ki_filp)
							       : BPF_CORE_READ((struct linux_binprm *)raw, file);

			if (f)
				read_file_at(s, i, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt));
			break;
		}
		case ARG_PATH: {
			struct path *p = (struct path *)raw;

			if (p)
				read_file_at(s, i, BPF_CORE_READ(p, dentry), BPF_CORE_READ(p, mnt));
			break;
		}
		case ARG_CHAR_IOVEC:
			s->a.slen[i] = read_char_iovec(ARG_ARGS(s, i), raw,
						       ac->size_index ? s->a.raw[(ac->size_index - 1) & 7] : 1);
			break;
		case ARG_SOCKADDR_UN:
			s->a.slen[i] = read_sockaddr_un(ARG_ARGS(s, i), raw, ac->flags & ARGF_KERNEL);
			break;
		case ARG_CHAR_BUF: {
			__u64 size = at_return ? (__u64)s->ret : s->a.raw[(ac->size_index - 1) & 7];
			if (at_return && s->ret < 0)
				size = 0;
			if (size > STR_SLOT - 1) {
				size = STR_SLOT - 1;
				s->a.trunc[i] = 1;
			}
			if (size && !bpf_probe_read_user(s->a.str[i].s, BOUND(size, 255), (void *)raw))
				s->a.slen[i] = size;
			break;
		}
		}
		if (i + 1 == conf->pre_arg && !at_return &&
		    !string_bloom(conf->pre_bloom, &s->a.str[i], s->a.slen[i]))
			return 1;
	}
	return 0;
}
