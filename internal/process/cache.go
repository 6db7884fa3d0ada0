package process

import (
	"container/list"
	"path"
	"strings"
	"sync"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/redact"
)

// evictScan bounds how far from the least recently used end eviction looks
// for an entry nothing refers to before it evicts the oldest entry anyway.
const evictScan = 64

// Cache is the process table: bounded, least recently used entries evicted
// first, entries of running processes and of parents of cached processes kept
// as long as there is room. It is safe for concurrent use.
type Cache struct {
	node string
	size int
	// redact hides secrets in the arguments of every process recorded.
	redact *redact.Redactor
	// envValues are the environment variables whose values are kept.
	envValues map[string]bool

	mu     sync.Mutex
	byID   map[string]*Process
	byPID  map[uint32]*Process // the image each running pid runs now
	lru    *list.List          // front: most recently used
	forced uint64
}

// NewCache returns an empty cache holding at most size processes, whose exec
// ids are built with the node name.
func NewCache(node string, size int) *Cache {
	return &Cache{
		node:  node,
		size:  size,
		byID:  make(map[string]*Process),
		byPID: make(map[uint32]*Process),
		lru:   list.New(),
	}
}

// SetRedactor makes the cache keep every process's arguments as r
// redacts them, so that no event, ancestor list or exporter sees the
// secrets. Call it before the first record.
func (c *Cache) SetRedactor(r *redact.Redactor) { c.redact = r }

// SetEnvironmentValues names the environment variables whose values exec
// contexts keep; every other variable's value is masked.
func (c *Cache) SetEnvironmentValues(names []string) {
	c.envValues = map[string]bool{}
	for _, n := range names {
		c.envValues[n] = true
	}
}

// context builds the exec context of r.
func (c *Cache) context(r *kernel.ExecRecord) *ExecContext {
	x := &ExecContext{ExecContext: r.Context}
	if len(r.Env) > 0 {
		x.Env = make([]string, 0, len(r.Env))
		for _, kv := range r.Env {
			name, _, ok := strings.Cut(kv, "=")
			if ok && !c.envValues[name] {
				kv = name + "=" + redact.Mask
			}
			x.Env = append(x.Env, kv)
		}
	}
	return x
}

// Len is the number of processes in the cache.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}

// ForcedEvictions counts entries evicted while still referenced because the
// cache was full of them: the cache is too small for the node.
func (c *Cache) ForcedEvictions() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.forced
}

// Get returns the process with that exec id, or nil.
func (c *Cache) Get(execID string) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.byID[execID]
	if p != nil {
		c.lru.MoveToFront(p.elem)
	}
	return p
}

// Running returns the process a pid runs now, or nil.
func (c *Cache) Running(pid uint32) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byPID[pid]
}

// Ancestors returns up to n ancestors of p, parent first, as far as the
// cache knows them.
func (c *Cache) Ancestors(p *Process, n int) []*Process {
	return c.AppendAncestors(nil, p, n)
}

// AppendAncestors appends up to n ancestors of p to dst, parent first, and
// returns the extended slice: a caller that looks up the ancestry of every
// event can reuse one buffer.
func (c *Cache) AppendAncestors(dst []*Process, p *Process, n int) []*Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	for found := 0; found < n && p != nil && p.ParentExecID != ""; found++ {
		p = c.byID[p.ParentExecID]
		if p == nil {
			break
		}
		dst = append(dst, p)
	}
	return dst
}

