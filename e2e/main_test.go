//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The node's network namespace: one end of a veth pair holds the node's IP,
// which the kubelet wants not to be loopback; the pods' bridge is made in
// it by the CNI plugin.
const (
	nodeIP      = "10.250.0.2"
	nodeIPCIDR  = nodeIP + "/24"
	podSubnet   = "10.244.0.0/24"
	serviceCIDR = "10.96.0.0/24"
	// netnsEnv carries the namespace's name to the test binary run inside
	// it; its absence means this is the parent, outside.
	netnsEnv = "VIGIL_E2E_NETNS"
	// pauseEnv carries the path of the pause binary the parent built.
	pauseEnv = "VIGIL_E2E_PAUSE"
)

// TestMain creates the node's network namespace and runs the tests again
// inside it (nsenter --net, which leaves the mounts alone: the kubelet needs
// the machine's /sys/fs/cgroup), then removes the namespace and whatever
// still runs in it.
func TestMain(m *testing.M) {
	if os.Getenv(netnsEnv) != "" {
		os.Exit(m.Run())
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: the node lane runs as root (network namespaces, containerd, kubelet)")
		if os.Getenv("CI") == "true" {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(runInNetns(m))
}

func runInNetns(m *testing.M) int {
	// Built here, where the module cache is reachable; the namespace has
	// no route out.
	pause := filepath.Join(os.TempDir(), fmt.Sprintf("vigil-e2e-pause-%d", os.Getpid()))
	build := exec.Command("go", "build", "-o", pause, "./pause")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building the pause binary: %v\n%s", err, out)
		return 1
	}
	defer os.Remove(pause)

	ns := fmt.Sprintf("vigil-e2e-%d", os.Getpid())
	steps := [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		// A veth pair with both ends in the namespace: the machine's
		// kernel may lack the dummy driver, never veth (CNI needs it).
		{"-n", ns, "link", "add", "node0", "type", "veth", "peer", "name", "node1"},
		{"-n", ns, "addr", "add", nodeIPCIDR, "dev", "node0"},
		{"-n", ns, "link", "set", "node1", "up"},
		{"-n", ns, "link", "set", "node0", "up"},
	}
	defer removeNetns(ns)
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: ip %s: %v\n%s", strings.Join(s, " "), err, out)
			return 1
		}
	}
	args := append([]string{"--net=/run/netns/" + ns, "--", os.Args[0]}, os.Args[1:]...)
	cmd := exec.Command("nsenter", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), netnsEnv+"="+ns, pauseEnv+"="+pause)
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	return 0
}

// removeNetns kills what still runs in the namespace (the tests stop what
// they start; this is for a test binary that died) and deletes it.
func removeNetns(ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	exec.Command("ip", "netns", "del", ns).Run()
}
