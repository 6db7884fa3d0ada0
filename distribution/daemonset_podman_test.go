package distribution_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/vigilsec/vigil/internal/testenv"
)

// The image `make image` builds, run under podman exactly as the chart's
// DaemonSet runs it: the container spec (image, args, env, capabilities,
// read-only root, host PID, every volume) is read from `helm template`,
// never restated here. What a kubelet adds to a pod and the chart does not
// say (the service account's token, KUBERNETES_SERVICE_HOST, the
// downward API's values) the test supplies, from a real kube-apiserver
// holding the chart's objects.

const imageArchive = "../build/image/otelcol-vigil.oci.tar"

// podmanUlimits are needed on this kind of machine: podman's default
// nofile exceeds the hard limit, and CAP_SYS_RESOURCE is not there to
// raise it.
var podmanUlimits = []string{"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"}

// podmanStore is a podman storage of the test's own, so that the test
// neither reads nor changes the machine's images and containers.
type podmanStore struct{ args []string }

func newPodmanStore(t *testing.T) *podmanStore {
	t.Helper()
	// podman refuses a runroot longer than 50 bytes: not t.TempDir().
	root, err := os.MkdirTemp("", "vigil-pm-")
	if err != nil {
		t.Fatal(err)
	}
	s := &podmanStore{args: []string{"--root", filepath.Join(root, "storage"), "--runroot", filepath.Join(root, "run")}}
	t.Cleanup(func() {
		s.cmd("rm", "--all", "--force", "--time", "0").Run()
		os.RemoveAll(root)
	})
	return s
}

func (s *podmanStore) cmd(args ...string) *exec.Cmd {
	return exec.Command("podman", append(append([]string{}, s.args...), args...)...)
}

func (s *podmanStore) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := s.cmd(args...).CombinedOutput()
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// renderedDaemonSet renders the chart with extra helm arguments and
// returns its objects and the DaemonSet, typed.
func renderedDaemonSet(t *testing.T, helmArgs ...string) ([]kubeObject, *appsv1.DaemonSet) {
	t.Helper()
	args := append([]string{"template", releaseName, chartDir, "--namespace", releaseNamespace, "--include-crds"}, helmArgs...)
	objs := decodeObjects(t, runHelm(t, args...), "helm template")
	var ds appsv1.DaemonSet
	o := findObject(t, objs, "DaemonSet", releaseName)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.obj.Object, &ds); err != nil {
		t.Fatal(err)
	}
	return objs, &ds
}

// configMapDir writes a ConfigMap's data as the kubelet lays out a
// ConfigMap volume: the files in a hidden timestamped directory, a
// ..data link to it, and a link per key at the top.
func configMapDir(t *testing.T, objs []kubeObject, name string) string {
	t.Helper()
	cm := findObject(t, objs, "ConfigMap", name)
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_12_06_00_00_00.000000001")
	os.Mkdir(ts, 0o755)
	data, _ := cm.obj.Object["data"].(map[string]any)
	for k, v := range data {
		if err := os.WriteFile(filepath.Join(ts, k), []byte(v.(string)), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k))
	}
	os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data"))
	return dir
}

// podmanPodEnv is what the kubelet supplies to the pod besides its spec.
type podmanPodEnv struct {
	nodeName, podIP string
	// serviceAccount is the directory mounted at
	// /var/run/secrets/kubernetes.io/serviceaccount.
	serviceAccount string
	apiHost        string
	apiPort        string
	// hostState replaces writable host paths under /var/run and /var/lib,
	// so that the test never touches the node's own state.
	hostState string
	// hostPID is a pid namespace file of the host: pid 1's are not
	// readable in this sandbox.
	hostPID string
}

