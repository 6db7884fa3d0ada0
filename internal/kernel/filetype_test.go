package kernel_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/policy"
)

// FileType and NotFileType match the type of a file argument's inode:
// read(2) on a regular file, a directory, a pipe and a character device,
// each through an fd argument, seen by the filter in the kernel.
func TestSyscallHookFileType(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "reg")
	if err := os.WriteFile(reg, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := func(path string, flags int) int {
		fd, err := unix.Open(path, flags, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	fds := map[string]int{
		"reg":  open(reg, unix.O_RDONLY),
		"dir":  open(dir, unix.O_RDONLY|unix.O_DIRECTORY),
		"fifo": p[0],
		"chr":  open("/dev/null", unix.O_RDONLY),
	}
	var st unix.Stat_t
	if err := unix.Fstat(p[0], &st); err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{"reg": reg, "dir": dir, "fifo": fmt.Sprintf("pipe:[%d]", st.Ino), "chr": "/dev/null"}
	reads := func() {
		buf := make([]byte, 8)
		for _, name := range []string{"reg", "dir", "fifo", "chr"} {
			if name == "fifo" {
				if _, err := unix.Write(p[1], []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			unix.Read(fds[name], buf) // the directory's fails (EISDIR), after the hook
		}
	}
	for _, tc := range []struct {
		name   string
		op     string
		values []string
		want   []string
	}{
		{"reg", "FileType", []string{"reg"}, []string{"reg"}},
		{"dir or pipe", "FileType", []string{"dir", "pipe"}, []string{"dir", "fifo"}},
		{"char", "FileType", []string{"chr"}, []string{"chr"}},
		{"not reg or dir", "NotFileType", []string{"regular", "dir"}, []string{"fifo", "chr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := install(t, &policy.TracingPolicy{
				APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
				Metadata: policy.ObjectMeta{Name: "filetype"},
				Spec: policy.Spec{KProbes: []policy.KProbeSpec{{
					Call: "sys_read", Syscall: true,
					Args: []policy.ArgSpec{{Index: 0, Type: "fd"}},
					Selectors: []policy.SelectorSpec{{
						MatchPIDs: []policy.PIDSelector{{Operator: "In", Values: []uint32{uint32(os.Getpid())}}},
						MatchArgs: []policy.ArgSelector{{Index: 0, Operator: tc.op, Values: tc.values}},
					}},
				}}},
			})
			// An fd argument reads as the file's path. The runtime
			// reads other fds of its own; only the four opened here
			// count.
			seen := map[string]bool{}
			for _, h := range allHookRecords(t, s, reads) {
				seen[h.Args[0].Str] = true
			}
			var got []string
			for _, name := range []string{"reg", "dir", "fifo", "chr"} {
				if seen[paths[name]] {
					got = append(got, name)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("reads reported on %q, want %q", got, tc.want)
			}
		})
	}
}

// matchArgs args names an argument by its position in the hook's args
// list, not by its index in the function: here position 0 is openat's
// path (index 1), and position 1 its dfd.
func TestSyscallHookMatchArgsByPosition(t *testing.T) {
	_, f := files(t, "target", "other")
	s, _ := install(t, &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "args-position"},
		Spec: policy.Spec{KProbes: []policy.KProbeSpec{{
			Call: "sys_openat", Syscall: true,
			Args: []policy.ArgSpec{{Index: 1, Type: "string"}, {Index: 0, Type: "int"}},
			Selectors: []policy.SelectorSpec{{MatchArgs: []policy.ArgSelector{
				{Args: []uint32{0}, Operator: "Equal", Values: []string{f[0]}},
				{Args: []uint32{1}, Operator: "Equal", Values: []string{strconv.Itoa(unix.AT_FDCWD)}},
			}}},
		}}},
	})
	var got []string
	for _, h := range hookRecords(t, s, func() []int {
		return []int{runCmd(t, "/bin/cat", f[0]), runCmd(t, "/bin/cat", f[1])}
	}) {
		got = append(got, h.Args[0].Str)
	}
	if !slices.Equal(got, f[:1]) {
		t.Errorf("opens reported %q, want %q", got, f[:1])
	}
}

// matchNamespaceChanges: a process that moves into new namespaces after
// its exec is reported on its next hooked call, once per change, for the
// types the selector lists (In) or the others (NotIn).
func TestSyscallHookNamespaceChanges(t *testing.T) {
	dir, f := files(t, "before", "uts-changed", "again", "net-changed")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		op     string
		values []any
		want   []string
	}{
		{"In uts", "In", []any{"Uts"}, []string{f[1]}},
		{"NotIn uts", "NotIn", []any{"Uts"}, []string{f[3]}},
		{"In uts or net", "In", []any{"uts", "Net"}, []string{f[1], f[3]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := install(t, openatPolicy(false, policy.SelectorSpec{
				MatchArgs:             []policy.ArgSelector{pathIs("Prefix", dir+"/")},
				MatchNamespaceChanges: []map[string]any{{"operator": tc.op, "values": tc.values}},
			}))
			var got []string
			for _, h := range hookRecords(t, s, func() []int {
				cmd := exec.Command(self, f[0], "unshare:uts", f[1], f[2], "unshare:net", f[3])
				cmd.Env = append(os.Environ(), helperEnv+"=ns-changes")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("helper: %v %s", err, out)
				}
				return []int{cmd.Process.Pid}
			}) {
				got = append(got, h.Args[1].Str)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("opens reported %q, want %q", got, tc.want)
			}
		})
	}
}

// A hook's data list: entries read from the current task (its tgid and
// comm, through their resolve paths) follow the arguments, and matchData
// filters on them in the kernel.
func TestSyscallHookDataFromCurrentTask(t *testing.T) {
	_, f := files(t, "target")
	s, _ := install(t, &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "data"},
		Spec: policy.Spec{KProbes: []policy.KProbeSpec{{
			Call: "sys_openat", Syscall: true,
			Args: []policy.ArgSpec{{Index: 1, Type: "string"}},
			Data: []policy.ArgSpec{
				{Type: "int32", Source: "current_task", Resolve: "tgid"},
				{Type: "string", Source: "current_task", Resolve: "comm"},
			},
			Selectors: []policy.SelectorSpec{{
				MatchArgs: []policy.ArgSelector{{Index: 1, Operator: "Equal", Values: []string{f[0]}}},
				MatchData: []policy.ArgSelector{{Index: 1, Operator: "Equal", Values: []string{"head"}}},
			}},
		}}},
	})
	var pid int
	recs := hookRecords(t, s, func() []int {
		pid = runCmd(t, "/usr/bin/head", "-c1", f[0])
		return []int{pid, runCmd(t, "/bin/cat", f[0])}
	})
	if len(recs) != 1 || recs[0].Args[0].Str != f[0] || recs[0].Args[1].Int != int64(pid) || recs[0].Args[2].Str != "head" {
		t.Fatalf("records %+v: want head's open, with its tgid %d and comm", recs, pid)
	}
}
