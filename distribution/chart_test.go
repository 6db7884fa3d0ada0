package distribution_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/vigilsec/vigil/internal/testenv"
)

// The chart's values, one case each: what `helm template` renders is
// checked against expectations written out here, never read back from the
// templates; kubernetes_test.go applies every case to a real kube-apiserver
// and TestChartCollectorConfigsValidate hands every rendered collector
// configuration to the real otelcol-vigil.

const (
	// collectorBinaryPath is where `make dist` puts the distribution,
	// relative to this package.
	collectorBinaryPath = "../bin/otelcol-vigil"
	// The prometheus-operator release whose ServiceMonitor and
	// PodMonitor CRDs the chart's monitors are applied against, from the
	// Go module proxy (its module zip holds example/prometheus-operator-crd).
	promOperatorModule  = "github.com/prometheus-operator/prometheus-operator"
	promOperatorVersion = "v0.85.0"
	// A digest the image can be pinned to.
	testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// wantCapabilities are the capabilities the collector container adds, and
// no more: no SYS_RESOURCE, since kernels from 5.11 charge BPF memory to the
// cgroup and Vigil needs 5.17.
var wantCapabilities = []string{"BPF", "PERFMON", "SYS_ADMIN", "SYS_PTRACE", "KILL", "NET_ADMIN"}

// chartCase is one way to install the chart.
type chartCase struct {
	name    string
	release string // releaseName when empty
	values  string // a values file, YAML
	set     []string
	check   func(t *testing.T, r *chartRender)
}

// chartRender is what `helm template` made of a chartCase.
type chartRender struct {
	release string
	objs    []kubeObject
}

func renderChart(t *testing.T, c chartCase) *chartRender {
	t.Helper()
	release := c.release
	if release == "" {
		release = releaseName
	}
	out := runHelm(t, templateArgs(t, release, c.values, c.set)...)
	return &chartRender{release: release, objs: decodeObjects(t, out, "helm template ("+c.name+")")}
}

// fullname is the name the chart gives the release's objects: the release
// name when it holds "vigil", else "<release>-vigil".
func (r *chartRender) fullname() string {
	if strings.Contains(r.release, "vigil") {
		return r.release
	}
	return r.release + "-vigil"
}

func (r *chartRender) all(kind string) []kubeObject {
	var objs []kubeObject
	for _, o := range r.objs {
		if o.obj.GetKind() == kind {
			objs = append(objs, o)
		}
	}
	return objs
}

// one returns the object of that kind, failing unless there is exactly one.
func (r *chartRender) one(t *testing.T, kind string) *unstructured.Unstructured {
	t.Helper()
	objs := r.all(kind)
	if len(objs) != 1 {
		t.Fatalf("the chart renders %d %s objects, want 1", len(objs), kind)
	}
	return objs[0].obj
}

func (r *chartRender) podSpec(t *testing.T) map[string]any {
	t.Helper()
	spec, _, _ := unstructured.NestedMap(r.one(t, "DaemonSet").Object, "spec", "template", "spec")
	return spec
}

func (r *chartRender) podLabels(t *testing.T) map[string]string {
	t.Helper()
	labels, _, _ := unstructured.NestedStringMap(r.one(t, "DaemonSet").Object, "spec", "template", "metadata", "labels")
	return labels
}

func (r *chartRender) container(t *testing.T) map[string]any {
	t.Helper()
	containers, _ := r.podSpec(t)["containers"].([]any)
	if len(containers) != 1 {
		t.Fatalf("the DaemonSet has %d containers, want 1", len(containers))
	}
	return containers[0].(map[string]any)
}

// env returns the container's environment by name, failing on a name set
// twice.
func (r *chartRender) env(t *testing.T) map[string]map[string]any {
	t.Helper()
	env := map[string]map[string]any{}
	l, _ := r.container(t)["env"].([]any)
	for _, e := range l {
		e := e.(map[string]any)
		name := e["name"].(string)
		if _, dup := env[name]; dup {
			t.Errorf("the container sets %s twice", name)
		}
		env[name] = e
	}
	return env
}

func (r *chartRender) config(t *testing.T) map[string]any {
	t.Helper()
	return collectorConfig(t, findObject(t, r.objs, "ConfigMap", r.fullname()+"-config"))
}

// containerPorts maps the container's port names to their numbers.
func (r *chartRender) containerPorts(t *testing.T) map[string]int64 {
	t.Helper()
	ports := map[string]int64{}
	l, _ := r.container(t)["ports"].([]any)
	for _, p := range l {
		p := p.(map[string]any)
		ports[p["name"].(string)] = p["containerPort"].(int64)
	}
	return ports
}

// wantGOMEMLIMIT is 80% of a memory quantity, rounded down to a MiB, as
// Kubernetes reads the quantity.
func wantGOMEMLIMIT(t *testing.T, quantity string) string {
	t.Helper()
	q, err := resource.ParseQuantity(quantity)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%dMiB", q.Value()*4/5/(1<<20))
}

func appVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil || chart.AppVersion == "" {
		t.Fatalf("Chart.yaml: no appVersion (%v)", err)
	}
	return chart.AppVersion
}

// checkMemoryLimiterFirst: the memory_limiter processor is configured and
// first, once, in every pipeline.
func checkMemoryLimiterFirst(t *testing.T, cfg map[string]any) {
	t.Helper()
	if _, ok := dig(cfg, "processors").(map[string]any)["memory_limiter"]; !ok {
		t.Errorf("processors has no memory_limiter: %v", dig(cfg, "processors"))
	}
	pipelines, _ := dig(cfg, "service", "pipelines").(map[string]any)
	if len(pipelines) == 0 {
		t.Error("no pipelines")
	}
	for name := range pipelines {
		procs := stringList(dig(pipelines, name, "processors"))
		if len(procs) == 0 || procs[0] != "memory_limiter" || slices.Index(procs[1:], "memory_limiter") >= 0 {
			t.Errorf("pipeline %s: processors %v, want memory_limiter first, once", name, procs)
		}
	}
}

// checkNoMemoryLimiter: no memory_limiter anywhere.
func checkNoMemoryLimiter(t *testing.T, cfg map[string]any) {
	t.Helper()
	if v, ok := dig(cfg, "processors").(map[string]any)["memory_limiter"]; ok {
		t.Errorf("processors.memory_limiter = %v, want none", v)
	}
	pipelines, _ := dig(cfg, "service", "pipelines").(map[string]any)
	for name := range pipelines {
		if procs := stringList(dig(pipelines, name, "processors")); slices.Contains(procs, "memory_limiter") {
			t.Errorf("pipeline %s: processors %v, want no memory_limiter", name, procs)
		}
	}
}