// podmanRunArgs translates the DaemonSet's pod spec into podman run
// arguments. A field it does not know how to honour fails the test, so a
// new field in the chart cannot go untried.
func podmanRunArgs(t *testing.T, ds *appsv1.DaemonSet, objs []kubeObject, env podmanPodEnv, name string) []string {
	t.Helper()
	pod := ds.Spec.Template.Spec
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("the DaemonSet has %d containers and %d init containers; the test runs exactly one", len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	args := []string{"run", "--detach", "--name", name, "--pull", "never"}
	args = append(args, podmanUlimits...)
	// The pod's network is the host's: the test's kube-apiserver and its
	// certificate are on loopback. The pod's address is a loopback
	// address of its own, so its ports meet no other process's.
	// Everything else is the spec's.
	args = append(args, "--network", "host")
	if pod.HostPID {
		args = append(args, "--pid", "ns:"+env.hostPID)
	}
	if pod.HostIPC || pod.ShareProcessNamespace != nil {
		t.Fatal("hostIPC / shareProcessNamespace: not translated")
	}
	if sc := pod.SecurityContext; sc != nil {
		if sc.RunAsUser != nil || sc.RunAsGroup != nil || sc.SupplementalGroups != nil || sc.FSGroup != nil || sc.Sysctls != nil {
			t.Fatalf("podSecurityContext %+v: not translated", sc)
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.Privileged != nil && *sc.Privileged {
			args = append(args, "--privileged")
		}
		if sc.Capabilities != nil {
			for _, cp := range sc.Capabilities.Drop {
				args = append(args, "--cap-drop", string(cp))
			}
			for _, cp := range sc.Capabilities.Add {
				args = append(args, "--cap-add", string(cp))
			}
		}
		if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
			args = append(args, "--read-only", "--read-only-tmpfs=false")
		}
		if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			args = append(args, "--security-opt", "no-new-privileges")
		}
		if p := sc.AppArmorProfile; p != nil && p.Type == corev1.AppArmorProfileTypeUnconfined {
			args = append(args, "--security-opt", "apparmor=unconfined")
		}
		if sc.RunAsUser != nil {
			args = append(args, "--user", strconv.FormatInt(*sc.RunAsUser, 10))
		}
		if sc.SELinuxOptions != nil || sc.WindowsOptions != nil || sc.ProcMount != nil {
			t.Fatalf("securityContext %+v: not translated", sc)
		}
	}
	for _, e := range c.Env {
		v := e.Value
		if f := e.ValueFrom; f != nil {
			switch {
			case f.FieldRef != nil && f.FieldRef.FieldPath == "spec.nodeName":
				v = env.nodeName
			case f.FieldRef != nil && f.FieldRef.FieldPath == "status.podIP":
				v = env.podIP
			case f.FieldRef != nil && f.FieldRef.FieldPath == "metadata.namespace":
				v = ds.Namespace
			default:
				t.Fatalf("env %s: valueFrom %+v not translated", e.Name, f)
			}
		}
		args = append(args, "--env", e.Name+"="+v)
	}
	if len(c.EnvFrom) > 0 {
		t.Fatal("envFrom: not translated")
	}
	// What the kubelet gives every pod with a service account.
	args = append(args, "--env", "KUBERNETES_SERVICE_HOST="+env.apiHost, "--env", "KUBERNETES_SERVICE_PORT="+env.apiPort,
		"--volume", env.serviceAccount+":/var/run/secrets/kubernetes.io/serviceaccount:ro")
	if mem, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		args = append(args, "--memory", strconv.FormatInt(mem.Value(), 10))
	}
	if cpu, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		args = append(args, "--cpus", cpu.AsDec().String())
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	configMaps := map[string]string{}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Fatalf("volumeMount %s: no such volume", m.Name)
		}
		ro := ""
		if m.ReadOnly {
			ro = ":ro"
		}
		switch {
		case v.HostPath != nil:
			src := v.HostPath.Path
			if strings.HasPrefix(src, "/var/run/") || strings.HasPrefix(src, "/var/lib/") || strings.HasPrefix(src, "/var/log/") {
				src = filepath.Join(env.hostState, src)
			}
			fi, err := os.Stat(src)
			switch {
			case v.HostPath.Type != nil && *v.HostPath.Type == corev1.HostPathDirectoryOrCreate && errors.Is(err, os.ErrNotExist):
				// As the kubelet creates it.
				if err := os.MkdirAll(src, 0o755); err != nil {
					t.Fatal(err)
				}
			case v.HostPath.Type != nil && *v.HostPath.Type == corev1.HostPathDirectory && (err != nil || !fi.IsDir()):
				t.Fatalf("hostPath %s (volume %s) is not a directory on this node: %v", src, v.Name, err)
			}
			args = append(args, "--volume", src+":"+m.MountPath+ro)
		case v.ConfigMap != nil:
			dir, ok := configMaps[v.ConfigMap.Name]
			if !ok {
				dir = configMapDir(t, objs, v.ConfigMap.Name)
				configMaps[v.ConfigMap.Name] = dir
			}
			src := dir
			if m.SubPath != "" {
				// The kubelet mounts the file the key resolves to.
				src = filepath.Join(dir, "..data", m.SubPath)
			}
			args = append(args, "--volume", src+":"+m.MountPath+ro)
		case v.EmptyDir != nil:
			opt := m.MountPath
			if v.EmptyDir.SizeLimit != nil {
				opt += ":size=" + strconv.FormatInt(v.EmptyDir.SizeLimit.Value(), 10)
			}
			if v.EmptyDir.Medium == corev1.StorageMediumMemory {
				args = append(args, "--tmpfs", opt)
			} else {
				args = append(args, "--volume", t.TempDir()+":"+m.MountPath)
			}
		default:
			t.Fatalf("volume %s: only hostPath, configMap and emptyDir are translated", v.Name)
		}
		if m.MountPropagation != nil && *m.MountPropagation != corev1.MountPropagationNone {
			t.Fatalf("volumeMount %s: mountPropagation %s not translated", m.Name, *m.MountPropagation)
		}
	}
	if len(c.Command) > 0 {
		args = append(args, "--entrypoint", strings.Join(c.Command, " "))
	}
	args = append(args, c.Image)
	return append(args, c.Args...)
}

