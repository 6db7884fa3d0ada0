package k8s

import (
	"encoding/hex"
	"strings"
	"testing"
)

// FuzzContainerIDFromCgroup: a cgroup's name is partly the workload's to
// choose (a nested cgroup, a systemd unit). Whatever the name, the id is
// "" or 64 lower-case hex digits found in it; a name built from an id as
// each runtime builds it gives that id back.
func FuzzContainerIDFromCgroup(f *testing.F) {
	f.Add("cri-containerd-"+strings.Repeat("ab", 32)+".scope", []byte("0123456789abcdef0123456789abcdef"))
	f.Add("docker-.scope", []byte{})
	f.Add(strings.Repeat("A", 64), []byte{1})
	f.Fuzz(func(t *testing.T, name string, raw []byte) {
		if id := ContainerIDFromCgroup(name); id != "" {
			if len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "" || !strings.Contains(name, id) {
				t.Fatalf("%q gave id %q", name, id)
			}
		}
		if len(raw) < 32 {
			return
		}
		id := hex.EncodeToString(raw[:32])
		for _, built := range []string{id, "cri-containerd-" + id + ".scope", "crio-" + id + ".scope", "docker-" + id + ".scope", "libpod-" + id + ".scope"} {
			if got := ContainerIDFromCgroup(built); got != id {
				t.Fatalf("%q gave %q, want %q", built, got, id)
			}
		}
	})
}