// writeVerbs lists the verbs of every Role and ClusterRole rule that write.
func writeVerbs(objs []kubeObject) []string {
	var out []string
	for _, o := range objs {
		if k := o.obj.GetKind(); k != "Role" && k != "ClusterRole" {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(o.obj.Object, "rules")
		for _, rule := range rules {
			for _, v := range stringList(rule.(map[string]any)["verbs"]) {
				if v != "get" && v != "list" && v != "watch" {
					out = append(out, fmt.Sprintf("%s %s: %s %v", o.obj.GetKind(), o.obj.GetName(), v, rule.(map[string]any)["resources"]))
				}
			}
		}
	}
	return out
}

// podWriteVerbs returns the verbs beyond reading that the ClusterRole
// grants on pods, sorted.
func podWriteVerbs(t *testing.T, r *chartRender) []string {
	t.Helper()
	var verbs []string
	rules, _, _ := unstructured.NestedSlice(r.one(t, "ClusterRole").Object, "rules")
	for _, rule := range rules {
		rule := rule.(map[string]any)
		if !slices.Equal(stringList(rule["apiGroups"]), []string{""}) || !slices.Contains(stringList(rule["resources"]), "pods") {
			continue
		}
		for _, v := range stringList(rule["verbs"]) {
			if v != "get" && v != "list" && v != "watch" {
				verbs = append(verbs, v)
			}
		}
	}
	slices.Sort(verbs)
	return verbs
}

// selects reports whether a label selector's matchLabels select labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkServiceSelectsPods: the Service selects the DaemonSet's pods, and
// each of its ports leads to the container port of the same name and
// number.
func checkServiceSelectsPods(t *testing.T, objs []kubeObject) {
	t.Helper()
	var ds, svc *unstructured.Unstructured
	for _, o := range objs {
		switch o.obj.GetKind() {
		case "DaemonSet":
			ds = o.obj
		case "Service":
			svc = o.obj
		}
	}
	if ds == nil || svc == nil {
		t.Fatalf("want a DaemonSet and a Service, have %v and %v", ds, svc)
	}
	selector, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	labels, _, _ := unstructured.NestedStringMap(ds.Object, "spec", "template", "metadata", "labels")
	if !selects(selector, labels) {
		t.Errorf("Service %s selects %v, the DaemonSet's pods are labelled %v", svc.GetName(), selector, labels)
	}
	if svc.GetNamespace() != ds.GetNamespace() {
		t.Errorf("Service in %q, DaemonSet in %q", svc.GetNamespace(), ds.GetNamespace())
	}
	if ip, _, _ := unstructured.NestedString(svc.Object, "spec", "clusterIP"); ip != "None" {
		t.Errorf("Service clusterIP %q, want None (headless: every collector its own endpoint)", ip)
	}
	containerPorts := map[string]int64{}
	containers, _, _ := unstructured.NestedSlice(ds.Object, "spec", "template", "spec", "containers")
	for _, p := range containers[0].(map[string]any)["ports"].([]any) {
		p := p.(map[string]any)
		containerPorts[p["name"].(string)] = p["containerPort"].(int64)
	}
	want := map[string]int64{"health": 13133, "metrics": 9464, "telemetry": 8888}
	got := map[string]int64{}
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	for _, p := range ports {
		p := p.(map[string]any)
		name := p["name"].(string)
		got[name] = p["port"].(int64)
		target, _ := p["targetPort"].(string)
		if containerPorts[target] != p["port"] {
			t.Errorf("Service port %s (%v) targets %q, which the container has as port %d", name, p["port"], target, containerPorts[target])
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("Service ports %v, want %v", got, want)
	}
	if !maps.Equal(containerPorts, want) {
		t.Errorf("container ports %v, want %v", containerPorts, want)
	}
}

// endpointPort is the port of a host:port endpoint of the collector config.
func endpointPort(s string) string {
	return s[strings.LastIndex(s, ":")+1:]
}

// checkDefaultConfig: the default collector configuration bounds its memory
// and serves its own telemetry, health and metrics on the container's
// ports.
func checkDefaultConfig(t *testing.T, r *chartRender) {
	t.Helper()
	cfg := r.config(t)
	checkMemoryLimiterFirst(t, cfg)
	if got, want := dig(cfg, "processors", "memory_limiter"), map[string]any{
		"check_interval": "1s", "limit_percentage": float64(80), "spike_limit_percentage": float64(25),
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("processors.memory_limiter = %v, want %v", got, want)
	}
	readers, _ := dig(cfg, "service", "telemetry", "metrics", "readers").([]any)
	want := map[string]any{"host": "${env:POD_IP}", "port": float64(8888)}
	if len(readers) != 1 || !reflect.DeepEqual(dig(readers[0], "pull", "exporter", "prometheus"), want) {
		t.Errorf("service.telemetry.metrics.readers = %v, want one pull reader, prometheus %v", readers, want)
	}
	ports := r.containerPorts(t)
	for path, port := range map[string]string{
		"extensions::health_check::endpoint": "health",
		"exporters::prometheus::endpoint":    "metrics",
	} {
		ep, _ := dig(cfg, strings.Split(path, "::")...).(string)
		if !strings.HasPrefix(ep, "${env:POD_IP}:") || endpointPort(ep) != fmt.Sprint(ports[port]) {
			t.Errorf("%s = %q, want the pod IP and the container's %s port %d", path, ep, port, ports[port])
		}
	}
}

func chartCases() []chartCase {
	cases := []chartCase{{
		name: "defaults",
		check: func(t *testing.T, r *chartRender) {
			c := r.container(t)
			if want := "ghcr.io/vigilsec/otelcol-vigil:" + appVersion(t); c["image"] != want {
				t.Errorf("image %v, want %s", c["image"], want)
			}
			if c["imagePullPolicy"] != "IfNotPresent" {
				t.Errorf("imagePullPolicy %v", c["imagePullPolicy"])
			}
			if args := stringList(c["args"]); !slices.Equal(args, []string{"--config", "/etc/vigil/config.yaml"}) {
				t.Errorf("args %v", args)
			}
			limits, _ := dig(c, "resources", "limits").(map[string]any)
			if limits["memory"] != "1Gi" {
				t.Errorf("resources.limits %v, want memory 1Gi", limits)
			}
			if cpu, ok := limits["cpu"]; ok {
				t.Errorf("resources.limits.cpu = %v: a CPU limit throttles the ring buffer reader", cpu)
			}
			env := r.env(t)
			if got := env["GOMEMLIMIT"]["value"]; got != "819MiB" || got != wantGOMEMLIMIT(t, "1Gi") {
				t.Errorf("GOMEMLIMIT = %v, want 819MiB (80%% of 1Gi)", got)
			}
			for name, path := range map[string]string{"K8S_NODE_NAME": "spec.nodeName", "POD_IP": "status.podIP"} {
				if got := dig(env[name], "valueFrom", "fieldRef", "fieldPath"); got != path {
					t.Errorf("%s from %v, want %s", name, got, path)
				}
			}
			checkDefaultConfig(t, r)

			sc, _ := c["securityContext"].(map[string]any)
			if add := stringList(dig(sc, "capabilities", "add")); !slices.Equal(add, wantCapabilities) {
				t.Errorf("capabilities.add %v, want %v", add, wantCapabilities)
			}
			if drop := stringList(dig(sc, "capabilities", "drop")); !slices.Equal(drop, []string{"ALL"}) {
				t.Errorf("capabilities.drop %v, want [ALL]", drop)
			}
			if sc["privileged"] != false || sc["allowPrivilegeEscalation"] != false || sc["readOnlyRootFilesystem"] != true ||
				dig(sc, "appArmorProfile", "type") != "Unconfined" {
				t.Errorf("securityContext %v", sc)
			}
			if _, ok := r.podSpec(t)["securityContext"]; ok {
				t.Errorf("pod securityContext %v, want none", r.podSpec(t)["securityContext"])
			}

			// Probes: the startup probe waits out the BPF load, so
			// liveness needs no initial delay.
			for _, p := range []string{"startupProbe", "livenessProbe", "readinessProbe"} {
				if port := dig(c, p, "httpGet", "port"); port != "health" {
					t.Errorf("%s on port %v, want health", p, port)
				}
			}
			if d, ok := dig(c, "livenessProbe").(map[string]any)["initialDelaySeconds"]; ok {
				t.Errorf("livenessProbe.initialDelaySeconds = %v: the startup probe covers the start", d)
			}
			period, _ := dig(c, "startupProbe", "periodSeconds").(int64)
			failures, _ := dig(c, "startupProbe", "failureThreshold").(int64)
			if period*failures < 60 {
				t.Errorf("startupProbe allows %ds, want at least a minute for the BPF load", period*failures)
			}

			ds := r.one(t, "DaemonSet")
			if got, _, _ := unstructured.NestedMap(ds.Object, "spec", "updateStrategy"); !reflect.DeepEqual(got, map[string]any{
				"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxUnavailable": int64(1)},
			}) {
				t.Errorf("updateStrategy %v", got)
			}
			if sa := r.podSpec(t)["serviceAccountName"]; sa != "vigil" || r.one(t, "ServiceAccount").GetName() != "vigil" {
				t.Errorf("pods run as %v; want the chart's ServiceAccount vigil", sa)
			}
			if w := writeVerbs(r.objs); len(w) > 0 {
				t.Errorf("the defaults grant writes: %v", w)
			}
			checkServiceSelectsPods(t, r.objs)
			if n := len(r.all("ServiceMonitor")) + len(r.all("PodMonitor")) + len(r.all("PrometheusRule")); n > 0 {
				t.Errorf("%d ServiceMonitor/PodMonitor/PrometheusRule objects, want none by default", n)
			}
			var crds []string
			for _, o := range r.all("CustomResourceDefinition") {
				crds = append(crds, o.obj.GetName())
				if o.obj.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
					t.Errorf("CRD %s is not annotated helm.sh/resource-policy: keep: uninstalling would delete every policy", o.obj.GetName())
				}
			}
			if slices.Sort(crds); !slices.Equal(crds, []string{"tracingpolicies.cilium.io", "tracingpoliciesnamespaced.cilium.io"}) {
				t.Errorf("CRDs %v", crds)
			}
			if n := len(r.all("Namespace")); n > 0 {
				t.Errorf("%d Namespace objects: helm install --create-namespace would fail", n)
			}
		},
	}, {
		name: "image.digest wins over image.tag",
		set:  []string{"image.tag=dev", "image.digest=" + testDigest},
		check: func(t *testing.T, r *chartRender) {
			if got, want := r.container(t)["image"], "ghcr.io/vigilsec/otelcol-vigil@"+testDigest; got != want {
				t.Errorf("image %v, want %s", got, want)
			}
		},
	}, {
		name: "image.repository, tag, pullPolicy, imagePullSecrets",
		set:  []string{"image.repository=registry.example/sec/vigil", "image.tag=dev", "image.pullPolicy=Always", "imagePullSecrets[0].name=regcred"},
		check: func(t *testing.T, r *chartRender) {
			c := r.container(t)
			if c["image"] != "registry.example/sec/vigil:dev" || c["imagePullPolicy"] != "Always" {
				t.Errorf("image %v, pull policy %v", c["image"], c["imagePullPolicy"])
			}
			if got := r.podSpec(t)["imagePullSecrets"]; !reflect.DeepEqual(got, []any{map[string]any{"name": "regcred"}}) {
				t.Errorf("imagePullSecrets %v", got)
			}
		},
	}, {
		name: "extraEnvs, extraVolumes, extraVolumeMounts, extraArgs",
		values: `
extraEnvs:
  - name: OTLP_TOKEN
    valueFrom:
      secretKeyRef: {name: otlp, key: token}
  - name: VIGIL_TEAM
    value: sec
extraVolumes:
  - name: certs
    secret: {secretName: otlp-client-certs}
extraVolumeMounts:
  - name: certs
    mountPath: /etc/vigil/certs
    readOnly: true
extraArgs:
  - --feature-gates=-pdata.useProtoPooling
  - --set=processors::batch::timeout=1s
`,
		check: func(t *testing.T, r *chartRender) {
			c := r.container(t)
			if args, want := stringList(c["args"]), []string{"--config", "/etc/vigil/config.yaml",
				"--feature-gates=-pdata.useProtoPooling", "--set=processors::batch::timeout=1s"}; !slices.Equal(args, want) {
				t.Errorf("args %v, want %v", args, want)
			}
			env := r.env(t)
			for _, name := range []string{"K8S_NODE_NAME", "POD_IP", "GOMEMLIMIT", "OTLP_TOKEN", "VIGIL_TEAM"} {
				if env[name] == nil {
					t.Errorf("no %s in the container's environment", name)
				}
			}
			if env["VIGIL_TEAM"]["value"] != "sec" || dig(env["OTLP_TOKEN"], "valueFrom", "secretKeyRef", "key") != "token" {
				t.Errorf("extraEnvs rendered as %v and %v", env["VIGIL_TEAM"], env["OTLP_TOKEN"])
			}
			var volumes []string
			for _, v := range r.podSpec(t)["volumes"].([]any) {
				volumes = append(volumes, v.(map[string]any)["name"].(string))
			}
			mounts := map[string]string{}
			for _, m := range c["volumeMounts"].([]any) {
				m := m.(map[string]any)
				mounts[m["mountPath"].(string)] = m["name"].(string)
			}
			if !slices.Contains(volumes, "certs") || mounts["/etc/vigil/certs"] != "certs" {
				t.Errorf("volumes %v, mounts %v: want certs at /etc/vigil/certs", volumes, mounts)
			}
			for _, path := range []string{"/etc/vigil/config.yaml", "/etc/vigil/policies", "/sys/fs/bpf", "/var/run/vigil", "/procRoot"} {
				if mounts[path] == "" {
					t.Errorf("extraVolumeMounts replaced the chart's mount at %s", path)
				}
			}
		},
	}}

	// GOMEMLIMIT: 80% of the memory limit, whatever its unit.
	for _, q := range []string{"512Mi", "2G", "1.5Gi", "700M", "3000000000", "4Gi"} {
		// A limit in bytes is written as a YAML number, as users do.
		memory := strconv.Quote(q)
		if _, err := strconv.Atoi(q); err == nil {
			memory = q
		}
		cases = append(cases, chartCase{
			name:   "GOMEMLIMIT for a limit of " + q,
			values: "resources:\n  limits:\n    memory: " + memory + "\n",
			check: func(t *testing.T, r *chartRender) {
				if got, want := r.env(t)["GOMEMLIMIT"]["value"], wantGOMEMLIMIT(t, q); got != want {
					t.Errorf("GOMEMLIMIT = %v, want %s", got, want)
				}
			},
		})
	}
	wantNoGOMEMLIMIT := func(t *testing.T, r *chartRender) {
		if e, ok := r.env(t)["GOMEMLIMIT"]; ok {
			t.Errorf("GOMEMLIMIT set: %v", e)
		}
	}
	cases = append(cases, chartCase{
		name:  "useGOMEMLIMIT=false",
		set:   []string{"useGOMEMLIMIT=false"},
		check: wantNoGOMEMLIMIT,
	}, chartCase{
		name: "no memory limit, no GOMEMLIMIT",
		set:  []string{"resources.limits=null"},
		check: func(t *testing.T, r *chartRender) {
			wantNoGOMEMLIMIT(t, r)
			if l, ok := dig(r.container(t), "resources").(map[string]any)["limits"]; ok {
				t.Errorf("resources.limits = %v", l)
			}
		},
	}, chartCase{
		name: "config merges over the default",
		values: `
config:
  processors:
    batch:
      timeout: 1s
    k8s_workload:
      extract: null
    memory_limiter:
      limit_percentage: 70
  exporters:
    debug:
      verbosity: basic
  service:
    pipelines:
      logs/debug:
        receivers: [ebpf]
        processors: [batch]
        exporters: [debug]
`,
		check: func(t *testing.T, r *chartRender) {
			cfg := r.config(t)
			checkMemoryLimiterFirst(t, cfg)
			want := map[string]any{
				"processors::batch::timeout":                         "1s",
				"processors::k8s_workload::k8s_metadata":             "k8s_metadata",
				"processors::memory_limiter::limit_percentage":       float64(70),
				"processors::memory_limiter::check_interval":         "1s",
				"processors::memory_limiter::spike_limit_percentage": float64(25),
				"exporters::debug::verbosity":                        "basic",
				"exporters::compact::output":                         "stdout",
				"exporters::prometheus::endpoint":                    "${env:POD_IP}:9464",
				"service::pipelines::logs/debug::processors":         []any{"memory_limiter", "batch"},
				"service::pipelines::logs::processors":               []any{"memory_limiter", "k8s_workload", "batch"},
				"service::pipelines::logs::exporters":                []any{"compact", "event_stream"},
			}
			for path, w := range want {
				if got := dig(cfg, strings.Split(path, "::")...); !reflect.DeepEqual(got, w) {
					t.Errorf("%s = %#v, want %#v", path, got, w)
				}
			}
			if v, ok := dig(cfg, "processors", "k8s_workload").(map[string]any)["extract"]; ok {
				t.Errorf("processors.k8s_workload.extract = %v, want it deleted by null", v)
			}
		},
	}, chartCase{
		name: "config null removes a pipeline and the exporter it used",
		values: `
config:
  exporters:
    prometheus: null
  service:
    pipelines:
      metrics: null
`,
		check: func(t *testing.T, r *chartRender) {
			cfg := r.config(t)
			if _, ok := dig(cfg, "exporters").(map[string]any)["prometheus"]; ok {
				t.Error("exporters.prometheus is still there")
			}
			if p := slices.Sorted(maps.Keys(dig(cfg, "service", "pipelines").(map[string]any))); !slices.Equal(p, []string{"logs"}) {
				t.Errorf("pipelines %v, want [logs]", p)
			}
			checkMemoryLimiterFirst(t, cfg)
		},
	}, chartCase{
		name: "config null removes memory_limiter everywhere",
		set:  []string{"config.processors.memory_limiter=null"},
		check: func(t *testing.T, r *chartRender) {
			cfg := r.config(t)
			checkNoMemoryLimiter(t, cfg)
			if got := stringList(dig(cfg, "service", "pipelines", "logs", "processors")); !slices.Equal(got, []string{"k8s_workload", "batch"}) {
				t.Errorf("logs processors %v, want [k8s_workload batch]", got)
			}
		},
	}, chartCase{
		name:   "alternateConfig replaces the configuration",
		values: "otlp:\n  endpoint: otel-collector.observability:4317\nconfig:\n  exporters:\n    debug: {}\n" + alternateConfig,
		check: func(t *testing.T, r *chartRender) {
			var values struct {
				AlternateConfig map[string]any `json:"alternateConfig"`
			}
			if err := yaml.Unmarshal([]byte(alternateConfig), &values); err != nil {
				t.Fatal(err)
			}
			if got := r.config(t); !reflect.DeepEqual(got, values.AlternateConfig) {
				t.Errorf("config:\n%v\nwant alternateConfig as it is:\n%v", got, values.AlternateConfig)
			}
		},
	}, chartCase{
		name: "serviceAccount.create=false runs as the named account",
		set:  []string{"serviceAccount.create=false", "serviceAccount.name=platform-sensors"},
		check: func(t *testing.T, r *chartRender) {
			if sas := r.all("ServiceAccount"); len(sas) > 0 {
				t.Errorf("renders %v", sas)
			}
			if sa := r.podSpec(t)["serviceAccountName"]; sa != "platform-sensors" {
				t.Errorf("pods run as %v", sa)
			}
			subjects, _, _ := unstructured.NestedSlice(r.one(t, "ClusterRoleBinding").Object, "subjects")
			if want := []any{map[string]any{"kind": "ServiceAccount", "name": "platform-sensors", "namespace": releaseNamespace}}; !reflect.DeepEqual(subjects, want) {
				t.Errorf("ClusterRoleBinding subjects %v, want %v", subjects, want)
			}
		},
	}, chartCase{
		name: "serviceAccount.name and annotations",
		values: `
serviceAccount:
  name: vigil-sensor
  annotations:
    iam.gke.io/gcp-service-account: vigil@project.iam.gserviceaccount.com
`,
		check: func(t *testing.T, r *chartRender) {
			sa := r.one(t, "ServiceAccount")
			if sa.GetName() != "vigil-sensor" || sa.GetAnnotations()["iam.gke.io/gcp-service-account"] != "vigil@project.iam.gserviceaccount.com" {
				t.Errorf("ServiceAccount %s, annotations %v", sa.GetName(), sa.GetAnnotations())
			}
			if got := r.podSpec(t)["serviceAccountName"]; got != "vigil-sensor" {
				t.Errorf("pods run as %v", got)
			}
			if got, _, _ := unstructured.NestedSlice(r.one(t, "ClusterRoleBinding").Object, "subjects"); dig(got[0], "name") != "vigil-sensor" {
				t.Errorf("ClusterRoleBinding subjects %v", got)
			}
		},
	}, chartCase{
		name: "enforcement.podVerbs grants pod writes",
		set:  []string{"enforcement.podVerbs={patch,delete}"},
		check: func(t *testing.T, r *chartRender) {
			if got := podWriteVerbs(t, r); !slices.Equal(got, []string{"delete", "patch"}) {
				t.Errorf("pod write verbs %v, want [delete patch]", got)
			}
		},
	}, chartCase{
		name: "enforcement.podVerbs patch only",
		set:  []string{"enforcement.podVerbs={patch}"},
		check: func(t *testing.T, r *chartRender) {
			if got := writeVerbs(r.objs); len(got) != 1 || !strings.Contains(got[0], "patch [pods]") {
				t.Errorf("write verbs %v, want patch on pods only", got)
			}
		},
	}, chartCase{
		name: "serviceMonitor and podMonitor",
		values: `
serviceMonitor:
  enabled: true
  interval: 30s
  extraLabels: {release: kube-prometheus-stack}
  metricsEndpoints:
    - port: metrics
      interval: 10s
    - port: telemetry
  relabelings:
    - action: replace
      sourceLabels: [__meta_kubernetes_pod_node_name]
      targetLabel: node
  metricRelabelings:
    - action: drop
      sourceLabels: [__name__]
      regex: otelcol_process_.*
podMonitor:
  enabled: true
  interval: 1m
  extraLabels: {release: kube-prometheus-stack}
`,
		check: func(t *testing.T, r *chartRender) {
			svc := r.one(t, "Service")
			sm := r.one(t, "ServiceMonitor")
			if sm.GetAPIVersion() != "monitoring.coreos.com/v1" || sm.GetNamespace() != svc.GetNamespace() {
				t.Errorf("ServiceMonitor %s in %q, Service in %q", sm.GetAPIVersion(), sm.GetNamespace(), svc.GetNamespace())
			}
			if sm.GetLabels()["release"] != "kube-prometheus-stack" {
				t.Errorf("ServiceMonitor labels %v", sm.GetLabels())
			}
			sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
			if !selects(sel, svc.GetLabels()) {
				t.Errorf("ServiceMonitor selects %v, the Service is labelled %v", sel, svc.GetLabels())
			}
			svcPorts := map[string]bool{}
			ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
			for _, p := range ports {
				svcPorts[p.(map[string]any)["name"].(string)] = true
			}
			endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			wantInterval := map[string]string{"metrics": "10s", "telemetry": "30s"}
			if len(endpoints) != 2 {
				t.Errorf("ServiceMonitor endpoints %v, want metrics and telemetry", endpoints)
			}
			for _, e := range endpoints {
				e := e.(map[string]any)
				port, _ := e["port"].(string)
				if !svcPorts[port] {
					t.Errorf("ServiceMonitor endpoint port %q is not a port of the Service", port)
				}
				if e["interval"] != wantInterval[port] {
					t.Errorf("endpoint %s interval %v, want %s", port, e["interval"], wantInterval[port])
				}
				if dig(e["relabelings"].([]any)[0], "targetLabel") != "node" || dig(e["metricRelabelings"].([]any)[0], "action") != "drop" {
					t.Errorf("endpoint %s relabelings %v, metricRelabelings %v", port, e["relabelings"], e["metricRelabelings"])
				}
			}

			pm := r.one(t, "PodMonitor")
			sel, _, _ = unstructured.NestedStringMap(pm.Object, "spec", "selector", "matchLabels")
			if !selects(sel, r.podLabels(t)) || pm.GetNamespace() != releaseNamespace {
				t.Errorf("PodMonitor in %q selects %v, the pods are labelled %v", pm.GetNamespace(), sel, r.podLabels(t))
			}
			ports2 := r.containerPorts(t)
			pmEndpoints, _, _ := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
			var names []string
			for _, e := range pmEndpoints {
				e := e.(map[string]any)
				names = append(names, e["port"].(string))
				if _, ok := ports2[e["port"].(string)]; !ok || e["interval"] != "1m" {
					t.Errorf("PodMetricsEndpoint %v: want a container port, interval 1m", e)
				}
			}
			if !slices.Equal(names, []string{"metrics", "telemetry"}) {
				t.Errorf("PodMonitor scrapes %v, want [metrics telemetry]", names)
			}
		},
	}, chartCase{
		name: "prometheusRule",
		set:  []string{"prometheusRule.enabled=true"},
		check: func(t *testing.T, r *chartRender) {
			pr := r.one(t, "PrometheusRule")
			if pr.GetAPIVersion() != "monitoring.coreos.com/v1" || pr.GetNamespace() != releaseNamespace || pr.GetName() != r.fullname() {
				t.Errorf("PrometheusRule %s %s/%s", pr.GetAPIVersion(), pr.GetNamespace(), pr.GetName())
			}
			groups, _, _ := unstructured.NestedSlice(pr.Object, "spec", "groups")
			if want := alertRuleGroups(t); !reflect.DeepEqual(groups, want) {
				t.Errorf("PrometheusRule groups differ from %s:\n got %v\nwant %v", alertRulesFile, groups, want)
			}
		},
	}, chartCase{
		name: "prometheusRule with labels and an alert left out",
		values: `
prometheusRule:
  enabled: true
  extraLabels: {release: kube-prometheus-stack}
  ruleLabels: {team: security, severity: page}
  disabled: [VigilBPFRunsSkipped]
`,
		check: func(t *testing.T, r *chartRender) {
			pr := r.one(t, "PrometheusRule")
			if pr.GetLabels()["release"] != "kube-prometheus-stack" || pr.GetLabels()["app.kubernetes.io/name"] != "vigil" {
				t.Errorf("PrometheusRule labels %v", pr.GetLabels())
			}
			// Every alert of the file but the one left out, each with the
			// team label and its own severity.
			want := alertRuleGroups(t)
			for _, g := range want {
				g := g.(map[string]any)
				var rules []any
				for _, rule := range g["rules"].([]any) {
					rule := rule.(map[string]any)
					if rule["alert"] == "VigilBPFRunsSkipped" {
						continue
					}
					rule["labels"].(map[string]any)["team"] = "security"
					rules = append(rules, rule)
				}
				g["rules"] = rules
			}
			groups, _, _ := unstructured.NestedSlice(pr.Object, "spec", "groups")
			if !reflect.DeepEqual(groups, want) {
				t.Errorf("PrometheusRule groups:\n got %v\nwant %v", groups, want)
			}
		},
	}, chartCase{
		name: "pod labels, annotations, security contexts, probes, update strategy",
		values: `
podLabels:
  team: security
  app.kubernetes.io/name: not-the-selector
podAnnotations:
  example.com/owner: security
podSecurityContext:
  runAsUser: 0
securityContext:
  readOnlyRootFilesystem: false
updateStrategy:
  rollingUpdate:
    maxUnavailable: 10%
startupProbe:
  failureThreshold: 120
livenessProbe:
  periodSeconds: 30
readinessProbe: null
priorityClassName: ""
nodeSelector:
  kubernetes.io/os: linux
tolerations: []
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: vigil.example.com/skip, operator: DoesNotExist}
`,
		check: func(t *testing.T, r *chartRender) {
			labels := r.podLabels(t)
			if labels["team"] != "security" {
				t.Errorf("pod labels %v, want team=security", labels)
			}
			sel, _, _ := unstructured.NestedStringMap(r.one(t, "DaemonSet").Object, "spec", "selector", "matchLabels")
			if !selects(sel, labels) {
				t.Errorf("podLabels broke the DaemonSet's selector %v: pods labelled %v", sel, labels)
			}
			checkServiceSelectsPods(t, r.objs)
			ann, _, _ := unstructured.NestedStringMap(r.one(t, "DaemonSet").Object, "spec", "template", "metadata", "annotations")
			if ann["example.com/owner"] != "security" || ann["checksum/config"] == "" {
				t.Errorf("pod annotations %v", ann)
			}
			spec := r.podSpec(t)
			if got := spec["securityContext"]; !reflect.DeepEqual(got, map[string]any{"runAsUser": int64(0)}) {
				t.Errorf("pod securityContext %v", got)
			}
			c := r.container(t)
			sc := c["securityContext"].(map[string]any)
			if sc["readOnlyRootFilesystem"] != false || !slices.Equal(stringList(dig(sc, "capabilities", "add")), wantCapabilities) {
				t.Errorf("securityContext %v: want readOnlyRootFilesystem false, merged over the default capabilities", sc)
			}
			if got := dig(spec, "hostPID"); got != true {
				t.Errorf("hostPID %v", got)
			}
			if _, ok := c["readinessProbe"]; ok {
				t.Errorf("readinessProbe %v, want none", c["readinessProbe"])
			}
			if dig(c, "startupProbe", "failureThreshold") != int64(120) || dig(c, "startupProbe", "httpGet", "port") != "health" {
				t.Errorf("startupProbe %v", c["startupProbe"])
			}
			if dig(c, "livenessProbe", "periodSeconds") != int64(30) || dig(c, "livenessProbe", "httpGet", "port") != "health" {
				t.Errorf("livenessProbe %v", c["livenessProbe"])
			}
			if got, _, _ := unstructured.NestedMap(r.one(t, "DaemonSet").Object, "spec", "updateStrategy"); !reflect.DeepEqual(got, map[string]any{
				"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxUnavailable": "10%"},
			}) {
				t.Errorf("updateStrategy %v", got)
			}
			if _, ok := spec["priorityClassName"]; ok {
				t.Errorf("priorityClassName %v, want none", spec["priorityClassName"])
			}
			if _, ok := spec["tolerations"]; ok {
				t.Errorf("tolerations %v, want none", spec["tolerations"])
			}
			if dig(spec, "nodeSelector", "kubernetes.io/os") != "linux" || dig(spec, "affinity", "nodeAffinity") == nil {
				t.Errorf("nodeSelector %v, affinity %v", spec["nodeSelector"], spec["affinity"])
			}
		},
	}, chartCase{
		name: "crds.install=false",
		set:  []string{"crds.install=false"},
		check: func(t *testing.T, r *chartRender) {
			if crds := r.all("CustomResourceDefinition"); len(crds) > 0 {
				t.Errorf("renders %v", crds)
			}
		},
	}, chartCase{
		name: "service.enabled=false",
		set:  []string{"service.enabled=false", "podMonitor.enabled=true"},
		check: func(t *testing.T, r *chartRender) {
			if s := r.all("Service"); len(s) > 0 {
				t.Errorf("renders %v", s)
			}
			r.one(t, "PodMonitor")
		},
	}, chartCase{
		name: "otlp",
		set:  []string{"otlp.endpoint=otel-collector.observability:4317", "otlp.insecure=true", "otlp.headers.x-tenant=sec"},
		check: func(t *testing.T, r *chartRender) {
			cfg := r.config(t)
			otlp, _ := dig(cfg, "exporters", "otlp_grpc").(map[string]any)
			if otlp["endpoint"] != "otel-collector.observability:4317" || dig(otlp, "tls", "insecure") != true || dig(otlp, "headers", "x-tenant") != "sec" {
				t.Errorf("exporters.otlp_grpc = %v", otlp)
			}
			for _, p := range []string{"logs", "metrics"} {
				if exp := stringList(dig(cfg, "service", "pipelines", p, "exporters")); !slices.Contains(exp, "otlp_grpc") {
					t.Errorf("pipeline %s exports to %v, want otlp_grpc among them", p, exp)
				}
			}
			checkMemoryLimiterFirst(t, cfg)
		},
	}, chartCase{
		name: "namespace.create",
		set:  []string{"namespace.create=true"},
		check: func(t *testing.T, r *chartRender) {
			ns := r.one(t, "Namespace")
			if ns.GetName() != releaseNamespace || ns.GetLabels()["pod-security.kubernetes.io/enforce"] != "privileged" {
				t.Errorf("Namespace %s, labels %v", ns.GetName(), ns.GetLabels())
			}
		},
	}, chartCase{
		name:    "a release not named vigil",
		release: "sensors",
		set:     []string{"serviceMonitor.enabled=true"},
		check: func(t *testing.T, r *chartRender) {
			for _, o := range r.objs {
				if o.obj.GetKind() == "CustomResourceDefinition" {
					continue
				}
				if !strings.HasPrefix(o.obj.GetName(), "sensors-vigil") {
					t.Errorf("%s is not named after the release", o)
				}
			}
			checkServiceSelectsPods(t, r.objs)
			sel, _, _ := unstructured.NestedStringMap(r.one(t, "ServiceMonitor").Object, "spec", "selector", "matchLabels")
			if sel["app.kubernetes.io/instance"] != "sensors" || !selects(sel, r.one(t, "Service").GetLabels()) {
				t.Errorf("ServiceMonitor selects %v", sel)
			}
			if sa := r.podSpec(t)["serviceAccountName"]; sa != "sensors-vigil" {
				t.Errorf("pods run as %v", sa)
			}
		},
	})

	knobs, err := os.ReadFile(knobsFile)
	cases = append(cases, chartCase{
		name:   "testdata/chart/knobs.yaml",
		values: string(knobs),
		check: func(t *testing.T, r *chartRender) {
			if err != nil {
				t.Fatal(err)
			}
			cfg := r.config(t)
			checkMemoryLimiterFirst(t, cfg)
			if _, ok := dig(cfg, "processors").(map[string]any)["enforcement"]; !ok {
				t.Error("no enforcement processor")
			}
			if got := podWriteVerbs(t, r); !slices.Equal(got, []string{"delete", "patch"}) {
				t.Errorf("pod write verbs %v", got)
			}
			if got, want := r.env(t)["GOMEMLIMIT"]["value"], wantGOMEMLIMIT(t, "2Gi"); got != want {
				t.Errorf("GOMEMLIMIT %v, want %s", got, want)
			}
		},
	})
	return cases
}

