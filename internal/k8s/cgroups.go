package k8s

import (
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
)

// CgroupIndex finds the cgroups of containers: the cgroup v2 directories
// whose name carries a container id (ContainerIDFromCgroup), under every
// layout the runtimes use (kubepods.slice/.../cri-containerd-<id>.scope,
// kubepods/burstable/pod<uid>/<id>, ...). The id of a cgroup, what the
// kernel compares, is its directory's inode number.
type CgroupIndex struct {
	root string

	mu sync.Mutex
	// byContainer holds what the last walk found, and byCgroup the same
	// the other way round.
	byContainer map[string][]uint64
	byCgroup    map[uint64]string
	// outside are cgroups asked for that are no container's (the host's
	// services, the node's slices): known not to be, they cause no walk.
	outside map[uint64]struct{}
}

// outsideMemory bounds CgroupIndex.outside; when it is reached the memory
// starts over.
const outsideMemory = 4096

// NewCgroupIndex indexes the cgroup v2 hierarchy mounted at root.
func NewCgroupIndex(root string) *CgroupIndex {
	return &CgroupIndex{root: root, byContainer: map[string][]uint64{}, byCgroup: map[uint64]string{}, outside: map[uint64]struct{}{}}
}

// Containers returns the container of each cgroup id, leaving out the
// cgroups of no container. As Lookup does, it walks the hierarchy again
// only for an id the last walk did not see: a new cgroup is a new id.
func (x *CgroupIndex) Containers(ids []uint64) map[uint64]string {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[uint64]string, len(ids))
	walked := false
	for _, id := range ids {
		if _, ok := x.outside[id]; ok {
			continue
		}
		c, ok := x.byCgroup[id]
		if !ok && !walked {
			x.walk()
			walked = true
			c, ok = x.byCgroup[id]
		}
		if !ok {
			if len(x.outside) >= outsideMemory {
				clear(x.outside)
			}
			x.outside[id] = struct{}{}
			continue
		}
		out[id] = c
	}
	return out
}

// Lookup returns the cgroup ids of the given containers, and the ids of
// those it could not find. The hierarchy is walked again only when a
// container is not known from the last walk: a container's cgroup does not
// move, and a new container is a new id.
func (x *CgroupIndex) Lookup(containers []string) (ids []uint64, missing []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	walked := false
	for _, c := range containers {
		cg, ok := x.byContainer[c]
		if !ok && !walked {
			x.walk()
			walked = true
			cg, ok = x.byContainer[c]
		}
		if !ok {
			missing = append(missing, c)
			continue
		}
		ids = append(ids, cg...)
	}
	return ids, missing
}

// walk rebuilds the index. x.mu is held.
func (x *CgroupIndex) walk() {
	found := map[string][]uint64{}
	filepath.WalkDir(x.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			// A cgroup removed during the walk is not an error.
			return nil
		}
		id := ContainerIDFromCgroup(d.Name())
		if id == "" {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Stat(path, &st) == nil {
			found[id] = append(found[id], st.Ino)
		}
		// A container's own sub-cgroups (systemd in a container, nested
		// runtimes) are its processes too.
		filepath.WalkDir(path, func(sub string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && sub != path {
				var st syscall.Stat_t
				if syscall.Stat(sub, &st) == nil {
					found[id] = append(found[id], st.Ino)
				}
			}
			return nil
		})
		return filepath.SkipDir
	})
	x.byContainer = found
	x.byCgroup = make(map[uint64]string, len(found))
	for c, ids := range found {
		for _, id := range ids {
			x.byCgroup[id] = c
		}
	}
}
