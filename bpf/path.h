/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Path resolution in the kernel, the BPF counterpart of d_path(): bpf_d_path()
 * is only allowed from LSM and fentry programs, and tracepoints need paths too. */
#pragma once

#include "common.h"

#define VIGIL_PATH_MAX 4096
#define VIGIL_NAME_MAX 255
/* Deeper paths are cut at the top and flagged. */
#define VIGIL_PATH_DEPTH 128

/* The walk writes backwards from the end of the first half; the second half
 * only exists so that a masked offset plus a bounded name length always stays
 * inside the buffer, which is what the verifier needs to see. */
struct path_walk {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	int pos;
	bool done;
	bool truncated;
};

struct path_buf {
	char buf[VIGIL_PATH_MAX * 2];
#ifdef VIGIL_COMPAT
	/* The compat build's walk keeps its state here (resolve_path). */
	struct path_walk w;
#endif
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_buf);
} path_heap SEC(".maps");


/* path_walk_step prepends one component, or crosses one mount, per call. It
 * runs under bpf_loop so that the verifier checks one step instead of every
 * combination of components and mount crossings an unrolled walk would have. */
static long path_walk_step(__u32 i, void *data)
{
	struct path_walk *w = data;
	/* Plain copies: BPF_CORE_READ on w->field would ask the kernel's BTF
	 * for struct path_walk, which only exists here. */
	struct dentry *dentry = w->dentry;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct mount *mnt = w->mnt;
	__u32 zero = 0;

	if (dentry == w->root_dentry && vfsmnt == w->root_mnt) {
		w->done = true;
		return 1;
	}
	struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);

	if (dentry == mnt_root || dentry == parent) {
		struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);

		/* A filesystem root that is not a mount root, or the top of
		 * the mount tree: there is nothing above to walk to. */
		if (dentry != mnt_root || mnt == mnt_parent) {
			w->done = true;
			return 1;
		}
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = mnt_parent;
		w->vfsmnt = (void *)mnt_parent + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}

	struct path_buf *pb = bpf_map_lookup_elem(&path_heap, &zero);
	if (!pb) {
		w->done = true;
		return 1;
	}
	struct qstr name = BPF_CORE_READ(dentry, d_name);
	__u32 len = name.len;

	if (len > VIGIL_NAME_MAX)
		len = VIGIL_NAME_MAX;
	int pos = w->pos - (int)(len + 1);
	if (pos < 0) {
		w->truncated = true;
		w->done = true;
		return 1;
	}
	pb->buf[pos & (VIGIL_PATH_MAX - 1)] = '/';
	bpf_probe_read_kernel(&pb->buf[(pos + 1) & (VIGIL_PATH_MAX - 1)], len & VIGIL_NAME_MAX,
			      name.name);
	w->pos = pos;
	w->dentry = parent;
	return 0;
}

#define SOCKFS_MAGIC 0x534F434B
#define PIPEFS_MAGIC 0x50495045
#define ANON_INODE_FS_MAGIC 0x09041934
#define DELETED_SUFFIX " (deleted)"

/* put_tail writes the n bytes of the literal s before pos in pb and
 * returns the new start. Byte stores of constants, unrolled: a literal
 * handed to a helper would be built on the stack, and the programs that
 * inline this have no stack to spare. */
static __always_inline int put_tail(struct path_buf *pb, int pos, const char *s, const int n)
{
	pos -= n;
#pragma unroll
	for (int i = 0; i < n; i++)
		pb->buf[(pos + i) & (VIGIL_PATH_MAX - 1)] = s[i];
	return pos;
}

/* name_pseudo names a file that has no place in a mounted tree (its dentry
 * is its own parent but not the root of its mount: sockets, pipes,
 * anonymous inodes, memfds) as d_path() does, "socket:[ino]", "pipe:[ino]",
 * "anon_inode:[eventfd]", "/memfd:name (deleted)", into pb at [start,
 * VIGIL_PATH_MAX); returns start, or -1 for a file with no name, which is
 * then named "/" as before. Detections key on these names: a shell whose
 * stdout is a socket, a program run from a memfd. */
static __always_inline int name_pseudo(struct dentry *dentry, struct path_buf *pb)
{
	unsigned long magic = BPF_CORE_READ(dentry, d_sb, s_magic);
	int pos = VIGIL_PATH_MAX;

	if (magic == SOCKFS_MAGIC || magic == PIPEFS_MAGIC) {
		__u64 ino = BPF_CORE_READ(dentry, d_inode, i_ino);

		pos = put_tail(pb, pos, "]", 1);
		for (int i = 0; i < 20; i++) {
			pos--;
			pb->buf[pos & (VIGIL_PATH_MAX - 1)] = '0' + ino % 10;
			ino /= 10;
			if (!ino)
				break;
		}
		if (magic == SOCKFS_MAGIC)
			return put_tail(pb, pos, "socket:[", 8);
		return put_tail(pb, pos, "pipe:[", 6);
	}
	/* Two reads, not a copy of the qstr: the stack of the programs that
	 * inline this is at its limit. */
	__u32 len = BPF_CORE_READ(dentry, d_name.len);

	if (!len)
		return -1;
	if (len > VIGIL_NAME_MAX)
		len = VIGIL_NAME_MAX;
	if (magic != ANON_INODE_FS_MAGIC)
		pos = put_tail(pb, pos, DELETED_SUFFIX, sizeof(DELETED_SUFFIX) - 1);
	pos -= len;
	bpf_probe_read_kernel(&pb->buf[pos & (VIGIL_PATH_MAX - 1)], len & VIGIL_NAME_MAX,
			      BPF_CORE_READ(dentry, d_name.name));
	if (magic == ANON_INODE_FS_MAGIC)
		return put_tail(pb, pos, "anon_inode:", 11);
	return put_tail(pb, pos, "/", 1);
}

