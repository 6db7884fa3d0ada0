// Package process keeps the node's process table as Vigil sees it: every
// process exec'd, forked or found in /proc, joined to its parent, so that an
// event names not just a pid but a process and its ancestry.
package process

import (
	"container/list"
	"encoding/base64"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/internal/kernel"
)

// Process is one program image run by one thread group: an exec starts a new
// Process for the same pid, a fork starts one that still runs its parent's
// image. Processes are owned by the Cache; callers must not modify them.
type Process struct {
	// ExecID identifies the process across the cluster and over time:
	// base64("node:ktime:pid"), as Tetragon builds it, so that ids from both
	// tools can be joined.
	ExecID       string
	ParentExecID string // empty when the parent is unknown

	PID  uint32
	TID  uint32
	PPID uint32
	// Ktime is when this image started (exec, fork, or the task start for
	// processes found in /proc), CLOCK_BOOTTIME ns.
	Ktime uint64
	// StartTime is when the task was created, CLOCK_BOOTTIME ns.
	StartTime uint64

	Binary        string
	Args          []string // argv, argv[0] included
	ArgsTruncated bool
	Cwd           string
	UID, EUID     uint32
	GID, EGID     uint32
	CgroupID      uint64
	CgroupName    string

	// Context is what the kernel said of the exec beyond the above; nil
	// for processes found in /proc and forks that have not exec'd.
	Context *ExecContext

	// ProcFS marks a process found by the /proc scan at start: its exec
	// happened before Vigil was watching.
	ProcFS bool
	// InitTree is set when the process descends from its container's
	// init: from NSpid and the parent for a process found by the scan,
	// inherited at fork, and at exec the kernel's flag or the image it
	// replaces. The kernel's flag alone misses a fork in the moment
	// between the hooks attaching and the scan's flags reaching the
	// kernel; the cache saw that fork, so it knows.
	InitTree bool
	// nsPIDs is how many pid namespaces a scanned process has a pid in
	// (the length of NSpid in /proc/PID/status).
	nsPIDs int
	// Clone marks a forked process that has not exec'd.
	Clone bool

	// Exited is set once the thread group has exited.
	Exited bool

	// refs counts what keeps the entry from eviction: 1 while the pid runs
	// this image, plus 1 per child entry in the cache.
	refs int
	elem *list.Element

	// Strings derived from the fields above, built once: every event of
	// the process carries them. Like the cache, not safe for concurrent
	// use.
	cmdline, created string
}

// CommandLine is the arguments joined with spaces.
func (p *Process) CommandLine() string {
	if p.cmdline == "" && len(p.Args) > 0 {
		p.cmdline = strings.Join(p.Args, " ")
	}
	return p.cmdline
}

// CreationTime is StartTime on the wall clock, in RFC 3339 with
// nanoseconds, or "" when the start time is unknown. clock maps
// CLOCK_BOOTTIME to wall time; the first call's answer is kept.
func (p *Process) CreationTime(clock func(uint64) time.Time) string {
	if p.created == "" && p.StartTime != 0 {
		p.created = clock(p.StartTime).UTC().Format(time.RFC3339Nano)
	}
	return p.created
}

// ExecID builds the exec id of the process started at ktime with pid on node.
func ExecID(node string, ktime uint64, pid uint32) string {
	b := make([]byte, 0, len(node)+32)
	b = append(b, node...)
	b = append(b, ':')
	b = strconv.AppendUint(b, ktime, 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(pid), 10)
	return base64.StdEncoding.EncodeToString(b)
}

// ExecutableName is the last element of the binary path.
func (p *Process) ExecutableName() string { return path.Base(p.Binary) }

// ExecContext is the security context of an exec (kernel.ExecContext),
// with the environment as the cache's settings keep it.
type ExecContext struct {
	kernel.ExecContext
	// Env is every variable, its value masked unless allowed.
	Env []string
}