// knobsFile sets most values at once, for helm lint and as one more case.
const knobsFile = "testdata/chart/knobs.yaml"

// alertRulesFile is the Prometheus rule file the chart's PrometheusRule
// carries, through its link in distribution/alerts (a user's path to it).
const alertRulesFile = "alerts/vigil.rules.yaml"

// alertRuleGroups returns the groups of alertRulesFile, decoded as the
// rendered objects are (decodeObjects, as if the file were an object).
func alertRuleGroups(t *testing.T) []any {
	t.Helper()
	data, err := os.ReadFile(alertRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeObjects(t, append([]byte("apiVersion: test/v1\nkind: RuleFile\n"), data...), alertRulesFile)
	groups, _, _ := unstructured.NestedSlice(objs[0].obj.Object, "groups")
	if len(groups) == 0 {
		t.Fatalf("%s holds no groups", alertRulesFile)
	}
	return groups
}

const alternateConfig = `
alternateConfig:
  receivers:
    ebpf:
      policies: [/etc/vigil/policies]
      process:
        procfs: /procRoot
  exporters:
    compact:
      output: stdout
      color: never
  extensions:
    health_check:
      endpoint: ${env:POD_IP}:13133
  service:
    extensions: [health_check]
    pipelines:
      logs:
        receivers: [ebpf]
        exporters: [compact]
`

// TestChartValues renders every chartCase and checks what it must hold.
func TestChartValues(t *testing.T) {
	for _, c := range chartCases() {
		t.Run(c.name, func(t *testing.T) {
			c.check(t, renderChart(t, c))
		})
	}
}

// TestChartLint: helm lint --strict, with the defaults and with most knobs
// set.
func TestChartLint(t *testing.T) {
	runHelm(t, "lint", "--strict", chartDir)
	runHelm(t, "lint", "--strict", chartDir, "--values", knobsFile)
}

// TestChartSchemaRefusesBadValues: values.schema.json turns a typo or a
// wrong type into a failed install that names the key, and the templates
// refuse what the schema cannot see.
func TestChartSchemaRefusesBadValues(t *testing.T) {
	for _, c := range []struct {
		name   string
		values string
		set    []string
		want   []string // in helm's error
	}{
		{name: "misspelled top-level key", set: []string{"podAnotations.a=b"}, want: []string{"podAnotations"}},
		{name: "misspelled key in image", set: []string{"image.digst=" + testDigest}, want: []string{"/image", "digst"}},
		{name: "unknown key in serviceMonitor", set: []string{"serviceMonitor.enable=true"}, want: []string{"/serviceMonitor", "enable"}},
		{name: "unknown key in podMonitor", values: "podMonitor:\n  labels: {a: b}\n", want: []string{"/podMonitor", "labels"}},
		{name: "misspelled key in serviceAccount", set: []string{"serviceAccount.nmae=x"}, want: []string{"/serviceAccount", "nmae"}},
		{name: "misspelled key in crds", set: []string{"crds.instal=false"}, want: []string{"/crds", "instal"}},
		{name: "boolean as a string", values: "useGOMEMLIMIT: \"yes\"\n", want: []string{"/useGOMEMLIMIT", "boolean"}},
		{name: "number as a string", set: []string{"otlp.endpoint=4317"}, want: []string{"/otlp/endpoint", "string"}},
		{name: "object for a list", values: "extraEnvs:\n  FOO: bar\n", want: []string{"/extraEnvs", "array"}},
		{name: "env var without a name", values: "extraEnvs:\n  - value: bar\n", want: []string{"/extraEnvs/0", "name"}},
		{name: "mount without a path", values: "extraVolumeMounts:\n  - name: x\n", want: []string{"/extraVolumeMounts/0", "mountPath"}},
		{name: "argument not a string", set: []string{"extraArgs={1}"}, want: []string{"/extraArgs/0", "string"}},
		{name: "unknown pull policy", set: []string{"image.pullPolicy=Sometimes"}, want: []string{"/image/pullPolicy"}},
		{name: "malformed digest", set: []string{"image.digest=abc"}, want: []string{"/image/digest"}},
		{name: "enforcement verb beyond patch and delete", set: []string{"enforcement.podVerbs={create}"}, want: []string{"/enforcement/podVerbs/0"}},
		{name: "policy file the receiver would not load", set: []string{`policies.extra\.json=x`}, want: []string{"extra.json", "ya?ml"}},
		{name: "label value not a string", set: []string{"podLabels.tier=1"}, want: []string{"/podLabels/tier", "string"}},
		{name: "malformed interval", set: []string{"podMonitor.interval=thirty"}, want: []string{"/podMonitor/interval"}},
		{name: "tolerations not a list", set: []string{"tolerations=none"}, want: []string{"/tolerations"}},
		{name: "config not a map", set: []string{"config=x"}, want: []string{"/config"}},
		{name: "memory limit GOMEMLIMIT cannot read", set: []string{"resources.limits.memory=1e9"}, want: []string{"resources.limits.memory", "1e9"}},
		{name: "serviceMonitor without the Service", set: []string{"serviceMonitor.enabled=true", "service.enabled=false"}, want: []string{"service.enabled"}},
		{name: "unknown key in prometheusRule", set: []string{"prometheusRule.labels.a=b"}, want: []string{"/prometheusRule", "labels"}},
		{name: "rule label value not a string", set: []string{"prometheusRule.ruleLabels.tier=1"}, want: []string{"/prometheusRule/ruleLabels/tier", "string"}},
		{name: "disabling an alert that does not exist", set: []string{"prometheusRule.enabled=true", "prometheusRule.disabled={VigilEventLost}"}, want: []string{"prometheusRule.disabled", `"VigilEventLost"`, "VigilEventsLost"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, err := helm(t, templateArgs(t, releaseName, c.values, c.set)...)
			if err == nil {
				t.Fatalf("helm template succeeded:\n%.500s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("helm's error does not name %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// podEnvironment is the environment the kubelet would give the container:
// literal values as they are, downward API fields with the values of a
// made-up pod, anything else (secrets, config maps) a placeholder.
func podEnvironment(t *testing.T, r *chartRender) []string {
	t.Helper()
	fields := map[string]string{"spec.nodeName": "vigil-test-node", "status.podIP": "10.0.0.7"}
	var env []string
	for name, e := range r.env(t) {
		switch {
		case e["value"] != nil:
			env = append(env, name+"="+e["value"].(string))
		case dig(e, "valueFrom", "fieldRef") != nil:
			path, _ := dig(e, "valueFrom", "fieldRef", "fieldPath").(string)
			v, ok := fields[path]
			if !ok {
				t.Fatalf("%s comes from %s, which the test does not know", name, path)
			}
			env = append(env, name+"="+v)
		default:
			env = append(env, name+"=placeholder")
		}
	}
	return env
}

// validateConfig runs `otelcol-vigil validate` on cfg, with the
// container's arguments after the config (extraArgs) and environment
// (GOMEMLIMIT too: the Go runtime refuses a malformed one at start).
func validateConfig(t *testing.T, bin, cfg string, args, env []string) error {
	t.Helper()
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"validate", "--config", file}, args...)...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

// TestChartCollectorConfigsValidate hands every collector configuration
// the chart renders to the real collector.
func TestChartCollectorConfigsValidate(t *testing.T) {
	bin := testenv.CollectorBinaryFile(t, collectorBinaryPath)

	t.Run("a broken configuration is refused", func(t *testing.T) {
		// The check below catches something: a typo inside config,
		// which the schema leaves free-form, passes helm and fails here.
		r := renderChart(t, chartCase{name: "typo", set: []string{"config.processors.memory_limiter.limit_percentag=70"}})
		raw, _, _ := unstructured.NestedString(findObject(t, r.objs, "ConfigMap", r.fullname()+"-config").obj.Object, "data", "config.yaml")
		err := validateConfig(t, bin, raw, nil, podEnvironment(t, r))
		if err == nil || !strings.Contains(err.Error(), "limit_percentag") {
			t.Errorf("otelcol-vigil validate: %v, want a refusal naming limit_percentag", err)
		}
	})

	for _, c := range chartCases() {
		t.Run(c.name, func(t *testing.T) {
			r := renderChart(t, c)
			raw, _, _ := unstructured.NestedString(findObject(t, r.objs, "ConfigMap", r.fullname()+"-config").obj.Object, "data", "config.yaml")
			env := podEnvironment(t, r)
			set := map[string]bool{}
			for _, e := range env {
				set[e[:strings.Index(e, "=")]] = true
			}
			for _, m := range envRef.FindAllStringSubmatch(stripComments(raw), -1) {
				if !set[m[1]] {
					t.Errorf("the configuration reads ${env:%s}, which the container does not set", m[1])
				}
			}
			args := stringList(r.container(t)["args"])
			if len(args) < 2 || args[0] != "--config" || args[1] != "/etc/vigil/config.yaml" {
				t.Fatalf("args %v do not start with --config /etc/vigil/config.yaml", args)
			}
			if err := validateConfig(t, bin, raw, args[2:], env); err != nil {
				t.Errorf("otelcol-vigil validate: %v\nconfig:\n%s", err, raw)
			}
		})
	}
}

// prometheusOperatorCRDs returns prometheus-operator's ServiceMonitor,
// PodMonitor and PrometheusRule CustomResourceDefinitions: from the directory
// PROMETHEUS_OPERATOR_CRDS names, else from the module zip of
// promOperatorModule@promOperatorVersion in the Go module cache (`go mod
// download` fetches it from the module proxy once; see
// testdata/chart/fetch-prometheus-operator-crds.sh).
func prometheusOperatorCRDs(t *testing.T) ([]kubeObject, error) {
	t.Helper()
	dir := os.Getenv("PROMETHEUS_OPERATOR_CRDS")
	if dir == "" {
		gobin, err := exec.LookPath("go")
		if err != nil {
			return nil, err
		}
		// Outside this module, so go.mod and go.sum stay as they are.
		cmd := exec.Command(gobin, "mod", "download", "-json", promOperatorModule+"@"+promOperatorVersion)
		cmd.Dir = t.TempDir()
		out, err := cmd.Output()
		var mod struct{ Dir, Error string }
		if jerr := json.Unmarshal(out, &mod); jerr != nil || mod.Error != "" || mod.Dir == "" {
			return nil, fmt.Errorf("go mod download %s@%s: %v %s", promOperatorModule, promOperatorVersion, err, mod.Error)
		}
		dir = filepath.Join(mod.Dir, "example", "prometheus-operator-crd")
	}
	var objs []kubeObject
	for _, f := range []string{"monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_podmonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		objs = append(objs, decodeObjects(t, data, f)...)
	}
	return objs, nil
}

// TestChartCRDsNeverReplaceTetragons: where Tetragon already installed
// tracingpolicies.cilium.io, helm install succeeds, leaves that definition
// exactly as it was and installs only the missing one; an upgrade and a
// second release change nothing of either; uninstalling keeps both
// definitions and the policies.
func TestChartCRDsNeverReplaceTetragons(t *testing.T) {
	c := startKubeCluster(t)
	kubeconfig := c.kube.Kubeconfig(t, t.TempDir())
	crds := c.client.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	const tetragonCRD, vigilCRD = "tracingpolicies.cilium.io", "tracingpoliciesnamespaced.cilium.io"

	// Tetragon's definition, as its operator would create it: its own
	// labels and annotations, its own schema.
	tetragon := findObject(t, manifestObjects(t), "CustomResourceDefinition", tetragonCRD).obj.DeepCopy()
	tetragon.SetLabels(map[string]string{"app.kubernetes.io/part-of": "tetragon"})
	tetragon.SetAnnotations(map[string]string{"controller-gen.kubebuilder.io/version": "v0.19.0"})
	versions := mustSlice(t, tetragon, "spec", "versions")
	if err := unstructured.SetNestedField(versions[0].(map[string]any), "Tetragon's own schema", "schema", "openAPIV3Schema", "description"); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedSlice(tetragon.Object, versions, "spec", "versions"); err != nil {
		t.Fatal(err)
	}
	if _, err := crds.Create(t.Context(), tetragon, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The apiserver writes the status (Established) after the create:
	// compare with the definition as it is from then on.
	var before *unstructured.Unstructured
	deadline := time.Now().Add(30 * time.Second)
	for before == nil {
		u, err := crds.Get(t.Context(), tetragonCRD, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, cond := range conds {
			if cond := cond.(map[string]any); cond["type"] == "Established" && cond["status"] == "True" {
				before = u
			}
		}
		if before == nil && time.Now().After(deadline) {
			t.Fatalf("%s not established after 30s", tetragonCRD)
		}
		time.Sleep(100 * time.Millisecond)
	}
	untouched := func(t *testing.T, when string) {
		t.Helper()
		after, err := crds.Get(t.Context(), tetragonCRD, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if after.GetResourceVersion() != before.GetResourceVersion() || !reflect.DeepEqual(after.GetLabels(), before.GetLabels()) ||
			!reflect.DeepEqual(after.GetAnnotations(), before.GetAnnotations()) || !reflect.DeepEqual(after.Object["spec"], before.Object["spec"]) {
			t.Errorf("%s: Tetragon's %s changed: resourceVersion %s -> %s, labels %v, annotations %v",
				when, tetragonCRD, before.GetResourceVersion(), after.GetResourceVersion(), after.GetLabels(), after.GetAnnotations())
		}
	}
	releaseCRDs := func(t *testing.T, release, ns string) []string {
		t.Helper()
		var names []string
		for _, o := range decodeObjects(t, runHelm(t, "get", "manifest", release, "--namespace", ns, "--kubeconfig", kubeconfig), "helm get manifest "+release) {
			if o.obj.GetKind() == "CustomResourceDefinition" {
				names = append(names, o.obj.GetName())
			}
		}
		return names
	}
	helmIn := func(ns string, args ...string) []string {
		return append(args, "--namespace", ns, "--kubeconfig", kubeconfig)
	}

	runHelm(t, helmIn(releaseNamespace, "install", releaseName, chartDir, "--create-namespace")...)
	untouched(t, "after helm install")
	if got := releaseCRDs(t, releaseName, releaseNamespace); !slices.Equal(got, []string{vigilCRD}) {
		t.Errorf("release %s holds CRDs %v, want only %s", releaseName, got, vigilCRD)
	}
	ours, err := crds.Get(t.Context(), vigilCRD, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("helm install did not install the missing %s: %v", vigilCRD, err)
	}
	if ours.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
		t.Errorf("%s annotations %v, want helm.sh/resource-policy: keep", vigilCRD, ours.GetAnnotations())
	}

	runHelm(t, helmIn(releaseNamespace, "upgrade", releaseName, chartDir, "--set", "otlp.endpoint=otel-collector.observability:4317")...)
	untouched(t, "after helm upgrade")
	if got := releaseCRDs(t, releaseName, releaseNamespace); !slices.Equal(got, []string{vigilCRD}) {
		t.Errorf("after the upgrade release %s holds CRDs %v, want still %s", releaseName, got, vigilCRD)
	}

	// Another release finds both definitions installed by others.
	otherRelease := func(release, ns string) {
		t.Helper()
		runHelm(t, helmIn(ns, "install", release, chartDir, "--create-namespace")...)
		untouched(t, "after release "+ns+"/"+release)
		if got := releaseCRDs(t, release, ns); len(got) > 0 {
			t.Errorf("release %s/%s holds CRDs %v, want none", ns, release, got)
		}
	}
	otherRelease("vigil-two", releaseNamespace)

	// A policy, then the first release goes: the definitions and the
	// policy stay.
	policy := decodeObjects(t, []byte(`
apiVersion: cilium.io/v1alpha1
kind: TracingPolicyNamespaced
metadata: {name: survives, namespace: default}
spec:
  kprobes: [{call: sys_openat, syscall: true}]
`), "inline")[0]
	deadline = time.Now().Add(30 * time.Second)
	for {
		c.refreshMapper(t)
		err := c.apply(t, policy, false)
		if err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("apply %s: %v", policy, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	runHelm(t, helmIn(releaseNamespace, "uninstall", releaseName)...)
	untouched(t, "after helm uninstall")
	if _, err := crds.Get(t.Context(), vigilCRD, metav1.GetOptions{}); err != nil {
		t.Errorf("after helm uninstall: %v", err)
	}
	tpn := schema.GroupVersionResource{Group: "cilium.io", Version: "v1alpha1", Resource: "tracingpoliciesnamespaced"}
	if _, err := c.client.Resource(tpn).Namespace("default").Get(t.Context(), "survives", metav1.GetOptions{}); err != nil {
		t.Errorf("the policy did not survive helm uninstall: %v", err)
	}

	// The kept definition still names release vigil of namespace vigil:
	// a release of that name in another namespace leaves it alone too.
	otherRelease(releaseName, "vigil-two")
}
