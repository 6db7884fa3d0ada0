//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/vigilsec/vigil/internal/testenv"
)

const nodeName = "vigil-e2e-node"

// node is the one-node cluster: its daemons, its work directory and an
// admin client.
type node struct {
	t        *testing.T
	dir      string
	assets   string
	pki      *pki
	admin    string // the admin kubeconfig
	cs       kubernetes.Interface
	ctrdSock string
	daemons  []*daemon
	// netnsBefore are the pod network namespaces that were there before
	// the node started: not the node's to remove.
	netnsBefore map[string]bool
}

// daemon is one process of the node, logging to a file of the work
// directory.
type daemon struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
	// stopped is set once stop has run.
	stopped bool
}

func (n *node) start(name string, argv ...string) *daemon {
	n.t.Helper()
	d := &daemon{name: name, log: filepath.Join(n.dir, name+".log"), done: make(chan error, 1)}
	f, err := os.Create(d.log)
	if err != nil {
		n.t.Fatal(err)
	}
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = f, f
	// Its own process group, so that a stop reaches what it forks.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		n.t.Fatalf("start %s: %v", name, err)
	}
	go func() { d.done <- d.cmd.Wait(); f.Close() }()
	n.daemons = append(n.daemons, d)
	return d
}

// tail is the end of a daemon's log, for failure messages.
func (d *daemon) tail() string {
	b, _ := os.ReadFile(d.log)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// stop sends SIGTERM to the daemon's process group and waits, then kills;
// a second call returns at once.
func (d *daemon) stop() {
	if d.cmd.Process == nil || d.stopped {
		return
	}
	d.stopped = true
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
}

// until retries cond every 250ms until it holds or d passes; what names
// the wait and last says what was seen last.
func until(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(d); ; time.Sleep(250 * time.Millisecond) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last seen: %s", what, d, last)
		}
	}
}

// needs returns the path of each binary, failing (skipping outside CI)
// when one is missing.
func needs(t *testing.T, dir string, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range names {
		p := filepath.Join(dir, name)
		if dir == "" {
			var err error
			if p, err = exec.LookPath(name); err != nil {
				testenv.Unavailable(t, "%s is missing: run `scripts/install-deps.sh node`", name)
			}
		} else if _, err := os.Stat(p); err != nil {
			testenv.Unavailable(t, "%s is missing from %s: run `scripts/install-deps.sh node`", name, dir)
		}
		out[name] = p
	}
	return out
}