// Exec records an exec: the pid now runs a new image whose parent is what
// the parent pid runs.
func (c *Cache) Exec(r *kernel.ExecRecord) *Process {
	binary := binaryPath(r.Filename, r.Cwd)
	p := &Process{
		ExecID:        ExecID(c.node, r.Ktime, r.PID),
		PID:           r.PID,
		TID:           r.TID,
		PPID:          r.PPID,
		Ktime:         r.Ktime,
		StartTime:     r.StartTime,
		Binary:        binary,
		Args:          c.redact.Args(binary, r.Args),
		ArgsTruncated: r.ArgsTruncated,
		Cwd:           r.Cwd,
		UID:           r.UID,
		EUID:          r.EUID,
		GID:           r.GID,
		EGID:          r.EGID,
		CgroupID:      r.CgroupID,
		CgroupName:    r.CgroupName,
		Context:       c.context(r),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev := c.byPID[r.PID]; prev != nil && prev.InitTree {
		p.Context.InInitTree = true
	}
	p.InitTree = p.Context.InInitTree
	c.setParent(p, c.byPID[r.PPID])
	c.run(p)
	return p
}

// Fork records a new thread group that runs its parent's image until it
// execs. It returns nil when the parent is unknown.
func (c *Cache) Fork(r *kernel.ForkRecord) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	parent := c.byPID[r.PPID]
	if parent == nil {
		return nil
	}
	p := &Process{
		ExecID:     ExecID(c.node, r.Ktime, r.PID),
		PID:        r.PID,
		TID:        r.TID,
		PPID:       r.PPID,
		Ktime:      r.Ktime,
		StartTime:  r.StartTime,
		Binary:     parent.Binary,
		Args:       parent.Args,
		Cwd:        parent.Cwd,
		UID:        parent.UID,
		EUID:       parent.EUID,
		GID:        parent.GID,
		EGID:       parent.EGID,
		CgroupID:   parent.CgroupID,
		CgroupName: parent.CgroupName,
		InitTree:   parent.InitTree,
		Clone:      true,
	}
	c.setParent(p, parent)
	c.run(p)
	return p
}

// Exit records the end of a thread group and returns the process that
// exited, or nil when the pid was never seen.
func (c *Cache) Exit(r *kernel.ExitRecord) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.byPID[r.PID]
	if p == nil {
		return nil
	}
	delete(c.byPID, r.PID)
	p.Exited = true
	c.lru.MoveToFront(p.elem)
	c.release(p)
	return p
}

// add inserts p as a running process found outside the ring buffer (the
// /proc scan); its parent is linked later.
func (c *Cache) add(p *Process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.run(p)
}

// run makes p the image its pid runs and inserts it. c.mu is held.
func (c *Cache) run(p *Process) {
	if old := c.byPID[p.PID]; old != nil && old != p {
		// The previous image of this pid is gone, not exited: it no
		// longer pins its entry.
		c.release(old)
	}
	if old := c.byID[p.ExecID]; old != nil {
		// Same pid and ktime: the scan and a record saw the same start.
		c.remove(old)
	}
	p.refs++
	p.elem = c.lru.PushFront(p)
	c.byID[p.ExecID] = p
	c.byPID[p.PID] = p
	c.evict()
}

func (c *Cache) setParent(p, parent *Process) {
	if parent == nil {
		return
	}
	p.ParentExecID = parent.ExecID
	parent.refs++
	c.lru.MoveToFront(parent.elem)
}

func (c *Cache) release(p *Process) {
	if p.refs > 0 {
		p.refs--
	}
}

func (c *Cache) remove(p *Process) {
	c.lru.Remove(p.elem)
	delete(c.byID, p.ExecID)
	if c.byPID[p.PID] == p {
		delete(c.byPID, p.PID)
	}
	if parent := c.byID[p.ParentExecID]; parent != nil {
		c.release(parent)
	}
}

// evict brings the cache back to its size, preferring entries nothing refers
// to; when none is near the old end, the oldest goes anyway so that memory
// stays bounded whatever the workload.
func (c *Cache) evict() {
	for len(c.byID) > c.size {
		victim := c.lru.Back()
		for e, i := victim, 0; e != nil && i < evictScan; e, i = e.Prev(), i+1 {
			if e.Value.(*Process).refs == 0 {
				victim = e
				break
			}
		}
		p := victim.Value.(*Process)
		if p.refs > 0 {
			c.forced++
		}
		c.remove(p)
	}
}

// binaryPath makes the execve filename absolute: relative names are relative
// to the working directory of the exec.
func binaryPath(filename, cwd string) string {
	if filename == "" || path.IsAbs(filename) || cwd == "" {
		return filename
	}
	return path.Join(cwd, filename)
}

// Node is the node name exec ids are built with.
func (c *Cache) Node() string { return c.node }

// RunningProcesses returns the processes running now, as far as the cache
// knows.
func (c *Cache) RunningProcesses() []*Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Process, 0, len(c.byPID))
	for _, p := range c.byPID {
		out = append(out, p)
	}
	return out
}
