package distribution_test

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

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/k8s"
	"github.com/vigilsec/vigil/internal/testenv"
)

const e2eNode = "vigil-e2e-node"

// shippedConfig extracts the collector config of the DaemonSet's ConfigMap.
func shippedConfig(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile("kubernetes/collector-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(data, &cm); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cm.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// e2ePod is a pod whose one container runs in a real cgroup named the way
// containerd names it; the test plays the kubelet and writes its status.
type e2ePod struct {
	*corev1.Pod
	id     string
	cgroup *testenv.Cgroup
}

func newE2EContainer(t *testing.T) (string, *testenv.Cgroup) {
	b := make([]byte, 32)
	rand.Read(b)
	id := hex.EncodeToString(b)
	return id, testenv.NewCgroup(t, "kubepods.slice/kubepods-burstable.slice/vigil-e2e/cri-containerd-"+id+".scope")
}

func createE2EPod(t *testing.T, cs kubernetes.Interface, pod *corev1.Pod, id string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	pod.Spec.NodeName = e2eNode
	created, err := cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := pod.Spec.Containers[0]
	created.Status.Phase = corev1.PodRunning
	created.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: c.Name, Image: c.Image, ImageID: c.Image + "@sha256:" + strings.Repeat("1", 64),
		ContainerID: "containerd://" + id, Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	}}
	updated, err := cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return updated
}