// startNode brings the cluster up and registers its teardown.
func startNode(t *testing.T) *node {
	t.Helper()
	assets := testenv.KubeAssets()
	bins := needs(t, assets, "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl", "helm")
	for name, p := range needs(t, "", "containerd", "containerd-shim-runc-v2", "runc", "ctr", "nsenter") {
		bins[name] = p
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		testenv.Unavailable(t, "the bridge CNI plugin is missing: run `scripts/install-deps.sh node`")
	}
	// Short: unix socket paths must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "vigil-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, dir: dir, assets: assets, netnsBefore: map[string]bool{}}
	for _, ns := range podNetns() {
		n.netnsBefore[ns] = true
	}
	t.Cleanup(n.teardown)

	p, err := newPKI(mkdir(t, dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	n.pki = p
	ip := net.ParseIP(nodeIP)
	must(t, p.issue("apiserver", "kube-apiserver", nil,
		[]net.IP{ip, net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}))
	must(t, p.issue("admin", "vigil-e2e-admin", []string{"system:masters"}, nil, nil))
	must(t, p.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil))
	must(t, p.issue("kubelet", "system:node:"+nodeName, []string{"system:nodes"}, nil, nil))
	must(t, p.issue("kubelet-serving", "system:node:"+nodeName, []string{"system:nodes"}, []net.IP{ip}, []string{nodeName}))
	must(t, p.issue("scheduler", "system:kube-scheduler", nil, nil, nil))
	must(t, p.serviceAccountKey())
	server := "https://" + nodeIP + ":6443"
	kubeconfig := func(name string) string {
		path, err := p.kubeconfig(name, server)
		must(t, err)
		return path
	}
	n.admin = kubeconfig("admin")

	etcd := n.start("etcd", bins["etcd"], "--name", "e2e", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "e2e=http://127.0.0.1:2380", "--log-level", "warn")
	api := n.start("kube-apiserver", bins["kube-apiserver"],
		"--etcd-servers", "http://127.0.0.1:2379",
		"--bind-address", "0.0.0.0", "--secure-port", "6443", "--advertise-address", nodeIP,
		"--tls-cert-file", p.path("apiserver", ".crt"), "--tls-private-key-file", p.path("apiserver", ".key"),
		"--client-ca-file", p.path("ca", ".crt"),
		"--kubelet-client-certificate", p.path("apiserver-kubelet-client", ".crt"),
		"--kubelet-client-key", p.path("apiserver-kubelet-client", ".key"),
		// The node's name resolves nowhere: exec and logs go to its IP.
		"--kubelet-preferred-address-types", "InternalIP",
		"--service-account-key-file", p.path("sa", ".pub"),
		"--service-account-signing-key-file", p.path("sa", ".key"),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range", serviceCIDR,
		"--authorization-mode", "Node,RBAC",
		"--allow-privileged=true",
		"--cert-dir", mkdir(t, dir, "apiserver"))
	cfg, err := clientcmd.BuildConfigFromFlags("", n.admin)
	must(t, err)
	n.cs, err = kubernetes.NewForConfig(cfg)
	must(t, err)
	until(t, 90*time.Second, "kube-apiserver ready", func() (bool, string) {
		b, err := n.cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
		if err != nil {
			return false, fmt.Sprintf("%v %s\netcd:\n%s\napiserver:\n%s", err, b, etcd.tail(), api.tail())
		}
		return true, ""
	})
	// The controller manager runs every controller as itself, an admin: a
	// test cluster has no need of per-controller accounts.
	n.start("kube-controller-manager", bins["kube-controller-manager"],
		"--kubeconfig", n.admin,
		"--authentication-kubeconfig", n.admin, "--authorization-kubeconfig", n.admin,
		"--root-ca-file", p.path("ca", ".crt"),
		"--service-account-private-key-file", p.path("sa", ".key"),
		"--use-service-account-credentials=false",
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "10257",
		"--cert-dir", mkdir(t, dir, "controller-manager"))
	n.start("kube-scheduler", bins["kube-scheduler"],
		"--kubeconfig", kubeconfig("scheduler"),
		"--authentication-kubeconfig", kubeconfig("scheduler"), "--authorization-kubeconfig", kubeconfig("scheduler"),
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "10259")

	n.startContainerd(bins)
	n.startKubelet(bins, kubeconfig("kubelet"))
	return n
}

func mkdir(t *testing.T, parent, name string) string {
	t.Helper()
	p := filepath.Join(parent, name)
	must(t, os.MkdirAll(p, 0o755))
	return p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// pauseImage is the pods' sandbox image, built by the lane.
const pauseImage = "localhost/vigil-e2e/pause:1"

func (n *node) startContainerd(bins map[string]string) {
	t := n.t
	dir := mkdir(t, n.dir, "containerd")
	cni := mkdir(t, n.dir, "cni")
	netd := mkdir(t, cni, "net.d")
	n.ctrdSock = filepath.Join(n.dir, "containerd.sock")
	must(t, os.WriteFile(filepath.Join(netd, "10-vigil-e2e.conflist"), []byte(fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "vigil-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    }
  ]
}
`, podSubnet, filepath.Join(cni, "ipam"))), 0o644))
	// restrict_oom_score_adj: the sandboxes (-998) and critical pods
	// (-997) ask for negative scores, which this machine refuses; the
	// kubelet's own setting goes the same way.
	config := filepath.Join(dir, "config.toml")
	must(t, os.WriteFile(config, []byte(fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), n.ctrdSock, n.ctrdSock+".ttrpc", pauseImage, netd)), 0o644))
	d := n.start("containerd", bins["containerd"], "--config", config)
	until(t, 30*time.Second, "containerd answers", func() (bool, string) {
		err := exec.Command(bins["ctr"], "--address", n.ctrdSock, "version").Run()
		return err == nil, fmt.Sprintf("%v\n%s", err, d.tail())
	})
}

func (n *node) startKubelet(bins map[string]string, kubeconfig string) {
	t := n.t
	dir := mkdir(t, n.dir, "kubelet")
	config := filepath.Join(dir, "config.yaml")
	must(t, os.WriteFile(config, []byte(fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization: {mode: Webhook}
tlsCertFile: %q
tlsPrivateKeyFile: %q
containerRuntimeEndpoint: unix://%s
# This machine's cgroups are hybrid (v1 controllers, v2 at
# /sys/fs/cgroup/unified) and no systemd manages them.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
podLogsDirectory: %q
staticPodPath: ""
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  imagefs.available: "1%%"
  nodefs.inodesFree: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`, nodeIP, n.pki.path("ca", ".crt"), n.pki.path("kubelet-serving", ".crt"), n.pki.path("kubelet-serving", ".key"),
		n.ctrdSock, mkdir(t, dir, "pod-logs"))), 0o644))
	d := n.start("kubelet", bins["kubelet"], "--config", config, "--kubeconfig", kubeconfig,
		"--hostname-override", nodeName, "--node-ip", nodeIP,
		"--root-dir", mkdir(t, dir, "root"), "--cert-dir", mkdir(t, dir, "pki"), "--v", "2")
	until(t, 120*time.Second, "node Ready", func() (bool, string) {
		nd, err := n.cs.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Sprintf("%v\nkubelet:\n%s", err, d.tail())
		}
		for _, c := range nd.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v\nkubelet:\n%s", nd.Status.Conditions, d.tail())
	})
}