/* What a dentry is to path naming: one that has no place in a mounted tree
 * (its own parent but not its mount's root: sockets, pipes, anonymous
 * inodes, memfds), one unlinked while open (d_unlinked: unhashed, not a
 * root), or a plain one. read_path names the first two as d_path() does;
 * the exec record flags them (EXEC_MEMFD, EXEC_DELETED). */
enum dentry_kind {
	DENTRY_PLAIN,
	DENTRY_PSEUDO,
	DENTRY_UNLINKED,
};

static __always_inline enum dentry_kind dentry_kind(struct dentry *dentry, struct vfsmount *mnt)
{
	if (dentry == BPF_CORE_READ(dentry, d_parent) && dentry != BPF_CORE_READ(mnt, mnt_root))
		return DENTRY_PSEUDO;
	if (!BPF_CORE_READ(dentry, d_hash.pprev))
		return DENTRY_UNLINKED;
	return DENTRY_PLAIN;
}

#define NAME_PLAIN -1
#define NAME_DELETED -2

/* name_special names a pseudo file (name_pseudo) and returns the start of
 * its name in pb; for an unlinked file it writes the " (deleted)" that
 * follows its path and returns NAME_DELETED; for any other NAME_PLAIN. A
 * function of its own so that its reads take no room in the frames of the
 * programs that resolve paths, whose stacks add up to the verifier's
 * limit on Linux 6.1. */
static __noinline int name_special(struct dentry *dentry, struct vfsmount *mnt, struct path_buf *pb)
{
	switch (dentry_kind(dentry, mnt)) {
	case DENTRY_PSEUDO:
		return name_pseudo(dentry, pb);
	case DENTRY_UNLINKED:
		put_tail(pb, VIGIL_PATH_MAX, DELETED_SUFFIX, sizeof(DELETED_SUFFIX) - 1);
		return NAME_DELETED;
	default:
		return NAME_PLAIN;
	}
}

/* resolve_path writes the path of (dentry, vfsmnt) as seen from the task's
 * root (root_dentry, root_mnt) into the per-CPU path_heap buffer at
 * [start, VIGIL_PATH_MAX - tail) and returns start: the caller has written
 * tail bytes after it. *truncated is set when the path
 * was deeper or longer than the limits; the leaf end of the path is kept.
 * Under bpf_loop (Linux 5.17), or a bounded loop in the compat build. */
static __always_inline int resolve_path(struct dentry *dentry, struct vfsmount *vfsmnt,
					struct dentry *root_dentry, struct vfsmount *root_mnt,
					int tail, bool *truncated)
{
	struct path_walk w = {
		.dentry = dentry,
		.vfsmnt = vfsmnt,
		.mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt),
		.root_dentry = root_dentry,
		.root_mnt = root_mnt,
		.pos = VIGIL_PATH_MAX - tail,
	};
	__u32 zero = 0;

#ifdef VIGIL_COMPAT
	/* A bounded loop, with the walk's state in the map, not on the
	 * stack: the verifier tracks no values in a map, so every way through
	 * a step reaches the next one in the same state, and it checks 128
	 * steps instead of every combination of their branches. */
	struct path_buf *wb = bpf_map_lookup_elem(&path_heap, &zero);

	if (!wb)
		return -1;
	wb->w = w;
	for (__u32 i = 0; i < VIGIL_PATH_DEPTH; i++)
		if (path_walk_step(i, &wb->w))
			break;
	w.pos = wb->w.pos;
	w.done = wb->w.done;
	w.truncated = wb->w.truncated;
#else
	bpf_loop(VIGIL_PATH_DEPTH, path_walk_step, &w, 0);
#endif
	*truncated = w.truncated || !w.done;
	if (w.pos >= VIGIL_PATH_MAX - tail) {
		/* The root itself. */
		struct path_buf *pb = bpf_map_lookup_elem(&path_heap, &zero);

		if (!pb)
			return -1;
		pb->buf[(VIGIL_PATH_MAX - 1 - tail) & (VIGIL_PATH_MAX - 1)] = '/';
		return VIGIL_PATH_MAX - 1 - tail;
	}
	return w.pos;
}