// The DaemonSet's own collector config, run by the built distribution
// against a real API server: events of processes in a pod's cgroup carry
// the pod, its workload and labels; a TracingPolicy object with a
// podSelector reports that pod; a pod the informer learns of only after its
// first exec still labels that exec.
func TestKubernetesShippedConfigLabelsEventsWithPods(t *testing.T) {
	bin := testenv.CollectorBinary(t, "../bin/otelcol-vigil")
	cli := vigilCLI(t)
	kube := testenv.StartKube(t, "kubernetes/crds")
	cs := kube.Clientset
	ctx := context.Background()
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies")
	os.Mkdir(policies, 0o755)
	eventsFile := filepath.Join(dir, "events.jsonl")
	socket := filepath.Join(dir, "events.sock")

	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Deployment web -> ReplicaSet web-7c9d -> pod web-7c9d-x2x4z. No
	// controller runs: the objects are written as the controllers would.
	deploy, err := cs.AppsV1().Deployments("shop").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.27"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	rs, err := cs.AppsV1().ReplicaSets("shop").Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-7c9d", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "Deployment", Name: deploy.Name, UID: deploy.UID, Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Selector: deploy.Spec.Selector, Template: deploy.Spec.Template},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	webID, webCgroup := newE2EContainer(t)
	createE2EPod(t, cs, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-7c9d-x2x4z", Namespace: "shop", Labels: map[string]string{"app": "web"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.27"}}},
	}, webID)

	c := testenv.StartCollector(t, bin, []string{"K8S_NODE_NAME=" + e2eNode, "POD_IP=127.0.0.1"},
		"--config", shippedConfig(t, dir),
		"--set", "extensions::k8s_metadata::auth_type=kubeConfig",
		"--set", "extensions::k8s_metadata::kubeconfig="+kube.Kubeconfig(t, dir),
		"--set", "extensions::health_check::endpoint=127.0.0.1:0",
		"--set", "exporters::prometheus::endpoint=127.0.0.1:0",
		// The shipped config serves the collector's telemetry on
		// POD_IP:8888, a fixed port another process may hold here.
		"--set", "service::telemetry::metrics::level=none",
		// The late container's exec below is held from before its pod
		// exists until after: more than the shipped 2s on a loaded machine.
		"--set", "processors::k8s_workload::wait_for_metadata=30s",
		"--set", "exporters::event_stream::socket="+socket,
		"--set", "receivers::ebpf::process::procfs=/proc",
		"--set", "receivers::ebpf::policies=["+policies+"]",
		"--set", "receivers::ebpf::status_file="+filepath.Join(dir, "policies.json"),
		"--set", "exporters::file::path="+eventsFile,
		"--set", "service::pipelines::logs::exporters=[compact,event_stream,file]",
	)
	// `kubectl exec ds/vigil -- vigil events --pods`: the stream filters on
	// the attributes k8s_workload set.
	webStream, webStreamErr := followEvents(t, cli, "--socket", socket, "--color", "never",
		"--namespace", "shop", "--pods", "^web-", "--event", "process.exec")

	// An exec in the pod's container: `kubectl logs` shows namespace/pod.
	run := func(cg *testenv.Cgroup, args ...string) {
		t.Helper()
		if out, err := cg.Command(t, args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	// vigil events follows from when it has subscribed, which it does not
	// announce: execs are repeated until one reaches the stream, and the
	// checks below follow that one.
	var marker string
	eventually(t, "vigil events --pods shows the web pod's exec", func() (bool, string) {
		marker = fmt.Sprintf("vigil-k8s-%d", time.Now().UnixNano())
		run(webCgroup, "/bin/echo", marker)
		time.Sleep(200 * time.Millisecond)
		out := webStream.String()
		return strings.Contains(out, "🚀 process shop/web-7c9d-x2x4z /bin/echo "+marker+"\n"), out
	})
	eventually(t, "the compact exec line names shop/web-7c9d-x2x4z", func() (bool, string) {
		out := c.Stdout()
		return strings.Contains(out, "🚀 process shop/web-7c9d-x2x4z /bin/echo "+marker+"\n"), out
	})
	eventually(t, "the OTLP exec record carries the pod's attributes", func() (bool, string) {
		res, recs := logRecords(t, eventsFile, marker)
		for i, r := range recs {
			if r.EventName() != event.NameProcessExec {
				continue
			}
			got := res[i].AsRaw()
			want := map[string]any{
				"container.id": webID, "k8s.pod.name": "web-7c9d-x2x4z", "k8s.namespace.name": "shop",
				"k8s.container.name": "nginx", "container.image.name": "nginx",
				"k8s.replicaset.name": "web-7c9d", "k8s.deployment.name": "web", "k8s.node.name": e2eNode,
				"k8s.pod.labels.app": "web",
			}
			for k, v := range want {
				if got[k] != v {
					return false, fmt.Sprintf("%s = %v, want %v; resource %v", k, got[k], v, got)
				}
			}
			return true, ""
		}
		return false, fmt.Sprintf("%d records", len(recs))
	})

	// A TracingPolicy object for app=web pods, applied to the cluster.
	secret := filepath.Join(dir, "secret-"+marker)
	os.WriteFile(secret, []byte("x"), 0o644)
	dyn, err := dynamic.NewForConfig(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	var obj unstructured.Unstructured
	yaml.Unmarshal([]byte(fmt.Sprintf(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: web-secrets}
spec:
  podSelector: {matchLabels: {app: web}}
  kprobes:
  - call: sys_openat
    syscall: true
    args: [{index: 1, type: string}]
    selectors:
    - matchArgs: [{index: 1, operator: Equal, values: [%q]}]
`, secret)), &obj.Object)
	if _, err := dyn.Resource(k8s.TracingPolicyResource).Create(ctx, &obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the policy object reports the pod's open", func() (bool, string) {
		run(webCgroup, "/bin/cat", secret)
		out := c.Stdout()
		return strings.Contains(out, "📬 open    shop/web-7c9d-x2x4z /bin/cat "+secret+"\n"), out
	})

	// A process runs in a new container before its pod reaches the
	// informer: its exec is held (wait_for_metadata) and still labelled.
	newID, newCgroup := newE2EContainer(t)
	late := marker + "-late"
	run(newCgroup, "/bin/echo", late)
	// An exec of the web pod after it passes k8s_workload after the late
	// one: once its line is out, the late exec is being held.
	after := marker + "-after"
	run(webCgroup, "/bin/echo", after)
	eventually(t, "an exec after the late one is printed", func() (bool, string) {
		out := c.Stdout()
		return strings.Contains(out, "🚀 process shop/web-7c9d-x2x4z /bin/echo "+after+"\n"), out
	})
	if out := c.Stdout(); strings.Contains(out, "/bin/echo "+late+"\n") {
		t.Fatalf("the exec of a container no pod names yet was printed before its pod existed:\n%s", out)
	}
	createE2EPod(t, cs, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "batch-1", Namespace: "shop"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "job", Image: "busybox:1.37"}}},
	}, newID)
	eventually(t, "the first exec of a pod the informer learnt of later is labelled", func() (bool, string) {
		out := c.Stdout()
		return strings.Contains(out, "🚀 process shop/batch-1 /bin/echo "+late+"\n"), out
	})

	// vigil events --pods '^web-' saw web's execs and nothing of batch-1.
	for _, line := range completeLines(webStream.String()) {
		if !strings.HasPrefix(line, "🚀 process shop/web-7c9d-x2x4z ") {
			t.Errorf("vigil events --namespace shop --pods ^web- --event process.exec printed %q", line)
		}
	}
	if s := webStreamErr.String(); s != "" {
		t.Errorf("vigil events wrote to stderr:\n%s", s)
	}
	c.Stop(t)
}