// importImage imports an OCI archive into containerd's k8s.io namespace,
// where the kubelet's pods find their images.
func (n *node) importImage(archive string) {
	n.t.Helper()
	out, err := exec.Command("ctr", "--address", n.ctrdSock, "-n", "k8s.io", "images", "import", archive).CombinedOutput()
	if err != nil {
		n.t.Fatalf("ctr images import %s: %v\n%s", archive, err, out)
	}
}

// kubectl runs kubectl as the admin and returns its output and exit code.
func (n *node) kubectl(args ...string) (string, int) {
	cmd := exec.Command(filepath.Join(n.assets, "kubectl"), append([]string{"--kubeconfig", n.admin}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		return out.String() + err.Error(), -1
	}
	return out.String(), 0
}

// mustKubectl is kubectl that fails the test on a non-zero exit.
func (n *node) mustKubectl(args ...string) string {
	n.t.Helper()
	out, code := n.kubectl(args...)
	if code != 0 {
		n.t.Fatalf("kubectl %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// helm runs helm as the admin, with its own config and cache directories.
func (n *node) helm(args ...string) string {
	n.t.Helper()
	home := mkdir(n.t, n.dir, "helm")
	cmd := exec.Command(filepath.Join(n.assets, "helm"), append(args, "--kubeconfig", n.admin)...)
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home+"/config", "HELM_CACHE_HOME="+home+"/cache", "HELM_DATA_HOME="+home+"/data")
	out, err := cmd.CombinedOutput()
	if err != nil {
		n.t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// teardown deletes every pod through the API (the kubelet stops their
// containers and unmounts their volumes), stops the daemons in reverse
// order, removes what containerd and the kubelet left (tasks, cgroups,
// mounts) and the work directory.
func (n *node) teardown() {
	t := n.t
	// No controller may recreate what is deleted below.
	for _, d := range n.daemons {
		if d.name == "kube-controller-manager" || d.name == "kube-scheduler" {
			d.stop()
		}
	}
	if n.cs != nil {
		ctx := context.Background()
		nss, _ := n.cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		for _, ns := range nss.Items {
			n.cs.CoreV1().Pods(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		}
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			pods, err := n.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			if err != nil || len(pods.Items) == 0 {
				break
			}
		}
	}
	// The kubelet first, so it restarts nothing; then containerd's pods
	// and tasks are cleared through ctr before containerd stops.
	for i := len(n.daemons) - 1; i >= 0; i-- {
		d := n.daemons[i]
		if d.name == "containerd" {
			n.clearContainerd()
		}
		d.stop()
		if t.Failed() {
			t.Logf("%s log (end):\n%s", d.name, d.tail())
		}
	}
	killShims(n.dir)
	unmountUnder(n.dir)
	removeCgroups("kubepods")
	// The pods' network namespaces containerd made and did not remove.
	for _, ns := range podNetns() {
		if !n.netnsBefore[ns] {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	}
	os.RemoveAll(n.dir)
}

// podNetns lists the network namespaces containerd's CRI names (cni-*).
func podNetns() []string {
	entries, _ := os.ReadDir("/var/run/netns")
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "cni-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// clearContainerd kills and deletes every task and container left in the
// k8s.io namespace.
func (n *node) clearContainerd() {
	ctr := func(args ...string) string {
		out, _ := exec.Command("ctr", append([]string{"--address", n.ctrdSock, "-n", "k8s.io"}, args...)...).Output()
		return string(out)
	}
	ids := strings.Fields(ctr("containers", "ls", "-q"))
	for _, id := range ids {
		ctr("tasks", "kill", "-s", "SIGKILL", id)
	}
	time.Sleep(time.Second)
	for _, id := range ids {
		ctr("tasks", "delete", "-f", id)
		ctr("containers", "delete", id)
	}
}

// killShims kills containerd shims of this node still running after
// containerd stopped (they outlive it by design).
func killShims(dir string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), "containerd-shim") && strings.Contains(string(b), dir) {
			var pid int
			fmt.Sscan(e.Name(), &pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// unmountUnder unmounts every mount below dir, deepest first.
func unmountUnder(dir string) {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		syscall.Unmount(p, syscall.MNT_DETACH)
	}
}

// removeCgroups removes the cgroup tree name under every hierarchy, leaves
// first: the kubelet creates its QoS cgroups and leaves them.
func removeCgroups(name string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
	if u := "/sys/fs/cgroup/unified/" + name; exists(u) {
		roots = append(roots, u)
	}
	for _, root := range roots {
		var dirs []string
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			syscall.Rmdir(dirs[i])
		}
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
