package process

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/testenv"
)

func TestExecIDIsBase64OfNodeKtimePid(t *testing.T) {
	id := ExecID("node-1", 123456789, 42)
	raw, err := base64.StdEncoding.DecodeString(id)
	if err != nil || string(raw) != "node-1:123456789:42" {
		t.Fatalf("ExecID = %q (%q, %v)", id, raw, err)
	}
}

func TestExecForkExitLinkParents(t *testing.T) {
	c := NewCache("n", 100)
	shell := c.Exec(&kernel.ExecRecord{Ktime: 10, PID: 100, PPID: 1, Filename: "/bin/sh", Args: []string{"sh"}, Cwd: "/root"})
	if shell.ParentExecID != "" {
		t.Fatalf("parent of a process whose parent is unknown: %q", shell.ParentExecID)
	}
	clone := c.Fork(&kernel.ForkRecord{Ktime: 20, PID: 101, PPID: 100})
	if clone == nil || !clone.Clone || clone.Binary != "/bin/sh" || clone.ParentExecID != shell.ExecID {
		t.Fatalf("fork: %+v", clone)
	}
	child := c.Exec(&kernel.ExecRecord{Ktime: 30, PID: 101, PPID: 100, Filename: "./tool", Cwd: "/opt/x", Args: []string{"./tool", "-v"}})
	if child.Binary != "/opt/x/tool" {
		t.Errorf("relative filename resolved to %q", child.Binary)
	}
	if child.ParentExecID != shell.ExecID {
		t.Errorf("exec parent %q, want the shell %q", child.ParentExecID, shell.ExecID)
	}
	if got := c.Running(101); got != child {
		t.Errorf("pid 101 runs %+v", got)
	}
	anc := c.Ancestors(child, 5)
	if len(anc) != 1 || anc[0] != shell {
		t.Errorf("ancestors %v", anc)
	}
	exited := c.Exit(&kernel.ExitRecord{PID: 101})
	if exited != child || !child.Exited || c.Running(101) != nil {
		t.Errorf("exit resolved to %+v", exited)
	}
	if c.Exit(&kernel.ExitRecord{PID: 999}) != nil {
		t.Errorf("exit of an unknown pid resolved")
	}
	if c.Get(child.ExecID) != child {
		t.Errorf("an exited process must stay resolvable while there is room")
	}
}

// TestInitTreeFollowsForkAndExec: the init-tree flag passes from parent to
// fork to exec even when the kernel's exec record lacks it (a fork the
// kernel saw before the scan's flags reached it), and a host process's
// children stay outside.
func TestInitTreeFollowsForkAndExec(t *testing.T) {
	c := NewCache("n", 100)
	init := c.Exec(&kernel.ExecRecord{Ktime: 10, PID: 100, PPID: 1, Filename: "/bin/sh",
		Context: kernel.ExecContext{InInitTree: true}})
	host := c.Exec(&kernel.ExecRecord{Ktime: 11, PID: 200, PPID: 1, Filename: "/bin/sh"})
	if !init.InitTree || host.InitTree {
		t.Fatalf("InitTree from the kernel's flag: init %v, host %v", init.InitTree, host.InitTree)
	}
	for _, parent := range []*Process{init, host} {
		clone := c.Fork(&kernel.ForkRecord{Ktime: 20, PID: parent.PID + 1, PPID: parent.PID})
		if clone.InitTree != parent.InitTree {
			t.Errorf("fork of %d: InitTree %v, parent's %v", parent.PID, clone.InitTree, parent.InitTree)
		}
		child := c.Exec(&kernel.ExecRecord{Ktime: 30, PID: parent.PID + 1, PPID: parent.PID, Filename: "/bin/true"})
		if child.InitTree != parent.InitTree || child.Context.InInitTree != parent.InitTree {
			t.Errorf("exec in the fork of %d: InitTree %v, context %v, want %v", parent.PID, child.InitTree, child.Context.InInitTree, parent.InitTree)
		}
	}
}

func TestCacheStaysBoundedAndKeepsRunningProcesses(t *testing.T) {
	c := NewCache("n", 64)
	root := c.Exec(&kernel.ExecRecord{Ktime: 1, PID: 1, Filename: "/sbin/init"})
	for i := uint32(0); i < 1000; i++ {
		pid := 1000 + i
		c.Exec(&kernel.ExecRecord{Ktime: uint64(10 + i), PID: pid, PPID: 1, Filename: "/bin/true"})
		c.Exit(&kernel.ExitRecord{PID: pid})
		if c.Len() > 64 {
			t.Fatalf("cache grew to %d entries", c.Len())
		}
	}
	if c.Get(root.ExecID) != root {
		t.Errorf("the running init was evicted to make room for exited processes")
	}
	if c.ForcedEvictions() != 0 {
		t.Errorf("%d forced evictions with room to spare", c.ForcedEvictions())
	}
	// A cache full of running processes still holds its bound.
	for i := uint32(0); i < 200; i++ {
		c.Exec(&kernel.ExecRecord{Ktime: uint64(5000 + i), PID: 5000 + i, PPID: 1, Filename: "/bin/sleep"})
	}
	if c.Len() > 64 || c.ForcedEvictions() == 0 {
		t.Errorf("len %d, forced evictions %d", c.Len(), c.ForcedEvictions())
	}
}

func TestScanProcFSFindsRunningProcessesWithTheirParents(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("/bin/sleep", "30")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	cgroot, err := kernel.Cgroup2Mount()
	if err != nil {
		testenv.Unavailable(t, "no cgroup2 mount: %v", err)
	}
	c := NewCache("n", 1<<16)
	n, err := c.ScanProcFS("/proc", cgroot)
	if err != nil || n < 2 {
		t.Fatalf("scan: %d processes, %v", n, err)
	}
	p := c.Running(uint32(cmd.Process.Pid))
	if p == nil {
		t.Fatal("the helper process was not found")
	}
	realDir, _ := filepath.EvalSymlinks(dir)
	sleepBin, _ := filepath.EvalSymlinks("/bin/sleep")
	if !p.ProcFS || p.Binary != sleepBin || !slices.Equal(p.Args, []string{"/bin/sleep", "30"}) || p.Cwd != realDir {
		t.Errorf("helper: %+v", p)
	}
	if p.UID != uint32(os.Getuid()) || p.PPID != uint32(os.Getpid()) {
		t.Errorf("helper ids: %+v", p)
	}
	self := c.Running(uint32(os.Getpid()))
	if self == nil || p.ParentExecID != self.ExecID {
		t.Errorf("helper parent %q, want this test process", p.ParentExecID)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(cgroot, cgroupPathOf(t, cmd.Process.Pid)), &st); err != nil || st.Ino != p.CgroupID {
		t.Errorf("cgroup id %d, want %d (%v)", p.CgroupID, st.Ino, err)
	}
	// The exit of a process known only from /proc resolves.
	if got := c.Exit(&kernel.ExitRecord{PID: uint32(cmd.Process.Pid)}); got != p {
		t.Errorf("exit resolved to %+v", got)
	}
}

func cgroupPathOf(t *testing.T, pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "0::") {
			return l[3:]
		}
	}
	t.Fatal("no cgroup v2 line")
	return ""
}
