package ebpfreceiver

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/event"
)

// procStatusMask reads a capability mask (CapEff...) of pid from the
// kernel's own report of it.
func procStatusMask(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int64(n)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func nsInode(t *testing.T, pid int, ns string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, ns), &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Ino)
}

func strSlice(v pcommon.Value, ok bool) []string {
	var out []string
	if ok && v.Type() == pcommon.ValueTypeSlice {
		for _, e := range v.Slice().All() {
			out = append(out, e.AsString())
		}
	}
	return out
}

// TestExecEventsCarryTheSecurityContext checks each part of the exec
// context against what the kernel shows in /proc for the same process:
// capabilities, namespaces, login uid; then the exec properties detections
// key on: a setuid binary run by another user, a program run from memory,
// from a deleted file and from a tmpfs, a container's init tree, and the
// environment with values masked unless allowed.
func TestExecEventsCarryTheSecurityContext(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Process.Environment = EnvironmentConfig{Enabled: true, Values: []string{"VIGIL_VISIBLE"}}
	_, sink, _ := startReceiver(t, cfg)
	trueBin, _ := exec.LookPath("true")
	execOf := func(pid int) record { return waitFor(t, sink, "exec", isEvent(event.NameProcessExec, pid)) }

	t.Run("credentials and namespaces as /proc shows them", func(t *testing.T) {
		cmd := exec.Command("/bin/sleep", "5")
		cmd.Env = []string{"VIGIL_VISIBLE=yes", "VIGIL_SECRET=hunter2"}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		pid := cmd.Process.Pid
		rec := execOf(pid)
		for attr, field := range map[string]string{event.AttrCapEffective: "CapEff", event.AttrCapPermitted: "CapPrm", event.AttrCapInheritable: "CapInh"} {
			if got, want := rec.int(attr), procStatusMask(t, pid, field); got != want {
				t.Errorf("%s = %#x, /proc says %#x", attr, got, want)
			}
		}
		ns, _ := rec.lr.Attributes().Get(event.AttrNamespaces)
		for _, n := range []string{"mnt", "pid", "net", "uts", "ipc", "cgroup", "user", "time"} {
			got, _ := ns.Map().Get(n)
			if want := nsInode(t, pid, n); got.Int() != want {
				t.Errorf("namespaces.%s = %d, /proc says %d", n, got.Int(), want)
			}
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/loginuid", pid)); err == nil {
			want, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if got := rec.int(event.AttrAUID); (want == 4294967295 && got != -1) || (want != 4294967295 && got != want) {
				t.Errorf("auid = %d, /proc says %d (-1: absent)", got, want)
			}
		}
		if env := strSlice(rec.lr.Attributes().Get(event.AttrEnv)); !slices.Equal(env, []string{"VIGIL_VISIBLE=yes", "VIGIL_SECRET=*****"}) {
			t.Errorf("env = %q", env)
		}
		for _, a := range []string{event.AttrPrivilegesRaised, event.AttrInInitTree} {
			if _, ok := rec.lr.Attributes().Get(a); ok {
				t.Errorf("a plain exec has %s", a)
			}
		}
		// /bin/sleep is on disk, except where the root is a tmpfs (the VM
		// lane's initramfs): the kernel's statfs says which.
		var fs unix.Statfs_t
		if err := unix.Statfs("/bin/sleep", &fs); err != nil {
			t.Fatal(err)
		}
		want := ""
		if fs.Type == unix.TMPFS_MAGIC {
			want = "tmpfs"
		}
		if got := rec.str(event.AttrExecFile); got != want {
			t.Errorf("exec_file = %q for /bin/sleep, want %q", got, want)
		}
	})

	t.Run("setuid binary run by another user", func(t *testing.T) {
		bin := filepath.Join(publicTempDir(t), "true")
		copyFile(t, trueBin, bin, 0o755)
		if err := unix.Chmod(bin, 0o4755); err != nil {
			t.Fatal(err)
		}
		rec := execOf(nobody(t, bin))
		if got := strSlice(rec.lr.Attributes().Get(event.AttrPrivilegesRaised)); !slices.Equal(got, []string{"setuid"}) {
			t.Errorf("privileges_raised = %q, want [setuid] (uid %d euid %d)", got, rec.int(event.AttrProcessRealUserID), rec.int(event.AttrProcessUserID))
		}
	})

	t.Run("file capabilities run by another user", func(t *testing.T) {
		bin := filepath.Join(publicTempDir(t), "true")
		copyFile(t, trueBin, bin, 0o755)
		// struct vfs_cap_data, revision 2, effective: CAP_NET_RAW (13)
		// permitted.
		caps := make([]byte, 20)
		binary.LittleEndian.PutUint32(caps[0:], 0x02000000|1)
		binary.LittleEndian.PutUint32(caps[4:], 1<<13)
		if err := unix.Setxattr(bin, "security.capability", caps, 0); err != nil {
			t.Fatal(err)
		}
		rec := execOf(nobody(t, bin))
		if got := strSlice(rec.lr.Attributes().Get(event.AttrPrivilegesRaised)); !slices.Equal(got, []string{"file_capabilities"}) {
			t.Errorf("privileges_raised = %q, want [file_capabilities]", got)
		}
		if got := rec.int(event.AttrCapEffective); got != 1<<13 {
			t.Errorf("cap.effective = %#x, want CAP_NET_RAW alone", got)
		}
	})

	t.Run("program run from memory", func(t *testing.T) {
		if got := execOf(run(t, memfdCommand(t, trueBin))).str(event.AttrExecFile); got != "memfd" {
			t.Errorf("exec_file = %q, want memfd", got)
		}
	})

	t.Run("program run from a deleted file", func(t *testing.T) {
		if got := execOf(run(t, deletedCommand(t, t.TempDir(), trueBin))).str(event.AttrExecFile); got != "deleted" {
			t.Errorf("exec_file = %q, want deleted", got)
		}
	})

	t.Run("program run from a tmpfs", func(t *testing.T) {
		dir := t.TempDir()
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
			t.Fatal(err)
		}
		defer unix.Unmount(dir, unix.MNT_DETACH)
		bin := filepath.Join(dir, "true")
		copyFile(t, trueBin, bin, 0o755)
		if got := execOf(run(t, exec.Command(bin))).str(event.AttrExecFile); got != "tmpfs" {
			t.Errorf("exec_file = %q, want tmpfs", got)
		}
	})

	t.Run("a container's init tree", func(t *testing.T) {
		// pid 1 of a new pid namespace, and a child it forks; a process
		// outside is not in the tree.
		marker := filepath.Join(t.TempDir(), "child-pid")
		cmd := exec.Command("/bin/sh", "-c", "/bin/sh -c 'echo $PPID > "+marker+"; exit 0'; exit 0")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
		init := run(t, cmd)
		if rec := execOf(init); !rec.lr.Attributes().AsRaw()[event.AttrInInitTree].(bool) {
			t.Errorf("pid 1 of a pid namespace: in_init_tree absent")
		}
		child := waitFor(t, sink, "the init's child", func(r record) bool {
			return r.lr.EventName() == event.NameProcessExec && r.str(event.AttrParentExecID) == execOf(init).str(event.AttrExecID)
		})
		if v, ok := child.lr.Attributes().Get(event.AttrInInitTree); !ok || !v.Bool() {
			t.Errorf("the init's child: in_init_tree absent")
		}
		if _, ok := execOf(run(t, exec.Command(trueBin))).lr.Attributes().Get(event.AttrInInitTree); ok {
			t.Errorf("a host process has in_init_tree")
		}
	})
}

