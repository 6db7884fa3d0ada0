package kernel_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// argTypeTest is a kprobe with an argument of one type, a call of its
// function, and what the records of that call must say.
type argTypeTest struct {
	name  string
	hook  policy.KProbeSpec
	run   func(t *testing.T)
	check func(t *testing.T, recs []*kernel.HookRecord)
}

func kprobePolicy(k policy.KProbeSpec) *policy.TracingPolicy {
	return &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "arg-types"},
		Spec:     policy.Spec{KProbes: []policy.KProbeSpec{k}},
	}
}

// allHookRecords drains the sensor for a while after run and returns every
// hook record: the hooks below fire in contexts (softirq, a forked child
// before its exec) whose pid the caller does not know in advance.
func allHookRecords(t *testing.T, s *kernel.Sensor, run func()) []*kernel.HookRecord {
	t.Helper()
	run()
	var out []*kernel.HookRecord
	s.SetDeadline(time.Now().Add(500 * time.Millisecond))
	for {
		r, err := s.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := r.(*kernel.HookRecord); ok {
			out = append(out, h)
		}
	}
}

// TestKprobeArgumentTypes reads each of Tetragon's structured argument
// types of kernel functions from a real call: cred (commit_creds of a child
// that drops to nobody), linux_binprm (security_bprm_check of an exec),
// socket (security_socket_connect, filtered on its protocol), skb
// (tcp_v4_rcv of a SYN, filtered on its destination), capability
// (cap_capable of a chown), a kernel_cap_t (security_capset) and resolve
// paths from a linux_binprm. Without
// kprobes each policy is refused, naming what is missing.
func TestKprobeArgumentTypes(t *testing.T) {
	testenv.RequireBPF(t)
	port := loopbackListener(t)
	_, f := files(t, "owned")
	tests := []argTypeTest{
		{
			name: "cred",
			hook: policy.KProbeSpec{Call: "commit_creds", Args: []policy.ArgSpec{{Index: 0, Type: "cred"}}},
			run: func(t *testing.T) {
				cmd := exec.Command("/bin/bash", "-c", "true")
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("bash as nobody: %v %s", err, out)
				}
			},
			check: func(t *testing.T, recs []*kernel.HookRecord) {
				for _, r := range recs {
					if c := r.Args[0].Cred; c != nil && c.UID == 65534 && c.EUID == 65534 && c.GID == 65534 && c.FSUID == 65534 {
						if !strings.Contains(r.Args[0].Str, "uid=65534 gid=65534 euid=65534") {
							t.Errorf("cred rendered %q", r.Args[0].Str)
						}
						return
					}
				}
				t.Errorf("no commit_creds of uid 65534 among %d records", len(recs))
			},
		},
		{
			name: "linux_binprm",
			hook: policy.KProbeSpec{
				Call: "security_bprm_check", Args: []policy.ArgSpec{{Index: 0, Type: "linux_binprm"}},
				Selectors: []policy.SelectorSpec{{MatchArgs: []policy.ArgSelector{{Index: 0, Operator: "Postfix", Values: []string{"/bash"}}}}},
			},
			run: func(t *testing.T) { runCmd(t, "/bin/bash", "-c", "true") },
			check: func(t *testing.T, recs []*kernel.HookRecord) {
				if len(recs) == 0 {
					t.Fatal("no exec of bash reported")
				}
				for _, r := range recs {
					if !strings.HasPrefix(r.Args[0].Str, "/") || !strings.HasSuffix(r.Args[0].Str, "/bash") {
						t.Errorf("binprm read as %q", r.Args[0].Str)
					}
				}
			},
		},
		{
			name: "socket",
			hook: policy.KProbeSpec{
				Call: "security_socket_connect", Args: []policy.ArgSpec{{Index: 0, Type: "socket"}},
				Selectors: []policy.SelectorSpec{{MatchArgs: []policy.ArgSelector{{Index: 0, Operator: "Protocol", Values: []string{"IPPROTO_UDP"}}}}},
			},
			run: func(t *testing.T) {
				// A UDP connect, then a TCP one the selector leaves out.
				u, err := net.Dial("udp4", "127.0.0.1:9")
				if err != nil {
					t.Fatal(err)
				}
				u.Close()
				c, err := net.Dial("tcp4", "127.0.0.1:"+strconv.Itoa(port))
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
			},
			check: func(t *testing.T, recs []*kernel.HookRecord) {
				var udp int
				for _, r := range recs {
					sk := r.Args[0].Sock
					if sk == nil || sk.Protocol != unix.IPPROTO_UDP || sk.Family != unix.AF_INET {
						t.Errorf("socket read as %+v (%q)", sk, r.Args[0].Str)
						continue
					}
					if r.PID == uint32(os.Getpid()) {
						udp++
					}
				}
				if udp != 1 {
					t.Errorf("%d UDP connects of the test reported, want 1", udp)
				}
			},
		},
		{
			// A kernel sockaddr, as Tetragon's security-socket-connect
			// example reads it, beside the socket.
			name: "sockaddr",
			hook: policy.KProbeSpec{
				Call: "security_socket_connect", Args: []policy.ArgSpec{{Index: 0, Type: "socket"}, {Index: 1, Type: "sockaddr"}},
				Selectors: []policy.SelectorSpec{{MatchArgs: []policy.ArgSelector{
					{Index: 1, Operator: "SAddr", Values: []string{"127.0.0.2"}},
					{Index: 1, Operator: "Family", Values: []string{"AF_INET"}},
				}}},
			},
			run: func(t *testing.T) {
				for _, addr := range []string{"127.0.0.2", "127.0.0.1"} {
					if c, err := net.DialTimeout("tcp4", addr+":"+strconv.Itoa(port), time.Second); err == nil {
						c.Close()
					}
				}
			},
			check: func(t *testing.T, recs []*kernel.HookRecord) {
				want := fmt.Sprintf("127.0.0.2:%d", port)
				if len(recs) != 1 || recs[0].Args[1].Str != want || recs[0].Args[0].Sock == nil || recs[0].Args[0].Sock.Protocol != unix.IPPROTO_TCP {
					t.Fatalf("records %+v, want the connect to %s", recs, want)
				}
			},
		},
		{
			name: "skb",
			hook: policy.KProbeSpec{
				Call: "tcp_v4_rcv", Args: []policy.ArgSpec{{Index: 0, Type: "skb"}},
				Selectors: []policy.SelectorSpec{{MatchArgs: []policy.ArgSelector{
					{Index: 0, Operator: "DAddr", Values: []string{"127.0.0.2/32"}},
					{Index: 0, Operator: "DPort", Values: []string{strconv.Itoa(port)}},
				}}},
			},
			run: func(t *testing.T) {
				c, err := net.DialTimeout("tcp4", "127.0.0.2:"+strconv.Itoa(port), time.Second)
				if err == nil {
					c.Close()
				}
				// 127.0.0.1 carries the same port: the selector must
				// leave it out.
				if c, err = net.Dial("tcp4", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
					c.Close()
				}
			},
			check: func(t *testing.T, recs []*kernel.HookRecord) {
				if len(recs) == 0 {
					t.Fatal("no packet to 127.0.0.2 reported")
				}
				want := fmt.Sprintf("127.0.0.2:%d", port)
				for _, r := range recs {
					sk := r.Args[0].Sock
					if sk == nil || sk.Protocol != unix.IPPROTO_TCP || sk.Destination.String() != want ||
						!sk.Source.Addr().IsLoopback() || sk.Source.Port() == 0 {
						t.Errorf("skb read as %+v (%q), want tcp to %s", sk, r.Args[0].Str, want)
					}
				}
			},
		},
		{
			name: "capability",
			hook: policy.KProbeSpec{
				Call: "cap_capable", Args: []policy.ArgSpec{{Index: 2, Type: "capability"}},
				Selectors: []policy.SelectorSpec{{
					MatchArgs:     []policy.ArgSelector{{Index: 2, Operator: "Equal", Values: []string{"0"}}},
					MatchBinaries: []policy.BinarySelector{{Operator: "Postfix", Values: []string{"/chown"}}},
				}},
			},
			run: func(t *testing.T) { runCmd(t, "/bin/chown", "65534", f[0]) },
			check: func(t *testing.T, recs []*kernel.HookRecord) {
				if len(recs) == 0 {
					t.Fatal("chown's CAP_CHOWN check not reported")
				}
				for _, r := range recs {
					if r.Args[0].Int != 0 {
						t.Errorf("capability read as %d", r.Args[0].Int)
					}
				}
			},
		},
		{
			name: "kernel_cap_t",
			hook: policy.KProbeSpec{
				Call: "security_capset",
				Args: []policy.ArgSpec{{Index: 2, Type: "cap_effective"}, {Index: 4, Type: "cap_permitted"}},
				Selectors: []policy.SelectorSpec{{
					MatchPIDs: []policy.PIDSelector{{Operator: "In", Values: []uint32{uint32(os.Getpid())}}},
					MatchArgs: []policy.ArgSelector{{Index: 2, Operator: "Mask", Values: []string{"CAP_CHOWN"}}},
				}},
			},
			run: func(t *testing.T) {
				// Set the thread's capabilities to what they are.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
				var data [2]unix.CapUserData
				if err := unix.Capget(&hdr, &data[0]); err != nil {
					t.Fatal(err)
				}
				if err := unix.Capset(&hdr, &data[0]); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, recs []*kernel.HookRecord) {
				hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
				var data [2]unix.CapUserData
				if err := unix.Capget(&hdr, &data[0]); err != nil {
					t.Fatal(err)
				}
				eff := uint64(data[0].Effective) | uint64(data[1].Effective)<<32
				perm := uint64(data[0].Permitted) | uint64(data[1].Permitted)<<32
				if len(recs) != 1 || uint64(recs[0].Args[0].Int) != eff || uint64(recs[0].Args[1].Int) != perm {
					t.Errorf("records %+v, want one capset with effective %#x, permitted %#x", recs, eff, perm)
				}
			},
		},
		{
			// CapabilitiesGained compares two capability sets of the
			// call, old then new: here the new effective set and the
			// new permitted one, which has a capability the effective
			// lacks only in the second of three capsets.
			name: "CapabilitiesGained",
			hook: policy.KProbeSpec{
				Call: "security_capset",
				Args: []policy.ArgSpec{{Index: 2, Type: "cap_effective"}, {Index: 4, Type: "cap_permitted"}},
				Selectors: []policy.SelectorSpec{{
					MatchPIDs: []policy.PIDSelector{{Operator: "In", Values: []uint32{uint32(os.Getpid())}}},
					MatchArgs: []policy.ArgSelector{{Args: []uint32{0, 1}, Operator: "CapabilitiesGained"}},
				}},
			},
			run: func(t *testing.T) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
				var data [2]unix.CapUserData
				if err := unix.Capget(&hdr, &data[0]); err != nil {
					t.Fatal(err)
				}
				full := data[0].Effective
				for _, eff := range []uint32{full, full &^ (1 << unix.CAP_NET_RAW), full} {
					data[0].Effective = eff
					if err := unix.Capset(&hdr, &data[0]); err != nil {
						t.Fatal(err)
					}
				}
			},
			check: func(t *testing.T, recs []*kernel.HookRecord) {
				if len(recs) != 1 || recs[0].Args[0].Int&(1<<unix.CAP_NET_RAW) != 0 {
					t.Errorf("records %+v, want the one capset whose effective set lacks CAP_NET_RAW", recs)
				}
			},
		},
		{
			// tty_write(kiocb, iov_iter), as Tetragon's tty example
			// hooks it: a write to a pseudo-terminal's master.
			name: "kiocb and iov_iter",
			hook: policy.KProbeSpec{
				Call: "tty_write",
				Args: []policy.ArgSpec{{Index: 0, Type: "kiocb"}, {Index: 1, Type: "iov_iter", MaxData: true}},
				Selectors: []policy.SelectorSpec{{
					MatchPIDs: []policy.PIDSelector{{Operator: "In", Values: []uint32{uint32(os.Getpid())}}},
					MatchArgs: []policy.ArgSelector{{Index: 1, Operator: "Prefix", Values: []string{"vigil-tty-"}}},
				}},
			},
			run: func(t *testing.T) {
				// A devpts instance of the test's own: the VM's
				// /dev has no ptmx.
				dir := t.TempDir()
				if err := unix.Mount("devpts", dir, "devpts", 0, "newinstance,ptmxmode=0600"); err != nil {
					t.Fatalf("mounting devpts: %v", err)
				}
				defer unix.Unmount(dir, unix.MNT_DETACH)
				ptmx, err := os.OpenFile(filepath.Join(dir, "ptmx"), os.O_RDWR|unix.O_NOCTTY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer ptmx.Close()
				if _, err := ptmx.Write([]byte("vigil-tty-data\n")); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, recs []*kernel.HookRecord) {
				if len(recs) != 1 || recs[0].Args[1].Str != "vigil-tty-data\n" || !strings.HasSuffix(recs[0].Args[0].Str, "ptmx") {
					t.Fatalf("records %+v, want the write of vigil-tty-data to ptmx", recs)
				}
			},
		},
		{
			// resolve: members of the linux_binprm, through pointers,
			// read as a file, an int and the parent's comm.
			name: "resolve",
			hook: policy.KProbeSpec{
				Call: "security_bprm_check",
				Args: []policy.ArgSpec{
					{Index: 0, Type: "file", Resolve: "file"},
					{Index: 0, Type: "int", Resolve: "argc"},
					{Index: 0, Type: "string", Resolve: "mm.owner.real_parent.comm"},
				},
				Selectors: []policy.SelectorSpec{{MatchArgs: []policy.ArgSelector{{Index: 0, Operator: "Postfix", Values: []string{"/vigil-resolve-true"}}}}},
			},
			run: func(t *testing.T) {
				// A copy under a name of its own; busybox copies fail to
				// find their applet, after the exec all the same.
				runCmd(t, copyBinary(t, "/bin/true", "vigil-resolve-true"), "a", "b", "c")
			},
			check: func(t *testing.T, recs []*kernel.HookRecord) {
				comm, err := os.ReadFile("/proc/self/comm")
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) != 1 {
					t.Fatalf("%d records, want the one exec", len(recs))
				}
				a := recs[0].Args
				if !strings.HasSuffix(a[0].Str, "/vigil-resolve-true") || a[1].Int != 4 || a[2].Str != strings.TrimSpace(string(comm)) {
					t.Errorf("file %q, argc %d, parent %q; want the copy of true, 4, %q", a[0].Str, a[1].Int, a[2].Str, strings.TrimSpace(string(comm)))
				}
			},
		},
	}
	// dentry (security_inode_unlink of a file removed, filtered on its
	// name) and a module's name (do_init_module is what every module load
	// runs; none is loaded here, so only the policy's loading is checked).
	gone := filepath.Join(t.TempDir(), "vigil-unlinked")
	tests = append(tests, argTypeTest{
		name: "dentry",
		hook: policy.KProbeSpec{
			Call: "security_inode_unlink", Args: []policy.ArgSpec{{Index: 1, Type: "dentry"}},
			Selectors: []policy.SelectorSpec{{MatchArgs: []policy.ArgSelector{{Index: 1, Operator: "Postfix", Values: []string{"/vigil-unlinked"}}}}},
		},
		run: func(t *testing.T) {
			if err := os.WriteFile(gone, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(gone); err != nil {
				t.Fatal(err)
			}
		},
		check: func(t *testing.T, recs []*kernel.HookRecord) {
			// The path from the root of the file's filesystem: the whole
			// path where /tmp is not a mount of its own.
			if len(recs) != 1 || !strings.HasSuffix(gone, recs[0].Args[0].Str) || !strings.HasPrefix(recs[0].Args[0].Str, "/") {
				t.Fatalf("records %+v: want the unlink of %s, by its path in its filesystem", recs, gone)
			}
		},
	}, argTypeTest{
		// The user namespace of a capability check, as its inode number:
		// a chown by root is checked in the initial one.
		name: "user_namespace",
		hook: policy.KProbeSpec{
			Call: "cap_capable", Args: []policy.ArgSpec{{Index: 1, Type: "user_namespace"}, {Index: 2, Type: "capability"}},
			Selectors: []policy.SelectorSpec{{
				MatchArgs:     []policy.ArgSelector{{Index: 2, Operator: "Equal", Values: []string{"0"}}},
				MatchBinaries: []policy.BinarySelector{{Operator: "Postfix", Values: []string{"/chown"}}},
			}},
		},
		run: func(t *testing.T) { runCmd(t, "/bin/chown", "65534", f[0]) },
		check: func(t *testing.T, recs []*kernel.HookRecord) {
			var st syscall.Stat_t
			if err := syscall.Stat("/proc/self/ns/user", &st); err != nil {
				t.Fatal(err)
			}
			if len(recs) == 0 {
				t.Fatal("chown's CAP_CHOWN check not reported")
			}
			for _, r := range recs {
				if uint64(r.Args[0].Int) != st.Ino {
					t.Errorf("user namespace read as %d, want %d", r.Args[0].Int, st.Ino)
				}
			}
		},
	}, argTypeTest{
		// A user buffer handed to a kernel function: vfs_write's, its
		// size the third argument.
		name: "char_buf",
		hook: policy.KProbeSpec{
			Call: "vfs_write", Args: []policy.ArgSpec{{Index: 1, Type: "char_buf", SizeArgIndex: 3}, {Index: 2, Type: "size_t"}},
			Selectors: []policy.SelectorSpec{{MatchBinaries: []policy.BinarySelector{{Operator: "Postfix", Values: []string{"/tee"}}}}},
		},
		run: func(t *testing.T) {
			cmd := exec.Command("/usr/bin/tee", filepath.Join(t.TempDir(), "out"))
			cmd.Stdin = strings.NewReader("vigil-char-buf\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("tee: %v %s", err, out)
			}
		},
		check: func(t *testing.T, recs []*kernel.HookRecord) {
			for _, r := range recs {
				if strings.Contains(r.Args[0].Str, "vigil-char-buf") {
					return
				}
			}
			t.Errorf("no vfs_write of tee's buffer among %d records", len(recs))
		},
	}, argTypeTest{
		name:  "module",
		hook:  policy.KProbeSpec{Call: "do_init_module", Args: []policy.ArgSpec{{Index: 0, Type: "module"}}},
		run:   func(t *testing.T) {},
		check: func(t *testing.T, recs []*kernel.HookRecord) {},
	})
	tests = append(tests, bpfObjectTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _, ok := installIfSupported(t, kprobePolicy(tc.hook), testenv.KernelHas(t, kernel.FeatureKprobe), "CONFIG_KPROBES")
			if ok {
				tc.check(t, allHookRecords(t, s, func() { tc.run(t) }))
			}
		})
	}
}

