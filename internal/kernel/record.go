package kernel

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unsafe"

	"github.com/vigilsec/vigil/internal/policy"
)

// Record kinds, as in enum vigil_record_kind (bpf/common.h).
const (
	recordExec          = 1
	recordFork          = 2
	recordExit          = 3
	recordHook          = 4
	recordConnectDenied = 5
)

// Drop reasons, as in enum vigil_drop_reason (bpf/common.h).
const (
	dropRingbufFull = 0
	dropReasons     = 1
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
	// Denied is set when the binary was in the exec deny list: the
	// process was killed at exec.
	Denied bool

	// Context is the security context the program runs in.
	Context ExecContext
	// Env is the start of the environment, "NAME=value" each, when the
	// sensor was asked for it (SetExecEnvironment).
	Env          []string
	EnvTruncated bool
}

// ExecContext is what the kernel says of an exec beyond ids and paths:
// what detections key on.
type ExecContext struct {
	// Caps are the capability sets the program runs with, as bit masks
	// (bit n is capability n of capability(7)).
	CapEffective, CapPermitted, CapInheritable uint64
	// AUID is the login uid (audit), NoAUID when unset.
	AUID uint32
	// Namespaces are the inode numbers of the process's namespaces.
	Namespaces Namespaces
	// SetUID and SetGID: the file's setuid (setgid) bit gave the program
	// its owner's effective uid (gid). Secure: the kernel ran it in secure
	// mode (AT_SECURE), as it does when an exec raises privileges, file
	// capabilities included.
	SetUID, SetGID, Secure bool
	// Memfd, Deleted and Tmpfs say where the file run is: in no mounted
	// tree (a memfd), unlinked, or on a tmpfs.
	Memfd, Deleted, Tmpfs bool
	// InInitTree: the process descends from its container's init.
	InInitTree bool
}

// NoAUID is the AUID of a process no login set one for.
const NoAUID = ^uint32(0)

