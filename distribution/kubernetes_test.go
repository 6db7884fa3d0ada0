package distribution_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// The manifests (`kubectl apply -k distribution/kubernetes`) and the Helm
// chart, checked against a real kube-apiserver: every object passes a
// server-side apply, and the chart renders what the manifests hold.

const (
	manifestsDir = "kubernetes"
	chartDir     = "helm/vigil"
	// What the tests render the chart as, and what the manifests are.
	releaseName      = "vigil"
	releaseNamespace = "vigil"
	fieldManager     = "vigil-test"
)

// kubeObject is one object of a manifest file or of the chart's output.
type kubeObject struct {
	source string // file, or "helm template"
	obj    *unstructured.Unstructured
}

// kubeKey identifies an object the way the apiserver does.
type kubeKey struct{ APIVersion, Kind, Namespace, Name string }

func (o kubeObject) key() kubeKey {
	return kubeKey{o.obj.GetAPIVersion(), o.obj.GetKind(), o.obj.GetNamespace(), o.obj.GetName()}
}

func (o kubeObject) String() string {
	k := o.key()
	if k.Namespace != "" {
		return fmt.Sprintf("%s %s/%s (%s)", k.Kind, k.Namespace, k.Name, o.source)
	}
	return fmt.Sprintf("%s %s (%s)", k.Kind, k.Name, o.source)
}

// decodeObjects splits a multi-document YAML stream into objects; empty
// documents (comments only) are skipped.
func decodeObjects(t *testing.T, data []byte, source string) []kubeObject {
	t.Helper()
	var objs []kubeObject
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		if s := string(bytes.TrimSpace(js)); s == "null" || s == "{}" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			t.Fatalf("%s: %v\n%s", source, err, doc)
		}
		objs = append(objs, kubeObject{source: source, obj: u})
	}
}

// kustomization is the subset of kustomization.yaml the tests understand;
// the strict decode refuses any other field (a patch or a namespace
// transformer would make `kubectl apply -k` differ from the files).
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

func readKustomization(t *testing.T) kustomization {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(manifestsDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v (the tests apply the resources as they are; teach them any new field)", err)
	}
	return k
}

// manifestObjects returns the objects `kubectl apply -k` applies.
func manifestObjects(t *testing.T) []kubeObject {
	t.Helper()
	var objs []kubeObject
	for _, res := range readKustomization(t).Resources {
		data, err := os.ReadFile(filepath.Join(manifestsDir, res))
		if err != nil {
			t.Fatalf("kustomization.yaml resource %s: %v", res, err)
		}
		objs = append(objs, decodeObjects(t, data, filepath.Join(manifestsDir, res))...)
	}
	if len(objs) == 0 {
		t.Fatal("the kustomization holds no objects")
	}
	return objs
}

// helmBinary returns the helm that scripts/install-deps.sh k8s installs.
func helmBinary(t *testing.T) string {
	t.Helper()
	helm := filepath.Join(testenv.KubeAssets(), "helm")
	if _, err := os.Stat(helm); err != nil {
		testenv.Unavailable(t, "helm is missing from %s: run `scripts/install-deps.sh k8s`", testenv.KubeAssets())
	}
	return helm
}

// helm runs helm with its own config, cache and data directories, so the
// test neither reads nor writes the user's, and returns its stdout and
// stderr; err is its exit status.
func helm(t *testing.T, args ...string) (stdout []byte, stderr string, err error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	out, err := cmd.Output()
	return out, errBuf.String(), err
}

// runHelm runs helm and fails the test if helm fails.
func runHelm(t *testing.T, args ...string) []byte {
	t.Helper()
	out, stderr, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// chartObjects renders the chart as `helm template` would for release vigil
// in namespace vigil, CRDs included.
func chartObjects(t *testing.T, set ...string) []kubeObject {
	t.Helper()
	return decodeObjects(t, runHelm(t, templateArgs(t, releaseName, "", set)...), strings.Join(append([]string{"helm template"}, set...), " "))
}

// templateArgs are the arguments of `helm template` for release in
// namespace vigil, with values (a values file's content, when not empty)
// and --set flags.
func templateArgs(t *testing.T, release, values string, set []string) []string {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", releaseNamespace}
	if values != "" {
		// Not in t.TempDir(): helm splits --values at commas, which test
		// names hold.
		f, err := os.CreateTemp("", "vigil-values-*.yaml")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(f.Name()) })
		if _, err := f.WriteString(values); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--values", f.Name())
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return args
}