// TestInitTreeOfProcessesStartedBefore: a container's init that started
// before the receiver, found in /proc, keeps its tree: what its child runs
// later is in_init_tree, as is what the init itself runs.
func TestInitTreeOfProcessesStartedBefore(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "go")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// pid 1 of a new pid namespace forks a shell that waits, then runs
	// true; the init runs true after it.
	init := exec.Command("/bin/sh", "-c", "/bin/sh -c 'read x < "+fifo+"; exec /bin/true child' & wait; exec /bin/true init")
	init.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if err := init.Start(); err != nil {
		t.Fatal(err)
	}
	defer init.Process.Kill()
	cfg := createDefaultConfig().(*Config)
	_, sink, _ := startReceiver(t, cfg)
	// Wake the child: it and then the init exec.
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("go\n"))
	f.Close()
	init.Wait()
	for _, which := range []string{"child", "init"} {
		rec := waitFor(t, sink, which+"'s exec", func(r record) bool {
			return r.lr.EventName() == event.NameProcessExec && strings.HasSuffix(r.str(event.AttrProcessCommandLine), "/bin/true "+which)
		})
		if v, ok := rec.lr.Attributes().Get(event.AttrInInitTree); !ok || !v.Bool() {
			t.Errorf("%s of an init found in /proc: in_init_tree absent", which)
		}
	}
}