// Namespaces are namespace inode numbers, as /proc/PID/ns shows them; 0
// for a type the kernel lacks.
type Namespaces struct {
	Mnt, PID, Net, UTS, IPC, Cgroup, User, Time uint32
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

// ConnectDeniedRecord is a connect the deny list refused (DenyConnect).
type ConnectDeniedRecord struct {
	Ktime       uint64
	PID, TID    uint32
	Rule        uint64 // the entry's DenyEntry.Rule
	Destination netip.AddrPort
}

// ExitCode is the exit status of a process that exited normally.
func (e ExitRecord) ExitCode() int { return int(e.Status>>8) & 0xff }

// Signal is the signal that terminated the process, 0 if it exited.
func (e ExitRecord) Signal() int { return int(e.Status & 0x7f) }

// HookRecord is a hit of a policy hook that a selector chose to report.
type HookRecord struct {
	Ktime uint64
	PID   uint32
	TID   uint32
	// HookID names the installed hook (Sensor.Hook).
	HookID   uint32
	Selector uint32
	// Call is the syscall number for syscall hooks (SyscallName).
	Call uint32
	// Return is set when the record was made at return; Ret is then the
	// return value.
	Return bool
	Ret    int64
	// Signal is what the selector sent to the process, 0 if nothing.
	Signal uint32
	Args   []HookArg
	// KernelStack and UserStack are the return addresses of the stacks
	// the selector asked for (Post kernelStackTrace, userStackTrace),
	// innermost first: kernel addresses, and addresses in the process's
	// memory as it was mapped at the hook (package stack names them).
	KernelStack []uint64
	UserStack   []uint64
	// ImaHash is the IMA hash of an LSM hook's file that Post imaHash
	// asked for, as Tetragon writes it: "sha256:" and the hex digest.
	ImaHash string
}

// Stack flags of a selector, as in enum stack_flags (bpf/hook_maps.h).
const (
	stackKernel = 1 << 0
	stackUser   = 1 << 1
	stackIma    = 1 << 2
)

// The record's data holds the arguments below 2048 bytes, then room for two
// stacks of policy.MaxStackFrames frames (bpf/hook_types.h, MAX_STACK_FRAMES):
// these fail to compile when the two disagree.
const stackBytes = policy.MaxStackFrames * 8

var (
	_ [len(sensorHookRecord{}.Data) - (2048 + 2*stackBytes)]struct{}
	_ [(2048 + 2*stackBytes) - len(sensorHookRecord{}.Data)]struct{}
)

// HookArg is one argument as the hook read it: Int for integers (and the
// descriptor of an fd), Str for strings, paths and buffers. A sock argument
// is Sock, and Str is Sock.String(); a sockaddr is a Sock too, whose
// Source is its address, and Str is Sock.SockaddrString().
type HookArg struct {
	Int       int64
	Str       string
	Truncated bool
	Sock      *Sock
	Cred      *Cred
	// Object is a bpf_attr, perf_event or bpf_map argument: a BpfAttr,
	// PerfEvent or BpfMap; Str is its String().
	Object fmt.Stringer
}

// Cred is a cred argument (struct cred *) as the hook read it.
type Cred struct {
	UID, GID, SUID, SGID, EUID, EGID, FSUID, FSGID uint32
	Securebits                                     uint32
	// UserNS is the inode number of the cred's user namespace.
	UserNS                            uint32
	Permitted, Effective, Inheritable uint64
}

// String renders the credentials as ids, then the capability masks:
// "uid=1000 gid=1000 euid=0 egid=0 suid=0 sgid=0 fsuid=0 fsgid=0
// securebits=0 user_ns=4026531837 permitted=0x1ffffffffff
// effective=0x1ffffffffff inheritable=0x0".
func (c Cred) String() string {
	return fmt.Sprintf("uid=%d gid=%d euid=%d egid=%d suid=%d sgid=%d fsuid=%d fsgid=%d securebits=%d user_ns=%d permitted=%#x effective=%#x inheritable=%#x",
		c.UID, c.GID, c.EUID, c.EGID, c.SUID, c.SGID, c.FSUID, c.FSGID, c.Securebits, c.UserNS,
		c.Permitted, c.Effective, c.Inheritable)
}

func decodeCred(b []byte) (*Cred, error) {
	r, err := argLayout[sensorCredArg](b, "cred")
	if err != nil {
		return nil, err
	}
	return &Cred{UID: r.Uid, GID: r.Gid, SUID: r.Suid, SGID: r.Sgid, EUID: r.Euid, EGID: r.Egid,
		FSUID: r.Fsuid, FSGID: r.Fsgid, Securebits: r.Securebits, UserNS: r.UserNs,
		Permitted: r.CapPermitted, Effective: r.CapEffective, Inheritable: r.CapInheritable}, nil
}

// Sock is a sock argument (struct sock *) as the hook read it.
type Sock struct {
	Family   uint16 // AF_INET, AF_INET6, ...
	Protocol uint16 // IPPROTO_TCP, IPPROTO_UDP, ...
	State    uint8  // TCP_ESTABLISHED, TCP_SYN_SENT, ...
	// Source and Destination are the local and the remote end, for
	// AF_INET and AF_INET6 sockets; the zero AddrPort otherwise.
	Source, Destination netip.AddrPort
}

// Address families and protocols the rendering of a Sock names.
const (
	afInet  = 2
	afInet6 = 10
)

var transports = map[uint16]string{
	1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp", 136: "udplite", 255: "raw", 262: "mptcp",
}

// Transport names the socket's protocol as network.transport does ("tcp",
// "udp"), or "ipproto-N" for a protocol without a short name.
func (s Sock) Transport() string {
	if t, ok := transports[s.Protocol]; ok {
		return t
	}
	return "ipproto-" + strconv.Itoa(int(s.Protocol))
}

// String renders the socket as tetra's compact output does, "tcp
// 10.0.0.5:43122 -> 104.198.14.52:443"; a socket of another family than
// AF_INET and AF_INET6 as "family N protocol M". internal/event reads the
// first form back into network.transport, source.* and destination.*.
func (s Sock) String() string {
	if s.Family != afInet && s.Family != afInet6 {
		return fmt.Sprintf("family %d protocol %d", s.Family, s.Protocol)
	}
	return s.Transport() + " " + s.Source.String() + " -> " + s.Destination.String()
}

func decodeSock(b []byte) (*Sock, error) {
	r, err := argLayout[sensorSockArg](b, "sock")
	if err != nil {
		return nil, err
	}
	s := &Sock{Family: r.Family, Protocol: r.Protocol, State: r.State}
	switch r.Family {
	case afInet:
		var src, dst [4]byte
		binary.NativeEndian.PutUint32(src[:], r.Saddr)
		binary.NativeEndian.PutUint32(dst[:], r.Daddr)
		s.Source = netip.AddrPortFrom(netip.AddrFrom4(src), r.Sport)
		s.Destination = netip.AddrPortFrom(netip.AddrFrom4(dst), r.Dport)
	case afInet6:
		s.Source = netip.AddrPortFrom(netip.AddrFrom16(r.Saddr6), r.Sport)
		s.Destination = netip.AddrPortFrom(netip.AddrFrom16(r.Daddr6), r.Dport)
	}
	return s, nil
}

var errShortRecord = errors.New("record shorter than its header")

var (
	execFixedSize = int(unsafe.Offsetof(sensorExecRecord{}.Data))
	hookFixedSize = int(unsafe.Offsetof(sensorHookRecord{}.Data))
)

// recordLayout reads a fixed-size record, in the layout T bpf2go generated,
// from the start of sample; what names it when sample is shorter.
func recordLayout[T any](sample []byte, what string) (r T, err error) {
	n := int(unsafe.Sizeof(r))
	if len(sample) < n {
		return r, fmt.Errorf("%s record of %d bytes: %w", what, len(sample), errShortRecord)
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), n), sample)
	return r, nil
}