// ensureNodeMounts mounts bpffs and tracefs where a node's init system
// does, when this machine has not: the DaemonSet mounts them from the host.
func ensureNodeMounts(t *testing.T) {
	t.Helper()
	for _, m := range []struct {
		fs, target string
		magic      int64
	}{{"bpf", "/sys/fs/bpf", unix.BPF_FS_MAGIC}, {"tracefs", "/sys/kernel/tracing", unix.TRACEFS_MAGIC}} {
		var st unix.Statfs_t
		if err := unix.Statfs(m.target, &st); err == nil && st.Type == m.magic {
			continue
		}
		if err := unix.Mount(m.fs, m.target, m.fs, 0, ""); err != nil {
			t.Fatalf("mount %s at %s: %v", m.fs, m.target, err)
		}
	}
}

// serviceAccountDir writes what the kubelet projects into a pod of the
// chart's service account: a token from the TokenRequest API, the
// cluster's CA and the namespace.
func serviceAccountDir(t *testing.T, kube *testenv.Kube, ds *appsv1.DaemonSet) string {
	t.Helper()
	sa := ds.Spec.Template.Spec.ServiceAccountName
	tr, err := kube.Clientset.CoreV1().ServiceAccounts(ds.Namespace).CreateToken(context.Background(), sa,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{Audiences: nil}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of service account %s/%s: %v", ds.Namespace, sa, err)
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	for name, data := range map[string][]byte{
		"token": []byte(tr.Status.Token), "ca.crt": kube.Config.CAData, "namespace": []byte(ds.Namespace),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// lineWatcher collects a stream's lines and tells when one matches.
type lineWatcher struct {
	mu    sync.Mutex
	lines []string
}

func (w *lineWatcher) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		w.mu.Lock()
		w.lines = append(w.lines, sc.Text())
		w.mu.Unlock()
	}
}

func (w *lineWatcher) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

func (w *lineWatcher) has(substr string) (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		if strings.Contains(l, substr) {
			return true, ""
		}
	}
	return false, strings.Join(w.lines, "\n")
}