func findObject(t *testing.T, objs []kubeObject, kind, name string) kubeObject {
	t.Helper()
	for _, o := range objs {
		if o.obj.GetKind() == kind && o.obj.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s among the objects", kind, name)
	return kubeObject{}
}

// kubeCluster applies objects to a real kube-apiserver.
type kubeCluster struct {
	kube   *testenv.Kube
	client dynamic.Interface
	disc   discovery.DiscoveryInterface
	mapper meta.RESTMapper
}

func startKubeCluster(t *testing.T) *kubeCluster {
	t.Helper()
	k := testenv.StartKube(t)
	client, err := dynamic.NewForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	c := &kubeCluster{kube: k, client: client, disc: k.Clientset.Discovery()}
	c.refreshMapper(t)
	return c
}

func (c *kubeCluster) refreshMapper(t *testing.T) {
	t.Helper()
	groups, err := restmapper.GetAPIGroupResources(c.disc)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	c.mapper = restmapper.NewDiscoveryRESTMapper(groups)
}

// apply server-side applies o, for real or as a dry run (dryRun=All: every
// admission and validation step runs, nothing is stored). Field validation
// is strict, as kubectl's: a field the schema does not know (a typo in a
// template, a field a CRD has no room for) is an error, not a warning.
func (c *kubeCluster) apply(t *testing.T, o kubeObject, dryRun bool) error {
	t.Helper()
	gvk := o.obj.GroupVersionKind()
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("no such resource on the apiserver: %w", err)
	}
	var r dynamic.ResourceInterface = c.client.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		// kubectl would put an object without a namespace in the
		// current context's namespace: every namespaced object names
		// its own.
		if o.obj.GetNamespace() == "" {
			return errors.New("namespaced object without metadata.namespace")
		}
		r = c.client.Resource(mapping.Resource).Namespace(o.obj.GetNamespace())
	} else if o.obj.GetNamespace() != "" {
		return fmt.Errorf("cluster-scoped object with metadata.namespace %q", o.obj.GetNamespace())
	}
	data, err := o.obj.MarshalJSON()
	if err != nil {
		return err
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: fieldManager, Force: &force, FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = r.Patch(t.Context(), o.obj.GetName(), types.ApplyPatchType, data, opts)
	return err
}

