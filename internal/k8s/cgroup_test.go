package k8s

import "testing"

func TestContainerIDFromCgroup(t *testing.T) {
	const id = "4f9a6bd0c8a3e2b1f0e9d8c7b6a5948372615049382716afbecd0123456789ab"
	for name, want := range map[string]string{
		"cri-containerd-" + id + ".scope": id,
		"crio-" + id + ".scope":           id,
		"docker-" + id + ".scope":         id,
		"libpod-" + id + ".scope":         id,
		id:                                id,
		"session-3.scope":                 "",
		"user@0.service":                  "",
		"crio-conmon-" + id + ".scope":    "",
		"cri-containerd-" + id[:12]:       "",
		"":                                "",
	} {
		if got := ContainerIDFromCgroup(name); got != want {
			t.Errorf("ContainerIDFromCgroup(%q) = %q, want %q", name, got, want)
		}
	}
}