// bpfObjectTests read the bpf_attr of a program load (bpf_check), the
// bpf_map of a map creation (security_bpf_map_alloc before Linux 6.9,
// security_bpf_map_create since) and the perf_event of a perf_event_open
// (security_perf_event_alloc), as Tetragon's bpf example policy hooks them.
var bpfObjectTests = []argTypeTest{
	{
		name: "bpf_attr",
		hook: policy.KProbeSpec{Call: "bpf_check", Args: []policy.ArgSpec{{Index: 1, Type: "bpf_attr"}}},
		run: func(t *testing.T) {
			prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "vigil_t_prog", Type: ebpf.SocketFilter, License: "GPL",
				Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
			if err != nil {
				t.Fatal(err)
			}
			prog.Close()
		},
		check: func(t *testing.T, recs []*kernel.HookRecord) {
			want := kernel.BpfAttr{ProgType: uint32(ebpf.SocketFilter), InsnCnt: 2, ProgName: "vigil_t_prog"}
			checkBpfObject(t, recs, want, "BPF_PROG_TYPE_SOCKET_FILTER vigil_t_prog (2 instructions)")
		},
	},
	{
		// A loaded program, as bpf_prog_kallsyms_add sees it once
		// JITed (Debian kernels JIT).
		name: "bpf_prog",
		hook: policy.KProbeSpec{Call: "bpf_prog_kallsyms_add", Args: []policy.ArgSpec{{Index: 0, Type: "bpf_prog"}}},
		run: func(t *testing.T) {
			prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "vigil_t_prog2", Type: ebpf.SocketFilter, License: "GPL",
				Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
			if err != nil {
				t.Fatal(err)
			}
			prog.Close()
		},
		check: func(t *testing.T, recs []*kernel.HookRecord) {
			want := kernel.BpfAttr{ProgType: uint32(ebpf.SocketFilter), InsnCnt: 2, ProgName: "vigil_t_prog2"}
			checkBpfObject(t, recs, want, "BPF_PROG_TYPE_SOCKET_FILTER vigil_t_prog2 (2 instructions)")
		},
	},
	{
		name: "bpf_map",
		hook: policy.KProbeSpec{Call: mapCreateHook(), Args: []policy.ArgSpec{{Index: 0, Type: "bpf_map"}}},
		run: func(t *testing.T) {
			m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "vigil_t_map", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 7})
			if err != nil {
				t.Fatal(err)
			}
			m.Close()
		},
		check: func(t *testing.T, recs []*kernel.HookRecord) {
			want := kernel.BpfMap{MapType: uint32(ebpf.Hash), KeySize: 4, ValueSize: 8, MaxEntries: 7, MapName: "vigil_t_map"}
			checkBpfObject(t, recs, want, "BPF_MAP_TYPE_HASH vigil_t_map (key 4, value 8, 7 entries)")
		},
	},
	{
		name: "perf_event",
		hook: policy.KProbeSpec{Call: "security_perf_event_alloc", Args: []policy.ArgSpec{{Index: 0, Type: "perf_event"}}},
		run: func(t *testing.T) {
			attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_DUMMY,
				Size: uint32(unsafe.Sizeof(unix.PerfEventAttr{}))}
			fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
			if err != nil {
				t.Fatal(err)
			}
			unix.Close(fd)
		},
		check: func(t *testing.T, recs []*kernel.HookRecord) {
			want := kernel.PerfEvent{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_DUMMY}
			checkBpfObject(t, recs, want, fmt.Sprintf("PERF_TYPE_SOFTWARE config %d", unix.PERF_COUNT_SW_DUMMY))
		},
	},
}

