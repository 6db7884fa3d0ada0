package event

import (
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/process"
)

// Exec is a process that just started a new program image.
type Exec struct {
	Time    time.Time
	Process *process.Process
	// Parent and Ancestors are what the process cache knows; either may
	// be missing for processes whose parents started before Vigil.
	Parent    *process.Process
	Ancestors []*process.Process
}

// Exit is the end of a process.
type Exit struct {
	Time      time.Time
	Process   *process.Process
	Parent    *process.Process
	Ancestors []*process.Process
	// Status is the wait(2) status: exit code << 8, or the signal.
	Status uint32
}

// ExitCode is the exit status of a process that exited normally.
func (e Exit) ExitCode() int { return int(e.Status>>8) & 0xff }

// Signal is the signal that terminated the process, 0 if it exited.
func (e Exit) Signal() syscall.Signal { return syscall.Signal(e.Status & 0x7f) }

func (e Exec) fill(lr plog.LogRecord, pa *processAttrs) {
	lr.SetEventName(NameProcessExec)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(e.Time))
	attrs := lr.Attributes()
	pa.put(attrs, e.Process, e.Parent, e.Ancestors, 8)
	if x := e.Process.Context; x != nil {
		putContext(attrs, x)
	}
	lr.Body().SetStr("process " + summary(e.Process))
}

// putContext puts an exec's security context.
func putContext(attrs pcommon.Map, x *process.ExecContext) {
	attrs.PutInt(AttrCapEffective, int64(x.CapEffective))
	attrs.PutInt(AttrCapPermitted, int64(x.CapPermitted))
	attrs.PutInt(AttrCapInheritable, int64(x.CapInheritable))
	if x.AUID != kernel.NoAUID {
		attrs.PutInt(AttrAUID, int64(x.AUID))
	}
	ns := attrs.PutEmptyMap(AttrNamespaces)
	ns.EnsureCapacity(8)
	for _, n := range [...]struct {
		name string
		inum uint32
	}{
		{"mnt", x.Namespaces.Mnt}, {"pid", x.Namespaces.PID}, {"net", x.Namespaces.Net}, {"uts", x.Namespaces.UTS},
		{"ipc", x.Namespaces.IPC}, {"cgroup", x.Namespaces.Cgroup}, {"user", x.Namespaces.User}, {"time", x.Namespaces.Time},
	} {
		if n.inum != 0 {
			ns.PutInt(n.name, int64(n.inum))
		}
	}
	if x.SetUID || x.SetGID || x.Secure {
		raised := attrs.PutEmptySlice(AttrPrivilegesRaised)
		if x.SetUID {
			raised.AppendEmpty().SetStr(PrivilegeSetUID)
		}
		if x.SetGID {
			raised.AppendEmpty().SetStr(PrivilegeSetGID)
		}
		if x.Secure && !x.SetUID && !x.SetGID {
			raised.AppendEmpty().SetStr(PrivilegeFileCapabilities)
		}
	}
	switch {
	case x.Memfd:
		attrs.PutStr(AttrExecFile, ExecFileMemfd)
	case x.Deleted:
		attrs.PutStr(AttrExecFile, ExecFileDeleted)
	case x.Tmpfs:
		attrs.PutStr(AttrExecFile, ExecFileTmpfs)
	}
	if x.InInitTree {
		attrs.PutBool(AttrInInitTree, true)
	}
	if x.Env != nil {
		env := attrs.PutEmptySlice(AttrEnv)
		env.EnsureCapacity(len(x.Env))
		for _, kv := range x.Env {
			env.AppendEmpty().SetStr(kv)
		}
	}
}

func (e Exit) fill(lr plog.LogRecord, pa *processAttrs) {
	lr.SetEventName(NameProcessExit)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(e.Time))
	attrs := lr.Attributes()
	// Exit code or signal, and exit time.
	pa.put(attrs, e.Process, e.Parent, e.Ancestors, 2)
	var status string
	if sig := e.Signal(); sig != 0 {
		status = unix.SignalName(sig)
		if status == "" {
			status = "signal " + strconv.Itoa(int(sig))
		}
		attrs.PutStr(AttrExitSignal, status)
	} else {
		attrs.PutInt(AttrProcessExitCode, int64(e.ExitCode()))
		status = strconv.Itoa(e.ExitCode())
	}
	attrs.PutStr(AttrProcessExitTime, e.Time.UTC().Format(time.RFC3339Nano))
	lr.Body().SetStr("exit " + summary(e.Process) + " " + status)
}

// summary is the process part of a body: binary and arguments, as tetra's
// compact output shows them.
func summary(p *process.Process) string {
	if len(p.Args) <= 1 {
		return p.Binary
	}
	return p.Binary + " " + strings.Join(p.Args[1:], " ")
}

