package kernel

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// Record kinds, as in enum vigil_record_kind (bpf/common.h).
const (
	recordExec = 1
	recordFork = 2
	recordExit = 3
)

// Drop reasons, as in enum vigil_drop_reason (bpf/common.h).
const (
	dropRingbufFull = 0
	dropReasons     = 1
)

// Exec flags, as in enum exec_flags (bpf/process.c).
const (
	execArgsTruncated     = 1 << 0
	execCwdTruncated      = 1 << 1
	execFilenameTruncated = 1 << 2
	execCwdUnresolved     = 1 << 3
)

// ExecRecord is a thread group that just replaced its program image.
type ExecRecord struct {
	Ktime      uint64 // CLOCK_BOOTTIME ns of the exec
	PID        uint32 // thread group id
	TID        uint32
	PPID       uint32
	UID        uint32
	EUID       uint32
	GID        uint32
	EGID       uint32
	StartTime  uint64 // CLOCK_BOOTTIME ns when the task was forked
	CgroupID   uint64 // cgroup v2 id
	CgroupName string
	// Filename is the path as passed to execve, which may be relative.
	Filename string
	Cwd      string
	// Args is argv, argv[0] included.
	Args []string

	FilenameTruncated bool
	CwdTruncated      bool
	CwdUnresolved     bool
	ArgsTruncated     bool
	ArgsSize          uint32 // bytes of argv before truncation
}

// ForkRecord is a new thread group (threads are not reported).
type ForkRecord struct {
	Ktime     uint64
	PID       uint32
	TID       uint32
	PPID      uint32
	StartTime uint64
}

// ExitRecord is the end of a thread group: its last thread has exited.
type ExitRecord struct {
	Ktime     uint64
	PID       uint32
	TID       uint32 // the thread that exited last
	Status    uint32 // as wait(2) reports it
	StartTime uint64
}

// ExitCode is the exit status of a process that exited normally.
func (e ExitRecord) ExitCode() int { return int(e.Status>>8) & 0xff }

// Signal is the signal that terminated the process, 0 if it exited.
func (e ExitRecord) Signal() int { return int(e.Status & 0x7f) }

var errShortRecord = errors.New("record shorter than its header")

var (
	execFixedSize = int(unsafe.Offsetof(processExecRecord{}.Data))
	forkSize      = int(unsafe.Sizeof(processForkRecord{}))
	exitSize      = int(unsafe.Sizeof(processExitRecord{}))
)

// decoder turns raw ring buffer samples into records. It reuses one exec
// layout buffer and is therefore not safe for concurrent use.
type decoder struct {
	exec processExecRecord
}

// decode returns an *ExecRecord, *ForkRecord or *ExitRecord.
func (d *decoder) decode(sample []byte) (any, error) {
	if len(sample) < 1 {
		return nil, errShortRecord
	}
	switch sample[0] {
	case recordExec:
		return d.decodeExec(sample)
	case recordFork:
		if len(sample) < forkSize {
			return nil, fmt.Errorf("fork record of %d bytes: %w", len(sample), errShortRecord)
		}
		var r processForkRecord
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), forkSize), sample)
		return &ForkRecord{Ktime: r.Hdr.Ktime, PID: r.Pid, TID: r.Tid, PPID: r.Ppid, StartTime: r.StartTime}, nil
	case recordExit:
		if len(sample) < exitSize {
			return nil, fmt.Errorf("exit record of %d bytes: %w", len(sample), errShortRecord)
		}
		var r processExitRecord
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), exitSize), sample)
		return &ExitRecord{Ktime: r.Hdr.Ktime, PID: r.Pid, TID: r.Tid, Status: r.ExitCode, StartTime: r.StartTime}, nil
	default:
		return nil, fmt.Errorf("unknown record kind %d", sample[0])
	}
}

func (d *decoder) decodeExec(sample []byte) (*ExecRecord, error) {
	if len(sample) < execFixedSize {
		return nil, fmt.Errorf("exec record of %d bytes: %w", len(sample), errShortRecord)
	}
	r := &d.exec
	n := copy(unsafe.Slice((*byte)(unsafe.Pointer(r)), unsafe.Sizeof(*r)), sample)
	data := unsafe.Slice((*byte)(unsafe.Pointer(&r.Data[0])), n-execFixedSize)

	take := func(l uint16) (string, error) {
		if int(l) > len(data) {
			return "", fmt.Errorf("exec record field of %d bytes overruns %d bytes of data", l, len(data))
		}
		s := string(data[:l])
		data = data[l:]
		return s, nil
	}
	rec := &ExecRecord{
		Ktime: r.Hdr.Ktime, PID: r.Pid, TID: r.Tid, PPID: r.Ppid,
		UID: r.Uid, EUID: r.Euid, GID: r.Gid, EGID: r.Egid,
		StartTime: r.StartTime, CgroupID: r.CgroupId, ArgsSize: r.ArgsSize,
		FilenameTruncated: r.Flags&execFilenameTruncated != 0,
		CwdTruncated:      r.Flags&execCwdTruncated != 0,
		CwdUnresolved:     r.Flags&execCwdUnresolved != 0,
		ArgsTruncated:     r.Flags&execArgsTruncated != 0,
	}
	var args string
	var err error
	if rec.Filename, err = take(r.FilenameLen); err != nil {
		return nil, err
	}
	if rec.Cwd, err = take(r.CwdLen); err != nil {
		return nil, err
	}
	if args, err = take(r.ArgsLen); err != nil {
		return nil, err
	}
	if rec.CgroupName, err = take(r.CgroupNameLen); err != nil {
		return nil, err
	}
	rec.Args = splitArgs(args)
	return rec, nil
}

// splitArgs splits the NUL-separated argv block. The block ends in a NUL
// unless it was truncated, in which case the last argument is partial.
func splitArgs(block string) []string {
	block = strings.TrimSuffix(block, "\x00")
	if block == "" {
		return nil
	}
	args := make([]string, 0, 4)
	for {
		i := strings.IndexByte(block, 0)
		if i < 0 {
			return append(args, block)
		}
		args = append(args, block[:i])
		block = block[i+1:]
	}
}