// checkBpfObject wants a record whose argument is want, rendered as str.
func checkBpfObject(t *testing.T, recs []*kernel.HookRecord, want fmt.Stringer, str string) {
	t.Helper()
	for _, r := range recs {
		if r.Args[0].Object == want {
			if r.Args[0].Str != str {
				t.Errorf("%+v rendered %q, want %q", want, r.Args[0].Str, str)
			}
			return
		}
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Args[0].Str)
	}
	t.Errorf("no record of %+v among %d: %q", want, len(recs), got)
}

// mapCreateHook is the LSM function that sees a new map on this kernel:
// security_bpf_map_create replaced security_bpf_map_alloc in Linux 6.9.
func mapCreateHook() string {
	if syms, err := os.ReadFile("/proc/kallsyms"); err == nil && strings.Contains(string(syms), " security_bpf_map_create\n") {
		return "security_bpf_map_create"
	}
	return "security_bpf_map_alloc"
}

// TestKprobeOnAMissingFunctionIsLeftOut installs a kprobe whose function no
// kernel has, with ignore.callNotFound: the policy loads, and the hook
// says it is not attached.
func TestKprobeOnAMissingFunctionIsLeftOut(t *testing.T) {
	hook := policy.KProbeSpec{Call: "vigil_no_such_function", Ignore: &policy.IgnoreSpec{CallNotFound: true}}
	_, ph, ok := installIfSupported(t, kprobePolicy(hook), testenv.KernelHas(t, kernel.FeatureKprobe), "CONFIG_KPROBES")
	if ok && ph.Hooks[0].Mechanism != kernel.MechanismNotFound {
		t.Errorf("mechanism %q, want %q", ph.Hooks[0].Mechanism, kernel.MechanismNotFound)
	}
}

// TestSyscallHookOnMissingSyscallsIsLeftOut: a syscall kprobe whose every
// call the kernel lacks, with ignore.callNotFound, loads and says it is not
// attached, on the raw tracepoints and on the wrapper functions alike.
func TestSyscallHookOnMissingSyscallsIsLeftOut(t *testing.T) {
	p := openatPolicy(false)
	p.Spec.KProbes[0].Call = "sys_vigil_no_such_call"
	p.Spec.KProbes[0].Ignore = &policy.IgnoreSpec{CallNotFound: true}
	_, ph := install(t, p)
	if got := ph.Hooks[0].Mechanism; got != kernel.MechanismNotFound {
		t.Errorf("mechanism %q, want %q", got, kernel.MechanismNotFound)
	}
}