// argLayout reads an argument, in the layout T bpf2go generated, that fills
// b exactly; what names it when it does not.
func argLayout[T any](b []byte, what string) (r T, err error) {
	n := int(unsafe.Sizeof(r))
	if len(b) != n {
		return r, fmt.Errorf("hook record %s of %d bytes, want %d", what, len(b), n)
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), n), b)
	return r, nil
}

// decoder turns raw ring buffer samples into records. It reuses one exec
// layout buffer and is therefore not safe for concurrent use.
type decoder struct {
	exec sensorExecRecord
}

// decode returns an *ExecRecord, *ForkRecord, *ExitRecord, *HookRecord or
// *ConnectDeniedRecord.
func (d *decoder) decode(sample []byte) (any, error) {
	if len(sample) < 1 {
		return nil, errShortRecord
	}
	switch sample[0] {
	case recordExec:
		return d.decodeExec(sample)
	case recordFork:
		r, err := recordLayout[sensorForkRecord](sample, "fork")
		if err != nil {
			return nil, err
		}
		return &ForkRecord{Ktime: r.Hdr.Ktime, PID: r.Pid, TID: r.Tid, PPID: r.Ppid, StartTime: r.StartTime}, nil
	case recordExit:
		r, err := recordLayout[sensorExitRecord](sample, "exit")
		if err != nil {
			return nil, err
		}
		return &ExitRecord{Ktime: r.Hdr.Ktime, PID: r.Pid, TID: r.Tid, Status: r.ExitCode, StartTime: r.StartTime}, nil
	case recordHook:
		return decodeHook(sample)
	case recordConnectDenied:
		r, err := recordLayout[sensorConnectDeniedRecord](sample, "connect refusal")
		if err != nil {
			return nil, err
		}
		addr := netip.AddrFrom16(r.Addr)
		if r.Family == afInet {
			addr = netip.AddrFrom4([4]byte(r.Addr[:4]))
		}
		return &ConnectDeniedRecord{Ktime: r.Hdr.Ktime, PID: r.Pid, TID: r.Tid, Rule: r.Rule,
			Destination: netip.AddrPortFrom(addr, r.Port)}, nil
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
		Context: ExecContext{
			CapEffective: r.CapEffective, CapPermitted: r.CapPermitted, CapInheritable: r.CapInheritable,
			AUID: r.Auid,
			Namespaces: Namespaces{Mnt: r.NsMnt, PID: r.NsPid, Net: r.NsNet, UTS: r.NsUts, IPC: r.NsIpc,
				Cgroup: r.NsCgroup, User: r.NsUser, Time: r.NsTime},
		},
	}
	x := &rec.Context
	for _, f := range []struct {
		flag sensorExecFlags
		to   *bool
	}{
		{sensorExecFlagsEXEC_FILENAME_TRUNCATED, &rec.FilenameTruncated},
		{sensorExecFlagsEXEC_CWD_TRUNCATED, &rec.CwdTruncated},
		{sensorExecFlagsEXEC_CWD_UNRESOLVED, &rec.CwdUnresolved},
		{sensorExecFlagsEXEC_ARGS_TRUNCATED, &rec.ArgsTruncated},
		{sensorExecFlagsEXEC_DENIED, &rec.Denied},
		{sensorExecFlagsEXEC_SETUID, &x.SetUID},
		{sensorExecFlagsEXEC_SETGID, &x.SetGID},
		{sensorExecFlagsEXEC_SECURE, &x.Secure},
		{sensorExecFlagsEXEC_MEMFD, &x.Memfd},
		{sensorExecFlagsEXEC_DELETED, &x.Deleted},
		{sensorExecFlagsEXEC_TMPFS, &x.Tmpfs},
		{sensorExecFlagsEXEC_IN_INIT_TREE, &x.InInitTree},
		{sensorExecFlagsEXEC_ENV_TRUNCATED, &rec.EnvTruncated},
	} {
		*f.to = sensorExecFlags(r.Flags)&f.flag != 0
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
	var env string
	if env, err = take(r.EnvLen); err != nil {
		return nil, err
	}
	rec.Args = splitArgs(args)
	if env != "" {
		rec.Env = splitArgs(env)
	}
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

func decodeHook(sample []byte) (*HookRecord, error) {
	if len(sample) < hookFixedSize {
		return nil, fmt.Errorf("hook record of %d bytes: %w", len(sample), errShortRecord)
	}
	var r sensorHookRecord
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), hookFixedSize), sample)
	rec := &HookRecord{Ktime: r.Hdr.Ktime, PID: r.Pid, TID: r.Tid, HookID: r.HookId,
		Selector: r.Selector, Call: r.Call, Ret: r.Ret, Return: r.Flags&1 != 0, Signal: r.Signal}
	data := sample[hookFixedSize:]
	if int(r.DataLen)+int(r.KstackLen)+int(r.UstackLen) > len(data) {
		return nil, fmt.Errorf("hook record data of %d bytes and stacks of %d and %d overrun %d",
			r.DataLen, r.KstackLen, r.UstackLen, len(data))
	}
	stacks := data[r.DataLen:]
	rec.KernelStack = decodeStack(stacks[:r.KstackLen])
	rec.UserStack = decodeStack(stacks[r.KstackLen : int(r.KstackLen)+int(r.UstackLen)])
	data = data[:r.DataLen]
	for len(data) > 0 {
		if len(data) < 4 {
			return nil, fmt.Errorf("hook record: %d bytes left for an argument header", len(data))
		}
		typ, trunc, n := data[0], data[1] != 0, int(binary.LittleEndian.Uint16(data[2:4]))
		data = data[4:]
		if n > len(data) {
			return nil, fmt.Errorf("hook record argument of %d bytes overruns %d", n, len(data))
		}
		if typ == argImaHash {
			h, err := decodeImaHash(data[:n])
			if err != nil {
				return nil, err
			}
			rec.ImaHash = h
			data = data[n:]
			continue
		}
		a := HookArg{Truncated: trunc}
		switch typ {
		case argInt:
			if n != 8 {
				return nil, fmt.Errorf("hook record integer of %d bytes", n)
			}
			a.Int = int64(binary.LittleEndian.Uint64(data))
		case argSock:
			sk, err := decodeSock(data[:n])
			if err != nil {
				return nil, err
			}
			a.Sock, a.Str = sk, sk.String()
		case argCred:
			c, err := decodeCred(data[:n])
			if err != nil {
				return nil, err
			}
			a.Cred, a.Str = c, c.String()
		case argBpfAttr, argPerfEvent, argBpfMap, argBpfProg:
			o, err := decodeBpfObject(typ, data[:n])
			if err != nil {
				return nil, err
			}
			a.Object, a.Str = o, o.String()
		case argSockaddr:
			sk, err := decodeSock(data[:n])
			if err != nil {
				return nil, err
			}
			a.Sock, a.Str = sk, sk.SockaddrString()
		default:
			a.Str = string(data[:n])
		}
		rec.Args = append(rec.Args, a)
		data = data[n:]
	}
	return rec, nil
}

