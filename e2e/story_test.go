//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/k8s"
	"github.com/vigilsec/vigil/internal/testenv"
)

const (
	vigilArchive = "../build/image/otelcol-vigil.oci.tar"
	chartDir     = "../distribution/helm/vigil"
	policyName   = "web-no-shadow"
)

// values are the chart's values for this node. No kube-proxy runs here,
// so no Service address is routed: the collector reaches the apiserver at
// the node's address, as Cilium's and Tetragon's k8sServiceHost do. Its
// events also go to a file on the node, for the test to read.
func values(eventsDir string) string {
	return fmt.Sprintf(`extraEnvs:
  - {name: KUBERNETES_SERVICE_HOST, value: %q}
  - {name: KUBERNETES_SERVICE_PORT, value: "6443"}
extraVolumes:
  - name: events
    hostPath: {path: %q, type: Directory}
extraVolumeMounts:
  - {name: events, mountPath: /var/log/vigil}
config:
  exporters:
    file:
      path: /var/log/vigil/events.jsonl
      format: json
  service:
    pipelines:
      logs:
        exporters: [compact, event_stream, file]
`, nodeIP, eventsDir)
}

const workloads = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: ` + workloadImage + `
        imagePullPolicy: Never
        command: [sleep, "3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: shop, labels: {app: other}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: other
    image: ` + workloadImage + `
    imagePullPolicy: Never
    command: [sleep, "3600"]
`

const policy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: ` + policyName + `
spec:
  podSelector:
    matchLabels: {app: web}
  kprobes:
  - call: sys_openat
    syscall: true
    args: [{index: 1, type: string}]
    selectors:
    - matchArgs: [{index: 1, operator: Prefix, values: [/etc/shadow]}]
      matchActions: [{action: Sigkill}]
`

// vigilPrograms returns the ids of the BPF programs loaded on the machine
// whose names are Vigil's (vigil_*), and of the links to them.
func vigilPrograms(t *testing.T) (progs map[ebpf.ProgramID]string, links []link.ID) {
	t.Helper()
	progs = map[ebpf.ProgramID]string{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			break
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		if info, err := p.Info(); err == nil && strings.HasPrefix(info.Name, "vigil_") {
			progs[id] = info.Name
		}
		p.Close()
	}
	var it link.Iterator
	for it.Next() {
		if info, err := it.Link.Info(); err == nil {
			if _, ok := progs[info.Program]; ok {
				links = append(links, it.ID)
			}
		}
	}
	return progs, links
}

func TestVigilOnANode(t *testing.T) {
	if _, err := os.Stat(vigilArchive); err != nil {
		testenv.Unavailable(t, "%s is missing: run `make image`", vigilArchive)
	}
	testenv.RequireBPF(t)
	started := time.Now()
	n := startNode(t)
	t.Logf("node Ready in %s", time.Since(started).Round(time.Second))
	pause, workload := nodeImages(t, n.dir)
	for _, a := range []string{pause, workload, vigilArchive} {
		n.importImage(a)
	}
	before, _ := vigilPrograms(t)

	// 1. The chart, from the image make image built; the rollout holds
	// until the DaemonSet's pod passed its startup and readiness probes
	// (helm's --wait may return before the DaemonSet has counted its pod).
	events := mkdir(t, n.dir, "events")
	valuesFile := filepath.Join(n.dir, "values.yaml")
	must(t, os.WriteFile(valuesFile, []byte(values(events)), 0o644))
	t0 := time.Now()
	n.helm("install", "vigil", chartDir, "--namespace", "vigil", "--create-namespace", "-f", valuesFile)
	until(t, 3*time.Minute, "the DaemonSet's pod Ready", func() (bool, string) {
		out, code := n.kubectl("rollout", "status", "--namespace", "vigil", "daemonset/vigil", "--timeout=10s")
		if code != 0 {
			logs, _ := n.kubectl("logs", "--namespace", "vigil", "ds/vigil", "--tail=40")
			return false, out + "\ncollector:\n" + logs
		}
		return true, ""
	})
	t.Logf("helm install, pod Ready: %s", time.Since(t0).Round(time.Second))
	vigilPod := onlyPod(t, n, "vigil", "app.kubernetes.io/name=vigil")
	if !podReady(vigilPod) {
		t.Fatalf("the collector's pod is not Ready after helm install --wait: %+v", vigilPod.Status)
	}
	if running, _ := vigilPrograms(t); len(running) <= len(before) {
		t.Fatalf("the collector's pod runs, but no BPF program of Vigil was loaded (%d before, %d now)", len(before), len(running))
	}

	// 2. The workloads.
	n.mustKubectl("create", "namespace", "shop")
	apply(t, n, workloads)
	n.mustKubectl("wait", "--namespace", "shop", "--for=condition=Ready", "pod", "--all", "--timeout=120s")
	web := onlyPod(t, n, "shop", "app=web")

	// 3. The policy: within a few seconds an open of /etc/shadow in the
	// web pod dies by SIGKILL; in the other pod it succeeds.
	apply(t, n, policy)
	until(t, 30*time.Second, "cat /etc/shadow killed in the web pod", func() (bool, string) {
		out, code := n.kubectl("exec", "--namespace", "shop", web.Name, "--", "cat", "/etc/shadow")
		return code == 137, fmt.Sprintf("exit %d: %s", code, out)
	})
	if out, code := n.kubectl("exec", "--namespace", "shop", "other", "--", "cat", "/etc/shadow"); code != 0 || !strings.Contains(out, "root:*") {
		t.Errorf("cat /etc/shadow in the other pod: exit %d, %q; want it read", code, out)
	}

	// 4. The events name the pod as the kubelet reports it.
	var status corev1.ContainerStatus
	for _, s := range web.Status.ContainerStatuses {
		if s.Name == "web" {
			status = s
		}
	}
	wantName, wantTag := k8s.SplitImage(status.Image)
	want := map[string]string{
		event.AttrK8sPodName:         web.Name,
		event.AttrK8sNamespace:       "shop",
		"k8s.deployment.name":        "web",
		"k8s.container.name":         status.Name,
		event.AttrContainerID:        k8s.RuntimeContainerID(status.ContainerID),
		event.AttrContainerImageName: wantName,
	}
	eventsFile := filepath.Join(events, "events.jsonl")
	until(t, 30*time.Second, "the killed open in the events file, with the pod's metadata", func() (bool, string) {
		res, ok := findRecord(t, eventsFile, func(res pcommon.Map, lr plog.LogRecord) bool {
			rule, _ := lr.Attributes().Get(event.AttrSecurityRuleName)
			pod, _ := res.Get(event.AttrK8sPodName)
			return rule.Str() == policyName && pod.Str() == web.Name
		})
		if !ok {
			return false, "no record of " + policyName + " for " + web.Name
		}
		for k, v := range want {
			if got, _ := res.Get(k); got.AsString() != v {
				return false, fmt.Sprintf("%s = %q, want %q (resource %v)", k, got.AsString(), v, res.AsRaw())
			}
		}
		if tags, _ := res.Get("container.image.tags"); tags.Type() != pcommon.ValueTypeSlice || tags.Slice().Len() != 1 || tags.Slice().At(0).Str() != wantTag {
			return false, fmt.Sprintf("container.image.tags = %v, want [%s]", tags.AsRaw(), wantTag)
		}
		return true, ""
	})
	until(t, 30*time.Second, "kubectl logs ds/vigil shows the killed cat", func() (bool, string) {
		out := n.mustKubectl("logs", "--namespace", "vigil", "ds/vigil")
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "shop/"+web.Name+" /bin/cat /etc/shadow") && strings.Contains(l, "SIGKILL") {
				return true, ""
			}
		}
		return false, out
	})

	// 5. vigil events in the collector's pod streams the namespace.
	t.Run("vigil events --namespace shop", func(t *testing.T) {
		stream := exec.Command(filepath.Join(n.assets, "kubectl"), "--kubeconfig", n.admin,
			"exec", "--namespace", "vigil", "ds/vigil", "--", "vigil", "events", "--namespace", "shop", "--color", "never")
		var mu sync.Mutex
		var lines []string
		out, _ := stream.StdoutPipe()
		stream.Stderr = stream.Stdout
		must(t, stream.Start())
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				mu.Lock()
				lines = append(lines, sc.Text())
				mu.Unlock()
			}
		}()
		defer func() { stream.Process.Kill(); stream.Wait() }()
		until(t, 30*time.Second, "vigil events shows a process of the web pod", func() (bool, string) {
			marker := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
			n.kubectl("exec", "--namespace", "shop", web.Name, "--", "echo", marker)
			time.Sleep(500 * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			for _, l := range lines {
				if strings.Contains(l, "shop/"+web.Name+" /bin/echo "+marker) {
					return true, ""
				}
			}
			return false, strings.Join(lines, "\n")
		})
	})

	// 6. Deleting the policy stops the kills; uninstalling leaves no
	// program or link of Vigil's in the kernel.
	n.mustKubectl("delete", "tracingpolicy", policyName)
	until(t, 30*time.Second, "cat /etc/shadow succeeds in the web pod once the policy is gone", func() (bool, string) {
		out, code := n.kubectl("exec", "--namespace", "shop", web.Name, "--", "cat", "/etc/shadow")
		return code == 0 && strings.Contains(out, "root:*"), fmt.Sprintf("exit %d: %s", code, out)
	})
	n.helm("uninstall", "vigil", "--namespace", "vigil", "--wait", "--timeout", "2m")
	until(t, 60*time.Second, "the collector's pod gone and its BPF programs with it", func() (bool, string) {
		pods, _ := n.cs.CoreV1().Pods("vigil").List(context.Background(), metav1.ListOptions{})
		if len(pods.Items) > 0 {
			return false, fmt.Sprintf("%d pods left in namespace vigil", len(pods.Items))
		}
		progs, links := vigilPrograms(t)
		var left []string
		for id, name := range progs {
			if _, ok := before[id]; !ok {
				left = append(left, fmt.Sprintf("%s (id %d)", name, id))
			}
		}
		return len(left) == 0 && len(links) == 0, fmt.Sprintf("programs %v, links %v", left, links)
	})
	t.Logf("story done in %s", time.Since(started).Round(time.Second))
}

// apply applies YAML with kubectl, server-side.
func apply(t *testing.T, n *node, yaml string) {
	t.Helper()
	f := filepath.Join(n.dir, fmt.Sprintf("apply-%d.yaml", time.Now().UnixNano()))
	must(t, os.WriteFile(f, []byte(yaml), 0o644))
	n.mustKubectl("apply", "--server-side", "-f", f)
}

// onlyPod returns the one pod of namespace ns with the label selector.
func onlyPod(t *testing.T, n *node, ns, selector string) corev1.Pod {
	t.Helper()
	pods, err := n.cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	must(t, err)
	if len(pods.Items) != 1 {
		t.Fatalf("%d pods %s in %s, want 1", len(pods.Items), selector, ns)
	}
	return pods.Items[0]
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// findRecord returns the resource of the first record of the OTLP JSON
// file that match accepts.
func findRecord(t *testing.T, path string, match func(pcommon.Map, plog.LogRecord) bool) (found pcommon.Map, ok bool) {
	testenv.OTLPJSONRecords(t, path, func(res pcommon.Map, lr plog.LogRecord) bool {
		if match(res, lr) {
			found, ok = res, true
		}
		return !ok
	})
	return found, ok
}
