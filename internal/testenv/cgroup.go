package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
)

// Cgroup is a cgroup v2 directory created for a test, as a container
// runtime would create one for a container.
type Cgroup struct {
	Path string
	// ID is the cgroup's id, what bpf_get_current_cgroup_id returns for
	// its processes: the directory's inode number in cgroupfs.
	ID uint64
}

// NewCgroup creates rel (e.g. "kubepods.slice/.../cri-containerd-<id>.scope")
// under the cgroup v2 mount, wherever this machine mounts it, and removes
// it when tb ends. Its processes must be gone by then.
func NewCgroup(tb testing.TB, rel string) *Cgroup {
	tb.Helper()
	root, err := kernel.Cgroup2Mount()
	if err != nil {
		Unavailable(tb, "%v", err)
	}
	path := filepath.Join(root, rel)
	if err := os.MkdirAll(path, 0o755); err != nil {
		Unavailable(tb, "creating cgroup %s: %v", path, err)
	}
	tb.Cleanup(func() {
		// Remove the leaf, then the parents the test created that no
		// other test uses any more.
		for p := path; p != root && len(p) > len(root); p = filepath.Dir(p) {
			if err := os.Remove(p); err != nil {
				break
			}
		}
	})
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		tb.Fatal(err)
	}
	return &Cgroup{Path: path, ID: st.Ino}
}

// Command returns an exec.Cmd whose process starts inside the cgroup
// (clone3 CLONE_INTO_CGROUP): it runs no instruction outside it.
func (c *Cgroup) Command(tb testing.TB, name string, args ...string) *exec.Cmd {
	tb.Helper()
	dir, err := os.Open(c.Path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dir.Close() })
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	return cmd
}
