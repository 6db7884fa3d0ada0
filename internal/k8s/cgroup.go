// Package k8s maps what the kernel knows about a process (its cgroup) to
// what Kubernetes knows (container, pod, workload).
package k8s

import "strings"

// runtimePrefixes are the cgroup name prefixes container runtimes use under
// the systemd cgroup driver: cri-containerd-<id>.scope, crio-<id>.scope,
// docker-<id>.scope, libpod-<id>.scope.
var runtimePrefixes = []string{"cri-containerd-", "crio-", "docker-", "libpod-"}

// ContainerIDFromCgroup returns the container id in a cgroup's name, or ""
// when the cgroup is not a container's. Under the cgroupfs driver the name
// is the bare 64-hex id.
func ContainerIDFromCgroup(name string) string {
	id := strings.TrimSuffix(name, ".scope")
	for _, p := range runtimePrefixes {
		if rest, ok := strings.CutPrefix(id, p); ok {
			id = rest
			break
		}
	}
	if len(id) != 64 || strings.IndexFunc(id, func(r rune) bool {
		return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f')
	}) >= 0 {
		return ""
	}
	return id
}