// decodeStack reads the return addresses bpf_get_stack wrote, as many as
// it found; a zero address, where a walk went astray, ends the stack.
func decodeStack(b []byte) []uint64 {
	if len(b) < 8 {
		return nil
	}
	frames := make([]uint64, 0, len(b)/8)
	for ; len(b) >= 8; b = b[8:] {
		ip := binary.LittleEndian.Uint64(b)
		if ip == 0 {
			break
		}
		frames = append(frames, ip)
	}
	return frames
}

// SockaddrString renders a sockaddr argument, read as a Sock whose Source
// is the address: "10.0.0.5:443", "[fd00::1]:443"; a sockaddr of another
// family than AF_INET and AF_INET6 as "family N".
func (s Sock) SockaddrString() string {
	if s.Family != afInet && s.Family != afInet6 {
		return fmt.Sprintf("family %d", s.Family)
	}
	return s.Source.String()
}

func nativeUint32(b [4]byte) uint32 { return binary.NativeEndian.Uint32(b[:]) }

func putNativeUint32(b []byte, v uint32) { binary.NativeEndian.PutUint32(b, v) }

// imaDigestSizes are the digest sizes of the kernel's hash algorithms
// (enum hash_algo, named from its BTF) that IMA uses, by the name
// Tetragon gives them.
var imaDigestSizes = map[string]int{
	"md5": 16, "sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48, "sha512": 64,
	"wp512": 64, "sm3": 32, "streebog256": 32, "streebog512": 64,
}

// decodeImaHash decodes an ARG_IMA_HASH entry: the enum hash_algo, then
// the digest, written into IMA_HASH_MAX bytes.
func decodeImaHash(b []byte) (string, error) {
	if len(b) < 1 {
		return "", errors.New("hook record IMA hash without its algorithm")
	}
	name := strings.ToLower(strings.TrimPrefix(enumName("hash_algo", uint32(b[0])), "HASH_ALGO_"))
	name = strings.NewReplacer("_", "", "sm3256", "sm3").Replace(name)
	size, ok := imaDigestSizes[name]
	if !ok || size > len(b)-1 {
		return "", fmt.Errorf("hook record IMA hash of algorithm %d (%s), which Vigil does not size", b[0], name)
	}
	return name + ":" + hex.EncodeToString(b[1:1+size]), nil
}
