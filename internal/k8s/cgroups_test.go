package k8s

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// The index walks any directory tree laid out like cgroupfs: a tmpdir
// stands in for the hierarchy, so the layouts of every runtime and driver
// are checked without creating real cgroups.
func TestCgroupIndexFindsContainersUnderEveryLayout(t *testing.T) {
	const (
		a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
		c = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
		d = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
	)
	root := t.TempDir()
	ino := func(rel string) uint64 {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	want := map[string][]uint64{
		// systemd driver: containerd, CRI-O.
		a: {ino("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-" + a + ".scope")},
		b: {ino("kubepods.slice/kubepods-pod2.slice/crio-" + b + ".scope")},
		// cgroupfs driver: the bare id under the pod's directory.
		c: {ino("kubepods/besteffort/pod3/" + c)},
	}
	// A container's own sub-cgroups belong to it.
	dScope := ino("system.slice/docker-" + d + ".scope")
	dChild := ino("system.slice/docker-" + d + ".scope/init.scope")
	want[d] = []uint64{dScope, dChild}
	ino("system.slice/crio-conmon-" + a + ".scope") // the monitor, not the container

	x := NewCgroupIndex(root)
	for id, inos := range want {
		got, missing := x.Lookup([]string{id})
		slices.Sort(got)
		slices.Sort(inos)
		if len(missing) != 0 || !slices.Equal(got, inos) {
			t.Errorf("%s...: cgroups %v (missing %v), want %v", id[:4], got, missing, inos)
		}
	}
	// A container created after the last walk is found by the next one.
	e := "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
	if _, missing := x.Lookup([]string{e}); len(missing) != 1 {
		t.Errorf("a container without a cgroup is not reported missing: %v", missing)
	}
	eIno := ino("kubepods.slice/cri-containerd-" + e + ".scope")
	if got, missing := x.Lookup([]string{e}); len(missing) != 0 || !slices.Equal(got, []uint64{eIno}) {
		t.Errorf("new container: %v, missing %v", got, missing)
	}
}