// processAttrs puts the attributes of an event's process on its record.
// It keeps those of the process whose event came last and copies them
// into the next record of the same process: a policy hook that fires in a
// loop posts event after event of one process, and copying a finished map
// costs less than putting every attribute again (each Put scans the map
// for its key); both allocate a value per attribute. Not safe for
// concurrent use.
type processAttrs struct {
	clock func(uint64) time.Time

	// The last event's process, parent and ancestors, how many events of
	// them came in a row, and from the third on their attributes: an exec
	// and the exit of a short-lived process often come in a row, and
	// keeping a copy for them would only cost.
	p, parent *process.Process
	ancestors []*process.Process
	run       int
	attrs     pcommon.Map
}

func newProcessAttrs(clock func(uint64) time.Time) *processAttrs {
	return &processAttrs{clock: clock, attrs: pcommon.NewMap()}
}

// put puts the process attributes on attrs, the empty attributes of a new
// record, with room for extra attributes of the event's own: the map grows
// by appending, and growing it is much of its cost.
func (pa *processAttrs) put(attrs pcommon.Map, p, parent *process.Process, ancestors []*process.Process, extra int) {
	same := p == pa.p && parent == pa.parent && slices.Equal(ancestors, pa.ancestors) && attrs.Len() == 0
	if !same {
		pa.p, pa.parent = p, parent
		pa.ancestors = append(pa.ancestors[:0], ancestors...)
		pa.run = 0
	}
	pa.run++
	if pa.run > 3 {
		attrs.EnsureCapacity(pa.attrs.Len() + extra)
		pa.attrs.CopyTo(attrs)
		return
	}
	attrs.EnsureCapacity(attrs.Len() + processAttrCount(p, parent, ancestors) + extra)
	putProcess(attrs, p, parent, ancestors, pa.clock)
	if pa.run == 3 {
		attrs.CopyTo(pa.attrs)
	}
}

// processAttrCount is how many attributes putProcess puts.
func processAttrCount(p, parent *process.Process, ancestors []*process.Process) int {
	n := 13 // those every process has
	for _, set := range []bool{p.Cwd != "", p.StartTime != 0, p.StartTime != 0, p.ParentExecID != "", parent != nil,
		p.TID != 0 && p.TID != p.PID, p.CgroupName != "", p.ProcFS, p.ArgsTruncated, len(ancestors) > 0} {
		if set {
			n++
		}
	}
	return n
}

func putProcess(attrs pcommon.Map, p, parent *process.Process, ancestors []*process.Process, clock func(uint64) time.Time) {
	attrs.PutInt(AttrProcessPID, int64(p.PID))
	attrs.PutInt(AttrProcessParentPID, int64(p.PPID))
	attrs.PutStr(AttrProcessExecutablePath, p.Binary)
	attrs.PutStr(AttrProcessExecutableName, p.ExecutableName())
	attrs.PutStr(AttrProcessCommandLine, p.CommandLine())
	args := attrs.PutEmptySlice(AttrProcessCommandArgs)
	args.EnsureCapacity(len(p.Args))
	for _, a := range p.Args {
		args.AppendEmpty().SetStr(a)
	}
	if p.Cwd != "" {
		attrs.PutStr(AttrProcessWorkingDir, p.Cwd)
	}
	attrs.PutInt(AttrProcessUserID, int64(p.EUID))
	attrs.PutInt(AttrProcessRealUserID, int64(p.UID))
	attrs.PutInt(AttrProcessGroupID, int64(p.EGID))
	attrs.PutInt(AttrProcessRealGroupID, int64(p.GID))
	if p.StartTime != 0 {
		attrs.PutStr(AttrProcessCreationTime, p.CreationTime(clock))
		attrs.PutInt(AttrProcessStartBootNs, int64(p.StartTime))
	}
	attrs.PutStr(AttrExecID, p.ExecID)
	if p.ParentExecID != "" {
		attrs.PutStr(AttrParentExecID, p.ParentExecID)
	}
	if parent != nil {
		attrs.PutStr(AttrParentExecutablePath, parent.Binary)
	}
	if p.TID != 0 && p.TID != p.PID {
		attrs.PutInt(AttrTID, int64(p.TID))
	}
	attrs.PutInt(AttrCgroupID, int64(p.CgroupID))
	if p.CgroupName != "" {
		attrs.PutStr(AttrCgroupName, p.CgroupName)
	}
	if p.ProcFS {
		attrs.PutBool(AttrProcFS, true)
	}
	if p.ArgsTruncated {
		attrs.PutBool(AttrArgsTruncated, true)
	}
	if len(ancestors) > 0 {
		s := attrs.PutEmptySlice(AttrAncestors)
		s.EnsureCapacity(len(ancestors))
		for _, a := range ancestors {
			m := s.AppendEmpty().SetEmptyMap()
			m.PutInt(AttrProcessPID, int64(a.PID))
			m.PutStr(AttrProcessExecutablePath, a.Binary)
			m.PutStr(AttrExecID, a.ExecID)
		}
	}
}