func httpGet(url string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// probeURL is the URL of an httpGet probe on the pod's address.
func probeURL(t *testing.T, c corev1.Container, p *corev1.Probe, podIP string) string {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Fatalf("container %s: a probe that is not httpGet: %+v", c.Name, p)
	}
	port := p.HTTPGet.Port.IntValue()
	if port == 0 {
		for _, cp := range c.Ports {
			if cp.Name == p.HTTPGet.Port.StrVal {
				port = int(cp.ContainerPort)
			}
		}
	}
	if port == 0 {
		t.Fatalf("probe port %s is none of the container's ports", p.HTTPGet.Port.String())
	}
	return fmt.Sprintf("http://%s:%d%s", podIP, port, p.HTTPGet.Path)
}

func containerPort(t *testing.T, c corev1.Container, name string) int {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return int(p.ContainerPort)
		}
	}
	t.Fatalf("container %s has no port named %s", c.Name, name)
	return 0
}

const killPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: podman-forbidden-open
spec:
  kprobes:
  - call: sys_openat
    syscall: true
    args:
    - {index: 1, type: string}
    selectors:
    - matchArgs:
      - {index: 1, operator: Equal, values: [%q]}
      matchActions:
      - action: Sigkill
`

func TestImageRunsAsTheDaemonSetRunsIt(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBPF(t)
	if _, err := exec.LookPath("podman"); err != nil {
		testenv.Unavailable(t, "podman is missing: run `scripts/install-deps.sh podman`")
	}
	if _, err := os.Stat(imageArchive); err != nil {
		testenv.Unavailable(t, "%s is missing: run `make image`", imageArchive)
	}
	ensureNodeMounts(t)

	// A policy in the chart's policies ConfigMap, as a user would add one.
	suffix := make([]byte, 6)
	rand.Read(suffix)
	forbidden := filepath.Join(t.TempDir(), "forbidden-"+hex.EncodeToString(suffix))
	os.WriteFile(forbidden, []byte("secret\n"), 0o644)
	policyFile := filepath.Join(t.TempDir(), "forbidden.yaml")
	os.WriteFile(policyFile, []byte(fmt.Sprintf(killPolicy, forbidden)), 0o644)
	objs, ds := renderedDaemonSet(t, "--set-file", "policies.forbidden\\.yaml="+policyFile)
	c := ds.Spec.Template.Spec.Containers[0]

	// The cluster the pod talks to, holding the chart's objects.
	cluster := startKubeCluster(t)
	kube := cluster.kube
	cluster.setUp(t, objs)
	// As helm install --create-namespace makes it.
	if _, err := kube.Clientset.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ds.Namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		switch o.obj.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			if err := cluster.apply(t, o, false); err != nil {
				t.Fatalf("apply %s: %v", o, err)
			}
		}
	}
	api, err := url.Parse(kube.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	hostname, _ := os.Hostname()
	env := podmanPodEnv{
		// A loopback address of the pod's own (127.0.0.0/8 is all local).
		nodeName: hostname, podIP: fmt.Sprintf("127.%d.%d.%d", 100+suffix[0]%100, suffix[1], 1+suffix[2]%250),
		serviceAccount: serviceAccountDir(t, kube, ds),
		apiHost:        api.Hostname(), apiPort: api.Port(),
		hostState: t.TempDir(),
		hostPID:   fmt.Sprintf("/proc/%d/ns/pid", os.Getpid()),
	}

	store := newPodmanStore(t)
	store.run(t, "load", "--input", imageArchive)
	name := "vigil-ds-" + hex.EncodeToString(suffix)
	store.run(t, podmanRunArgs(t, ds, objs, env, name)...)
	logs := &lineWatcher{}
	follow := store.cmd("logs", "--follow", name)
	out, _ := follow.StdoutPipe()
	follow.Stderr = follow.Stdout
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	go logs.read(out)
	t.Cleanup(func() { follow.Process.Kill(); follow.Wait() })

	// The kubelet's probes, on the pod's address.
	for _, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
		if p == nil {
			continue
		}
		u := probeURL(t, c, p, env.podIP)
		eventuallyWithin(t, 90*time.Second, "probe "+u, func() (bool, string) {
			code, body := httpGet(u)
			return code == http.StatusOK, fmt.Sprintf("%d %s\ncollector log:\n%s", code, body, logs.all())
		})
	}

	t.Run("sees the host's processes", func(t *testing.T) {
		marker, _ := runMarker(t)
		eventually(t, "the exec and exit of a host process in the pod's log", func() (bool, string) {
			exec, all := logs.has("🚀 process ")
			if !exec {
				return false, all
			}
			ok, all := logs.has("/bin/echo " + marker + " 0")
			return ok, all
		})
	})

	t.Run("serves its metrics", func(t *testing.T) {
		// Vigil's own metrics, and the collector's telemetry where the
		// pod names a port for it.
		want := map[string]string{"metrics": "vigil_"}
		for _, p := range c.Ports {
			if p.Name == "telemetry" {
				want["telemetry"] = "otelcol_"
			}
		}
		for port, prefix := range want {
			u := fmt.Sprintf("http://%s:%d/metrics", env.podIP, containerPort(t, c, port))
			eventually(t, u, func() (bool, string) {
				code, body := httpGet(u)
				return code == http.StatusOK && strings.Contains(body, prefix), fmt.Sprintf("%d %.2000s", code, body)
			})
		}
	})

	t.Run("kills a forbidden open on the host", func(t *testing.T) {
		var last string
		deadline := time.Now().Add(30 * time.Second)
		for {
			cmd := exec.Command("/bin/cat", forbidden)
			o, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
				break
			}
			last = fmt.Sprintf("%v %q", err, o)
			if time.Now().After(deadline) {
				t.Fatalf("cat %s was not killed within 30s (last: %s); collector log:\n%s", forbidden, last, logs.all())
			}
			time.Sleep(500 * time.Millisecond)
		}
	})

	t.Run("vigil events streams through podman exec", func(t *testing.T) {
		stream := &lineWatcher{}
		ev := store.cmd("exec", name, "vigil", "events", "--process", "/echo$", "--color", "never")
		o, _ := ev.StdoutPipe()
		ev.Stderr = ev.Stdout
		if err := ev.Start(); err != nil {
			t.Fatal(err)
		}
		go stream.read(o)
		defer func() {
			// Killing podman exec leaves the session's process in the
			// container, and podman stop refuses a container with one;
			// with host PID it is a process of this host.
			killHostProcesses(t, "vigil\x00events\x00--process\x00/echo$\x00")
			ev.Process.Kill()
			ev.Wait()
		}()
		// The stream starts when vigil events has subscribed: keep
		// starting processes until one shows.
		deadline := time.Now().Add(20 * time.Second)
		for {
			marker, _ := runMarker(t)
			time.Sleep(500 * time.Millisecond)
			if ok, _ := stream.has("/bin/echo " + marker); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("vigil events showed no echo within 20s:\n%s", stream.all())
			}
		}
	})

	// The pod stops as the kubelet stops it: SIGTERM, then a clean exit.
	store.run(t, "stop", "--time", strconv.Itoa(int(*ds.Spec.Template.Spec.TerminationGracePeriodSeconds)), name)
	if code := strings.TrimSpace(store.run(t, "inspect", "--format", "{{.State.ExitCode}}", name)); code != "0" {
		t.Errorf("the collector exited with %s after SIGTERM:\n%s", code, logs.all())
	}
}

// killHostProcesses kills the processes whose command line starts with
// cmdline (arguments NUL-separated, as in /proc/PID/cmdline).
func killHostProcesses(t *testing.T, cmdline string) {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); strings.HasPrefix(string(b), cmdline) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// eventuallyWithin is eventually with its own deadline.
func eventuallyWithin(t *testing.T, d time.Duration, what string, get func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		var ok bool
		if ok, last = get(); ok {
			return
		}
	}
	t.Fatalf("%s: not within %s; last seen:\n%s", what, d, last)
}