// setUp applies the CustomResourceDefinitions and Namespaces of objs for
// real, so that the namespaced and custom objects can be dry-run, and
// waits until the apiserver serves the new kinds.
func (c *kubeCluster) setUp(t *testing.T, objs []kubeObject) {
	t.Helper()
	var kinds []schema.GroupVersionKind
	for _, o := range objs {
		switch o.obj.GetKind() {
		case "CustomResourceDefinition":
			for _, v := range mustSlice(t, o.obj, "spec", "versions") {
				kinds = append(kinds, schema.GroupVersionKind{
					Group:   mustString(t, o.obj, "spec", "group"),
					Version: v.(map[string]any)["name"].(string),
					Kind:    mustString(t, o.obj, "spec", "names", "kind"),
				})
			}
		case "Namespace":
		default:
			continue
		}
		if err := c.apply(t, o, false); err != nil {
			t.Fatalf("apply %s: %v", o, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, gvk := range kinds {
		for {
			c.refreshMapper(t)
			if _, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("the apiserver does not serve %s 30s after its CRD was applied: %v", gvk, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// dryRunAll dry-runs every object; each refusal fails the test, naming the
// object.
func (c *kubeCluster) dryRunAll(t *testing.T, objs []kubeObject) {
	t.Helper()
	for _, o := range objs {
		if err := c.apply(t, o, true); err != nil {
			t.Errorf("server-side apply (dry run) %s: %v", o, err)
		}
	}
}

func mustSlice(t *testing.T, u *unstructured.Unstructured, fields ...string) []any {
	t.Helper()
	v, ok, err := unstructured.NestedSlice(u.Object, fields...)
	if !ok || err != nil {
		t.Fatalf("%s %s: no list at %s (%v)", u.GetKind(), u.GetName(), strings.Join(fields, "."), err)
	}
	return v
}

func mustString(t *testing.T, u *unstructured.Unstructured, fields ...string) string {
	t.Helper()
	v, ok, err := unstructured.NestedString(u.Object, fields...)
	if !ok || err != nil {
		t.Fatalf("%s %s: no string at %s (%v)", u.GetKind(), u.GetName(), strings.Join(fields, "."), err)
	}
	return v
}

// TestKubernetesManifestsAndChartApply runs one kube-apiserver for every
// check that needs one.
func TestKubernetesManifestsAndChartApply(t *testing.T) {
	manifests := manifestObjects(t)
	c := startKubeCluster(t)
	c.setUp(t, manifests)

	t.Run("manifests pass a server-side apply", func(t *testing.T) {
		c.dryRunAll(t, manifests)
	})

	// The chart's ServiceMonitor, PodMonitor and PrometheusRule are
	// applied against prometheus-operator's own CRDs, when they can be had.
	monitors := false
	t.Run("prometheus-operator CRDs take the chart's monitors", func(t *testing.T) {
		crds, err := prometheusOperatorCRDs(t)
		if err != nil {
			testenv.Unavailable(t, "prometheus-operator's CRDs: %v (run distribution/testdata/chart/fetch-prometheus-operator-crds.sh online once)", err)
		}
		c.setUp(t, crds)
		monitors = true
		// The CRDs check what the chart writes: a field they do not
		// know is refused.
		bad := decodeObjects(t, []byte(`
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: typo, namespace: vigil}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: vigil}}
  endpoints: [{port: metrics, intervall: 30s}]
`), "inline")[0]
		if err := c.apply(t, bad, true); err == nil || !strings.Contains(err.Error(), "intervall") {
			t.Errorf("a ServiceMonitor with endpoints[0].intervall: %v, want a refusal naming it", err)
		}
		badRule := decodeObjects(t, []byte(`
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: typo, namespace: vigil}
spec:
  groups: [{name: vigil, rules: [{alert: VigilTypo, expresion: up == 0}]}]
`), "inline")[0]
		if err := c.apply(t, badRule, true); err == nil || !strings.Contains(err.Error(), "expresion") {
			t.Errorf("a PrometheusRule with rules[0].expresion: %v, want a refusal naming it", err)
		}
	})

	t.Run("chart passes a server-side apply", func(t *testing.T) {
		for _, cc := range chartCases() {
			t.Run(cc.name, func(t *testing.T) {
				var objs []kubeObject
				for _, o := range renderChart(t, cc).objs {
					if o.obj.GroupVersionKind().Group == "monitoring.coreos.com" && !monitors {
						continue // reported by the subtest above
					}
					objs = append(objs, o)
				}
				c.dryRunAll(t, objs)
			})
		}
	})

	t.Run("policies apply as Tetragon objects", func(t *testing.T) {
		// The CRDs take Tetragon's objects unchanged: every example
		// policy of the manifests, as an object, and one with fields
		// Vigil does not know (left to Vigil's parser to report).
		var objs []kubeObject
		cm := findObject(t, manifests, "ConfigMap", "vigil-policies")
		for file, data := range cm.obj.Object["data"].(map[string]any) {
			for _, o := range decodeObjects(t, []byte(data.(string)), "vigil-policies "+file) {
				if o.obj.GetKind() == "TracingPolicyNamespaced" {
					o.obj.SetNamespace("default")
				}
				objs = append(objs, o)
			}
		}
		objs = append(objs, decodeObjects(t, []byte(`
apiVersion: cilium.io/v1alpha1
kind: TracingPolicyNamespaced
metadata:
  name: from-a-future-tetragon
  namespace: default
spec:
  podSelector:
    matchLabels: {app: xwing}
  someFieldFromTheFuture: {a: [1, 2]}
  kprobes:
  - call: sys_openat
    syscall: true
`), "inline")...)
		c.dryRunAll(t, objs)
	})

	t.Run("chart installs with helm install --create-namespace", func(t *testing.T) {
		// Helm refuses to install a chart that holds the namespace
		// --create-namespace made: the defaults must not render it.
		kubeconfig := c.kube.Kubeconfig(t, t.TempDir())
		const ns, release = "vigil-helm", "vigil-install"
		runHelm(t, "install", release, chartDir, "--namespace", ns, "--create-namespace", "--kubeconfig", kubeconfig)
		ds, err := c.kube.Clientset.AppsV1().DaemonSets(ns).Get(t.Context(), release, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("after helm install: %v", err)
		}
		if sa := ds.Spec.Template.Spec.ServiceAccountName; sa != release {
			t.Errorf("DaemonSet runs as service account %q, want %q", sa, release)
		}
	})
}

// TestKubernetesKustomizationListsEveryFile catches a manifest file that
// `kubectl apply -k` would never apply.
func TestKubernetesKustomizationListsEveryFile(t *testing.T) {
	k := readKustomization(t)
	var files []string
	err := filepath.WalkDir(manifestsDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(manifestsDir, path)
		if ext := filepath.Ext(rel); (ext == ".yaml" || ext == ".yml") && rel != "kustomization.yaml" {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, r := range k.Resources {
		if listed[r] {
			t.Errorf("kustomization.yaml lists %s twice", r)
		}
		listed[r] = true
	}
	for _, f := range files {
		if !listed[f] {
			t.Errorf("%s is not in kustomization.yaml's resources: `kubectl apply -k` would skip it", filepath.Join(manifestsDir, f))
		}
		delete(listed, f)
	}
	for _, r := range slices.Sorted(maps.Keys(listed)) {
		t.Errorf("kustomization.yaml lists %s, which is not a YAML file of %s", r, manifestsDir)
	}
}

// TestKubernetesChartRendersTheManifests: with its default values the
// chart renders the objects of distribution/kubernetes, but for the
// namespace (--create-namespace makes it) and the labels Helm adds.
func TestKubernetesChartRendersTheManifests(t *testing.T) {
	manifests := manifestObjects(t)
	want := map[kubeKey]kubeObject{}
	for _, o := range manifests {
		if _, dup := want[o.key()]; dup {
			t.Errorf("%s is defined twice", o)
		}
		want[o.key()] = o
	}
	nsKey := kubeKey{"v1", "Namespace", "", releaseNamespace}
	if _, ok := want[nsKey]; !ok {
		t.Fatalf("the manifests do not create namespace %s", releaseNamespace)
	}

	compareSets := func(t *testing.T, chart []kubeObject, want map[kubeKey]kubeObject) {
		got := map[kubeKey]kubeObject{}
		for _, o := range chart {
			got[o.key()] = o
		}
		for k, o := range want {
			if _, ok := got[k]; !ok {
				t.Errorf("the chart does not render %s", o)
			}
		}
		for k, o := range got {
			m, ok := want[k]
			if !ok {
				t.Errorf("the chart renders %s, which the manifests do not hold", o)
				continue
			}
			if diffs := diffValues(comparableObject(t, m), comparableObject(t, o), ""); len(diffs) > 0 {
				t.Errorf("%s differs from %s:\n%s", o, m, strings.Join(diffs, "\n"))
			}
		}
	}

	t.Run("defaults", func(t *testing.T) {
		withoutNS := maps.Clone(want)
		delete(withoutNS, nsKey)
		compareSets(t, chartObjects(t), withoutNS)
	})
	t.Run("namespace.create", func(t *testing.T) {
		compareSets(t, chartObjects(t, "namespace.create=true"), want)
	})

	t.Run("CRD files are copies", func(t *testing.T) {
		// The chart's files/crds holds the manifests' CRD files, byte
		// for byte: Helm cannot read files outside the chart.
		a, _ := filepath.Glob(filepath.Join(manifestsDir, "crds", "*.yaml"))
		b, _ := filepath.Glob(filepath.Join(chartDir, "files", "crds", "*.yaml"))
		if len(a) == 0 {
			t.Fatal("no CRD files")
		}
		base := func(paths []string) (out []string) {
			for _, p := range paths {
				out = append(out, filepath.Base(p))
			}
			return out
		}
		if !slices.Equal(base(a), base(b)) {
			t.Fatalf("CRD files differ: %s has %v, %s has %v", manifestsDir, base(a), chartDir, base(b))
		}
		for i := range a {
			x, _ := os.ReadFile(a[i])
			y, _ := os.ReadFile(b[i])
			if !bytes.Equal(x, y) {
				t.Errorf("%s differs from %s: cp %[1]s %[2]s", a[i], b[i])
			}
		}
	})

	t.Run("otlp.endpoint", func(t *testing.T) {
		objs := chartObjects(t, "otlp.endpoint=otel-collector.observability:4317", "otlp.insecure=true")
		cfg := collectorConfig(t, findObject(t, objs, "ConfigMap", "vigil-config"))
		otlp, ok := dig(cfg, "exporters", "otlp_grpc").(map[string]any)
		if !ok || otlp["endpoint"] != "otel-collector.observability:4317" || dig(otlp, "tls", "insecure") != true {
			t.Errorf("exporters.otlp_grpc = %v, want the endpoint, plaintext", otlp)
		}
		for _, p := range []string{"logs", "metrics"} {
			if exp := stringList(dig(cfg, "service", "pipelines", p, "exporters")); !slices.Contains(exp, "otlp_grpc") {
				t.Errorf("pipeline %s exports to %v, want otlp_grpc among them", p, exp)
			}
		}
	})
}

// comparableObject is o without what the chart adds on purpose: Helm's
// labels and annotations, the instance label in the DaemonSet's and the
// Service's selectors and in the pod template, the config checksum; and
// with the collector configuration parsed, since the chart's comments and
// key order differ. (Each selector is checked against its pods apart.)
func comparableObject(t *testing.T, o kubeObject) map[string]any {
	t.Helper()
	u := o.obj.DeepCopy()
	unstructured.RemoveNestedField(u.Object, "metadata", "labels")
	unstructured.RemoveNestedField(u.Object, "metadata", "annotations")
	switch u.GetKind() {
	case "DaemonSet":
		unstructured.RemoveNestedField(u.Object, "spec", "selector")
		unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata")
	case "Service":
		unstructured.RemoveNestedField(u.Object, "spec", "selector")
	case "ConfigMap":
		if data, ok := u.Object["data"].(map[string]any); ok {
			if s, ok := data["config.yaml"].(string); ok {
				var cfg any
				if err := yaml.Unmarshal([]byte(s), &cfg); err != nil {
					t.Fatalf("%s: config.yaml: %v", o, err)
				}
				data["config.yaml"] = cfg
			}
		}
	}
	return u.Object
}

func collectorConfig(t *testing.T, cm kubeObject) map[string]any {
	t.Helper()
	s, ok, _ := unstructured.NestedString(cm.obj.Object, "data", "config.yaml")
	if !ok {
		t.Fatalf("%s has no config.yaml", cm)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(s), &cfg); err != nil {
		t.Fatalf("%s: config.yaml is not YAML: %v", cm, err)
	}
	return cfg
}

// diffValues lists where a (the manifests) and b (the chart) differ, by
// field path.
func diffValues(a, b any, path string) []string {
	if am, ok := a.(map[string]any); ok {
		if bm, ok := b.(map[string]any); ok {
			var diffs []string
			keys := map[string]bool{}
			for k := range am {
				keys[k] = true
			}
			for k := range bm {
				keys[k] = true
			}
			for _, k := range slices.Sorted(maps.Keys(keys)) {
				diffs = append(diffs, diffValues(am[k], bm[k], path+"."+k)...)
			}
			return diffs
		}
	}
	if al, ok := a.([]any); ok {
		if bl, ok := b.([]any); ok && len(al) == len(bl) {
			var diffs []string
			for i := range al {
				diffs = append(diffs, diffValues(al[i], bl[i], fmt.Sprintf("%s[%d]", path, i))...)
			}
			return diffs
		}
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	show := func(v any) string {
		if v == nil {
			return "(absent)"
		}
		y, _ := yaml.Marshal(v)
		return strings.TrimSpace(string(y))
	}
	return []string{fmt.Sprintf("  %s: manifests %s, chart %s", path, show(a), show(b))}
}

// dig walks nested maps; nil when a key is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func stringList(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

var envRef = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)`)

// TestKubernetesCollectorConfig checks the collector configuration of the
// manifests against what the DaemonSet gives it: the components it names,
// the environment it reads, the paths it loads. (otelcol-vigil validates it
// in full elsewhere.)
func TestKubernetesCollectorConfig(t *testing.T) {
	objs := manifestObjects(t)
	cfg := collectorConfig(t, findObject(t, objs, "ConfigMap", "vigil-config"))
	ds := findObject(t, objs, "DaemonSet", "vigil")

	want := map[string]any{
		"extensions::health_check::endpoint":          "${env:POD_IP}:13133",
		"extensions::k8s_metadata::auth_type":         "serviceAccount",
		"extensions::k8s_metadata::node_from_env_var": "K8S_NODE_NAME",
		"receivers::ebpf::k8s_metadata":               "k8s_metadata",
		"receivers::ebpf::process::procfs":            "/procRoot",
		"receivers::ebpf::policies":                   []any{"/etc/vigil/policies"},
		"processors::k8s_workload::k8s_metadata":      "k8s_metadata",
		"processors::k8s_workload::wait_for_metadata": "2s",
		"processors::k8s_workload::extract::labels": []any{
			map[string]any{"key": "app.kubernetes.io/name"}, map[string]any{"key": "app"},
		},
		"processors::memory_limiter": map[string]any{
			"check_interval": "1s", "limit_percentage": float64(80), "spike_limit_percentage": float64(25),
		},
		"service::telemetry::metrics::readers": []any{map[string]any{"pull": map[string]any{"exporter": map[string]any{
			"prometheus": map[string]any{"host": "${env:POD_IP}", "port": float64(8888)},
		}}}},
		"exporters::compact::output":              "stdout",
		"exporters::compact::color":               "never",
		"service::extensions":                     []any{"health_check", "k8s_metadata"},
		"service::pipelines::logs::receivers":     []any{"ebpf"},
		"service::pipelines::logs::processors":    []any{"memory_limiter", "k8s_workload", "batch"},
		"service::pipelines::metrics::receivers":  []any{"ebpf"},
		"service::pipelines::metrics::processors": []any{"memory_limiter", "k8s_workload", "batch"},
	}
	for path, w := range want {
		if got := dig(cfg, strings.Split(path, "::")...); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v, want %#v", path, got, w)
		}
	}
	if exp := stringList(dig(cfg, "service", "pipelines", "logs", "exporters")); !slices.Contains(exp, "compact") {
		t.Errorf("the logs pipeline exports to %v: `kubectl logs` shows nothing without compact", exp)
	}
	checkMemoryLimiterFirst(t, cfg)
	checkServiceSelectsPods(t, objs)

	// Every component a pipeline names is configured.
	defined := func(kind, id string) bool {
		m, _ := cfg[kind].(map[string]any)
		_, ok := m[id]
		return ok
	}
	for _, id := range stringList(dig(cfg, "service", "extensions")) {
		if !defined("extensions", id) {
			t.Errorf("service.extensions names %s, which extensions does not configure", id)
		}
	}
	pipelines, _ := dig(cfg, "service", "pipelines").(map[string]any)
	for name := range pipelines {
		for _, kind := range []string{"receivers", "processors", "exporters"} {
			for _, id := range stringList(dig(pipelines, name, kind)) {
				if !defined(kind, id) {
					t.Errorf("pipeline %s names %s %s, which is not configured", name, kind, id)
				}
			}
		}
	}

	// The container: the config path, the environment and the mounts the
	// configuration relies on.
	containers := mustSlice(t, ds.obj, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("the DaemonSet has %d containers, want 1", len(containers))
	}
	container := containers[0].(map[string]any)
	if args := stringList(container["args"]); !slices.Equal(args, []string{"--config", "/etc/vigil/config.yaml"}) {
		t.Errorf("args = %v", args)
	}
	env := map[string]string{}
	for _, e := range container["env"].([]any) {
		e := e.(map[string]any)
		env[e["name"].(string)], _ = dig(e, "valueFrom", "fieldRef", "fieldPath").(string)
	}
	if env["K8S_NODE_NAME"] != "spec.nodeName" {
		t.Errorf("K8S_NODE_NAME comes from %q, want the downward API's spec.nodeName", env["K8S_NODE_NAME"])
	}
	raw, _, _ := unstructured.NestedString(findObject(t, objs, "ConfigMap", "vigil-config").obj.Object, "data", "config.yaml")
	for _, m := range envRef.FindAllStringSubmatch(stripComments(raw), -1) {
		if _, ok := env[m[1]]; !ok {
			t.Errorf("the configuration reads ${env:%s}, which the container does not set", m[1])
		}
	}

	volumes := map[string]map[string]any{}
	for _, v := range mustSlice(t, ds.obj, "spec", "template", "spec", "volumes") {
		v := v.(map[string]any)
		volumes[v["name"].(string)] = v
	}
	mounts := map[string]map[string]any{}
	for _, m := range container["volumeMounts"].([]any) {
		m := m.(map[string]any)
		mounts[m["mountPath"].(string)] = m
		if volumes[m["name"].(string)] == nil {
			t.Errorf("mount %s uses volume %s, which the pod does not have", m["mountPath"], m["name"])
		}
	}
	source := func(path string) map[string]any {
		m := mounts[path]
		if m == nil {
			t.Errorf("nothing is mounted at %s", path)
			return nil
		}
		return volumes[m["name"].(string)]
	}
	if v := source("/etc/vigil/config.yaml"); v != nil && (dig(v, "configMap", "name") != "vigil-config" || mounts["/etc/vigil/config.yaml"]["subPath"] != "config.yaml") {
		t.Errorf("/etc/vigil/config.yaml is not config.yaml of ConfigMap vigil-config: %v", v)
	}
	if v := source("/etc/vigil/policies"); v != nil && dig(v, "configMap", "name") != "vigil-policies" {
		t.Errorf("/etc/vigil/policies is not ConfigMap vigil-policies: %v", v)
	}
	if _, ok := mounts["/etc/vigil/policies"]["subPath"]; ok {
		t.Error("/etc/vigil/policies is a subPath mount: ConfigMap edits would never reach the collector")
	}
	hostPaths := map[string]string{
		"/procRoot":           "/proc",
		"/sys/kernel/btf":     "/sys/kernel/btf",
		"/sys/fs/bpf":         "/sys/fs/bpf",
		"/sys/fs/cgroup":      "/sys/fs/cgroup",
		"/sys/kernel/tracing": "/sys/kernel/tracing",
		"/var/run/vigil":      "/var/run/vigil",
	}
	for in, host := range hostPaths {
		if v := source(in); v != nil && dig(v, "hostPath", "path") != host {
			t.Errorf("%s is not the host's %s: %v", in, host, v)
		}
	}
	if sock, _ := dig(cfg, "exporters", "event_stream", "socket").(string); sock != "" && filepath.Dir(sock) != "/var/run/vigil" {
		t.Errorf("the event_stream socket %s is not in the host's /var/run/vigil, where `vigil events` looks", sock)
	}
}

// stripComments drops YAML comments, so that a commented-out example does
// not count as a use.
func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "#"); i >= 0 && strings.TrimSpace(line[:i]) == "" {
			continue
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// TestKubernetesExamplePolicies: the policies the manifests and the chart
// ship load in Vigil as they are.
func TestKubernetesExamplePolicies(t *testing.T) {
	check := func(t *testing.T, cm kubeObject) {
		data, _ := cm.obj.Object["data"].(map[string]any)
		for file, v := range data {
			src := fmt.Sprintf("%s %s", cm, file)
			if ext := filepath.Ext(file); ext != ".yaml" && ext != ".yml" {
				t.Errorf("%s: the receiver loads *.yaml and *.yml files only", src)
			}
			ps, err := policy.Parse([]byte(v.(string)), src)
			if err != nil {
				t.Errorf("%v", err)
			}
			for _, p := range ps {
				if err := policy.Validate(p); err != nil {
					t.Errorf("%s: %v", src, err)
				} else if err := policy.Supported(p); err != nil {
					t.Errorf("%s: %v", src, err)
				}
			}
		}
	}
	t.Run("manifests", func(t *testing.T) {
		check(t, findObject(t, manifestObjects(t), "ConfigMap", "vigil-policies"))
	})
	t.Run("chart", func(t *testing.T) {
		check(t, findObject(t, chartObjects(t), "ConfigMap", "vigil-policies"))
	})
}
