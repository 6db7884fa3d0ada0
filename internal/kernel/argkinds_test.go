package kernel_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
)

// ownSyscallPolicy hooks syscall call of this test process only.
func ownSyscallPolicy(call string, args ...policy.ArgSpec) *policy.TracingPolicy {
	return &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "argkinds"},
		Spec: policy.Spec{KProbes: []policy.KProbeSpec{{
			Call: call, Syscall: true, Args: args,
			Selectors: []policy.SelectorSpec{{MatchPIDs: []policy.PIDSelector{{Operator: "In", Values: []uint32{uint32(os.Getpid())}}}}},
		}}},
	}
}

// char_iovec reads the first buffer of writev's vector; a vector of more
// than one is marked truncated.
func TestCharIovecArgument(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, _ := install(t, ownSyscallPolicy("sys_writev", policy.ArgSpec{Index: 0, Type: "fd"},
		policy.ArgSpec{Index: 1, Type: "char_iovec", SizeArgIndex: 3}))
	var got []kernel.HookArg
	for _, r := range allHookRecords(t, s, func() {
		unix.Writev(int(f.Fd()), [][]byte{[]byte("first")})
		unix.Writev(int(f.Fd()), [][]byte{[]byte("one"), []byte("two")})
	}) {
		if r.Args[0].Str == f.Name() {
			got = append(got, r.Args[1])
		}
	}
	if len(got) != 2 || got[0].Str != "first" || got[0].Truncated || got[1].Str != "one" || !got[1].Truncated {
		t.Fatalf("writev buffers %+v, want \"first\", then \"one\" truncated", got)
	}
}

// sockaddr_un reads a Unix socket's path, an abstract name as "@name".
func TestSockaddrUnArgument(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sock")
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	p := ownSyscallPolicy("sys_connect", policy.ArgSpec{Index: 1, Type: "sockaddr_un"})
	s, _ := install(t, p)
	var got []string
	for _, r := range allHookRecords(t, s, func() {
		for _, name := range []string{path, "@vigil-abstract-test"} {
			c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			unix.Connect(c, &unix.SockaddrUnix{Name: name}) // the abstract one is refused, after the hook
			unix.Close(c)
		}
	}) {
		got = append(got, r.Args[0].Str)
	}
	if strings.Join(got, " ") != path+" @vigil-abstract-test" {
		t.Fatalf("connect paths %q, want %q and the abstract name", got, path)
	}
}

// bpf_cmd is an int the event names from the kernel's enum.
func TestBpfCmdNames(t *testing.T) {
	if got := kernel.EnumName("bpf_cmd", 5); got != "BPF_PROG_LOAD" {
		t.Errorf("bpf_cmd 5 named %q, want BPF_PROG_LOAD", got)
	}
}
