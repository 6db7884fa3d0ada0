package ebpfreceiver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/vigilsec/vigil/extension/k8smetaextension/k8smetatest"
	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/k8s"
	"github.com/vigilsec/vigil/internal/testenv"
)

const testNode = "vigil-test-node"

// fakePod is a pod of the test node with one container running in a real
// cgroup named as containerd names it. No kubelet runs: the test writes the
// pod's status, with the container id, itself.
type fakePod struct {
	name, namespace string
	containerID     string
	cgroup          *testenv.Cgroup
}

func newContainerID(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func createPod(t *testing.T, cs kubernetes.Interface, ns, name string, labels map[string]string) *fakePod {
	t.Helper()
	ctx := context.Background()
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: testNode, Containers: []corev1.Container{{Name: "main", Image: "registry.example/app:1.0"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := newContainerID(t)
	uid := strings.ReplaceAll(string(pod.UID), "-", "_")
	cg := testenv.NewCgroup(t, fmt.Sprintf("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/cri-containerd-%s.scope", uid, id))
	pod.Status.Phase = corev1.PodRunning
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "main", Image: "registry.example/app:1.0", ImageID: "registry.example/app@sha256:" + strings.Repeat("0", 64),
		ContainerID: "containerd://" + id, Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	}}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return &fakePod{name: name, namespace: ns, containerID: id, cgroup: cg}
}

// startKubeReceiver runs a real API server, the k8s_metadata extension on
// it, and the receiver with that extension and the policy files of paths.
func startKubeReceiver(t *testing.T, paths ...string) (*testenv.Kube, *ebpfReceiver, *recordSink) {
	t.Helper()
	testenv.RequireBPF(t)
	kube := testenv.StartKube(t, "../../distribution/kubernetes/crds")
	host, _ := k8smetatest.Start(t, kube.Kubeconfig(t, t.TempDir()), testNode)

	cfg := createDefaultConfig().(*Config)
	cfg.K8sMetadata = k8smetatest.ID.String()
	cfg.Policies = paths
	cfg.PolicyReloadInterval = 200 * time.Millisecond
	r, sink, _ := startReceiverOn(t, cfg, host)
	return kube, r, &recordSink{sink}
}

type recordSink struct{ *consumertest.LogsSink }

// applyPolicy creates or replaces a TracingPolicy object from YAML.
func applyPolicy(t *testing.T, dyn dynamic.Interface, doc string) {
	t.Helper()
	var u unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	res := dyn.Resource(k8s.TracingPolicyResource)
	var ri dynamic.ResourceInterface = res
	if u.GetKind() == "TracingPolicyNamespaced" {
		ri = dyn.Resource(k8s.TracingPolicyNamespacedResource).Namespace(u.GetNamespace())
	}
	ctx := context.Background()
	cur, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
	if err == nil {
		u.SetResourceVersion(cur.GetResourceVersion())
		_, err = ri.Update(ctx, &u, metav1.UpdateOptions{})
	} else {
		_, err = ri.Create(ctx, &u, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatalf("applying %s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

func openPolicyObject(kind, ns, name, file, podSelector string) string {
	meta := "  name: " + name
	if ns != "" {
		meta += "\n  namespace: " + ns
	}
	return fmt.Sprintf(`apiVersion: cilium.io/v1alpha1
kind: %s
metadata:
%s
spec:
%s  kprobes:
  - call: sys_openat
    syscall: true
    args:
    - {index: 1, type: string}
    selectors:
    - matchArgs:
      - {index: 1, operator: Equal, values: [%q]}
`, kind, meta, podSelector, file)
}

// opens runs cat on file in pod's cgroup and reports whether the receiver
// emitted a process.kprobe event of policy for it, from pod's container.
func opens(t *testing.T, sink *recordSink, pod *fakePod, file, policy string) bool {
	t.Helper()
	cmd := pod.cgroup.Command(t, "/bin/cat", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cat in pod %s: %v: %s", pod.name, err, out)
	}
	pid := cmd.ProcessState.Pid()
	return appearsWithin(time.Second, sink.LogsSink, func(r record) bool {
		if !isEvent(event.NameProcessKprobe, pid)(r) || r.str(event.AttrSecurityRuleName) != policy {
			return false
		}
		v, _ := r.resource.Get(event.AttrContainerID)
		if v.Str() != pod.containerID {
			t.Errorf("event of pod %s has container.id %q, want %s", pod.name, v.Str(), pod.containerID)
		}
		return true
	})
}

// eventually retries cond for a while: informers, the policy loop and the
// kernel sets all catch up asynchronously.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		if cond() {
			return
		}
	}
	t.Fatalf("not within 15s: %s", what)
}

func TestKubernetesPolicyObjectsAndPodSelectors(t *testing.T) {
	files := t.TempDir()
	dir := t.TempDir()
	f, g, h := filepath.Join(dir, "f"), filepath.Join(dir, "g"), filepath.Join(dir, "h")
	for _, p := range []string{f, g, h} {
		os.WriteFile(p, []byte("x"), 0o644)
	}
	// A file policy whose name a cluster object takes later.
	fileOwned := filepath.Join(files, "owned.yaml")
	writePolicy(t, files, "owned.yaml", openPolicyObject("TracingPolicy", "", "owned", g, ""))
	kube, r, sink := startKubeReceiver(t, files)
	cs := kube.Clientset
	dyn, err := dynamic.NewForConfig(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ns := range []string{"team-a", "team-b"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	web := createPod(t, cs, "team-a", "web", map[string]string{"app": "web"})
	db := createPod(t, cs, "team-a", "db", map[string]string{"app": "db"})
	other := createPod(t, cs, "team-b", "web", map[string]string{"app": "web"})

	// A cluster-wide policy for app=web pods, in every namespace.
	applyPolicy(t, dyn, openPolicyObject("TracingPolicy", "", "web-open", f, "  podSelector: {matchLabels: {app: web}}\n"))
	eventually(t, "the TracingPolicy object reports web's open", func() bool { return opens(t, sink, web, f, "web-open") })
	if !opens(t, sink, other, f, "web-open") {
		t.Error("the app=web pod of team-b is not reported")
	}
	if opens(t, sink, db, f, "web-open") {
		t.Error("the app=db pod is reported by a policy for app=web")
	}

	// Labels change: the pod joins the policy.
	pod, err := cs.CoreV1().Pods("team-a").Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Labels["app"] = "web"
	if _, err := cs.CoreV1().Pods("team-a").Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "db, relabelled app=web, is reported", func() bool { return opens(t, sink, db, f, "web-open") })

	// The pod is deleted: its cgroup leaves the policy.
	if err := cs.CoreV1().Pods("team-a").Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted pod is no longer reported", func() bool { return !opens(t, sink, web, f, "web-open") })

	// A namespaced policy applies in its namespace only.
	applyPolicy(t, dyn, openPolicyObject("TracingPolicyNamespaced", "team-b", "ns-open", g, ""))
	eventually(t, "the namespaced policy reports in its namespace", func() bool { return opens(t, sink, other, g, "ns-open") })
	if opens(t, sink, db, g, "ns-open") {
		t.Error("a TracingPolicyNamespaced of team-b reports a pod of team-a")
	}
	// Its hook's counters carry its namespace: another namespace may have
	// a policy of the same name.
	if p := points(r.collectMetrics())["vigil.policy.hook.matches"+"{k8s.namespace.name=team-b,security_rule.name=ns-open,vigil.hook=sys_openat}"]; p.value < 1 {
		t.Errorf("the namespaced policy's hook matched %d calls, want its open", p.value)
	}

	// An update takes effect without a restart; a broken update keeps the
	// running version.
	applyPolicy(t, dyn, openPolicyObject("TracingPolicy", "", "web-open", h, "  podSelector: {matchLabels: {app: web}}\n"))
	eventually(t, "the updated object reports h", func() bool { return opens(t, sink, other, h, "web-open") })
	if opens(t, sink, other, f, "web-open") {
		t.Error("the replaced version still reports f")
	}
	applyPolicy(t, dyn, strings.Replace(openPolicyObject("TracingPolicy", "", "web-open", f, "  podSelector: {matchLabels: {app: web}}\n"), "Equal", "Equals", 1))
	eventually(t, "the broken update is refused", func() bool {
		for _, st := range r.engine.Statuses() {
			if st.Name == "web-open" && st.Running && strings.Contains(st.Error, "operator") {
				return true
			}
		}
		return false
	})
	if !opens(t, sink, other, h, "web-open") {
		t.Error("after a refused update, the running version stopped reporting")
	}

	// Deleting the object unloads the policy.
	if err := dyn.Resource(k8s.TracingPolicyResource).Delete(ctx, "web-open", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted policy no longer reports", func() bool { return !opens(t, sink, other, h, "web-open") })

	// A cluster object of a file policy's name: the file keeps it, and the
	// object is refused naming the file.
	applyPolicy(t, dyn, openPolicyObject("TracingPolicy", "", "owned", f, ""))
	eventually(t, "the object of a file policy's name is refused", func() bool {
		for _, st := range r.engine.Statuses() {
			if st.Name == "owned" && st.Source == "TracingPolicy owned" && !st.Running &&
				strings.Contains(st.Error, fileOwned) {
				return true
			}
		}
		return false
	})
	if !opens(t, sink, other, g, "owned") {
		t.Error("the file policy stopped reporting when an object took its name")
	}
	if opens(t, sink, other, f, "owned") {
		t.Error("the cluster object of a file policy's name was loaded")
	}
}
