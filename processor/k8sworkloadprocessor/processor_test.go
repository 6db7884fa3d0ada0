package k8sworkloadprocessor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/vigilsec/vigil/extension/k8smetaextension/k8smetatest"
	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/k8s"
	"github.com/vigilsec/vigil/internal/testenv"
)

// testNode is the node the collector under test runs on; no kubelet runs,
// the tests write spec.nodeName and container statuses themselves.
const testNode = "vigil-test-node"

// eventually bounds what happens asynchronously: generous, as the API
// server is real and the machine may be busy.
const eventually = 20 * time.Second

// TestWithAPIServer runs the processor with the k8s_metadata extension,
// started as a user configures it, against one real kube-apiserver and etcd
// shared by the subtests. Each subtest starts its own extension and
// processor and works in its own namespace.
func TestWithAPIServer(t *testing.T) {
	kube := testenv.StartKube(t)
	f := &fixture{cs: kube.Clientset, kubeconfig: kube.Kubeconfig(t, t.TempDir())}

	t.Run("SetsPodAndWorkloadAttributes", func(t *testing.T) { testAttributes(t, f) })
	t.Run("OtherOwnerChains", func(t *testing.T) { testOtherOwnerChains(t, f) })
	t.Run("WaitsForANewContainer", func(t *testing.T) { testWaits(t, f) })
	t.Run("ReleasesWithoutMetadataAfterWaiting", func(t *testing.T) { testMissing(t, f) })
	t.Run("NoWaitPassesAtOnce", func(t *testing.T) { testNoWait(t, f) })
	t.Run("MaxPendingBoundsTheHeldRecords", func(t *testing.T) { testMaxPending(t, f) })
	t.Run("ShutdownFlushesHeldRecords", func(t *testing.T) { testShutdownFlushes(t, f) })
	t.Run("LabelsMetricDataPoints", func(t *testing.T) { testMetrics(t, f) })
}

// testMetrics: the data points of a container's counters get its pod and
// workload; those of the host and of unknown containers pass as they are.
func testMetrics(t *testing.T, f *fixture) {
	ns := f.namespace(t, nil)
	deploy := f.deployment(t, ns, "api")
	rs := f.replicaSet(t, ns, "api-7c9d", controllerRef("apps/v1", "Deployment", deploy.Name, deploy.UID))
	id := runtimeID(t, "api")
	pod := f.pod(t, ns, "api-7c9d-xyz12", "registry.local/api:2", controllerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID), nil)
	f.setStatus(t, pod, id)
	h := f.start(t, nil)
	h.waitKnown(t, id)

	sink := new(consumertest.MetricsSink)
	mp, err := NewFactory().CreateMetrics(t.Context(), processortest.NewNopSettings(typ), createDefaultConfig(), sink)
	require.NoError(t, err)
	host, _ := k8smetatest.Start(t, f.kubeconfig, testNode)
	require.NoError(t, mp.Start(t.Context(), host))
	t.Cleanup(func() { require.NoError(t, mp.Shutdown(context.Background())) })
	require.Eventually(t, func() bool {
		_, _, ok := mp.(*metricsProcessor).cache.ByContainerID(id)
		return ok
	}, eventually, 50*time.Millisecond)

	md := pmetric.NewMetrics()
	dps := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptySum().DataPoints()
	dps.AppendEmpty().Attributes().PutStr(event.AttrContainerID, id)
	dps.AppendEmpty().Attributes().PutStr(event.AttrContainerID, runtimeID(t, "gone"))
	dps.AppendEmpty().Attributes().PutStr(event.AttrSecurityRuleName, "host")
	require.NoError(t, mp.ConsumeMetrics(t.Context(), md))

	got := sink.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints()
	a := got.At(0).Attributes().AsRaw()
	assert.Equal(t, "api-7c9d-xyz12", a[event.AttrK8sPodName])
	assert.Equal(t, ns, a[event.AttrK8sNamespace])
	assert.Equal(t, "api", a["k8s.deployment.name"])
	assert.Equal(t, 1, got.At(1).Attributes().Len(), "an unknown container was labelled")
	assert.Equal(t, map[string]any{event.AttrSecurityRuleName: "host"}, got.At(2).Attributes().AsRaw())
}

func testAttributes(t *testing.T, f *fixture) {
	ns := f.namespace(t, map[string]string{"team": "payments"})
	deploy := f.deployment(t, ns, "web")
	rs := f.replicaSet(t, ns, "web-5d8f7", controllerRef("apps/v1", "Deployment", deploy.Name, deploy.UID))
	id := runtimeID(t, "web")
	pod := f.pod(t, ns, "web-5d8f7-abcde", "registry.local:5000/shop/web:1.4.2",
		controllerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID), func(p *corev1.Pod) {
			p.Labels = map[string]string{"app.kubernetes.io/name": "web", "tier-frontend": "yes"}
			p.Annotations = map[string]string{"vigil.dev/owner": "alice"}
		})
	f.setStatus(t, pod, id)

	h := f.start(t, func(c *Config) {
		c.Extract.Labels = []FieldExtractConfig{
			{Key: "app.kubernetes.io/name"},
			{Key: "team", TagName: "team", From: FromNamespace},
			{KeyRegex: "^tier-(.*)$", TagName: "k8s.tier.$1"},
		}
		c.Extract.Annotations = []FieldExtractConfig{{Key: "vigil.dev/owner"}}
	})
	h.waitKnown(t, id)

	ld := plog.NewLogs()
	res := addRecord(ld, id, "exec")
	// Set by the receiver: never overwritten.
	res.PutStr(event.AttrK8sNodeName, "as-the-receiver-saw-it")
	host := ld.ResourceLogs().AppendEmpty()
	host.Resource().Attributes().PutStr(event.AttrHostName, "node-1")
	host.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("host event")
	require.NoError(t, h.p.ConsumeLogs(t.Context(), ld))

	// Known containers pass in the caller: no waiting needed.
	require.Equal(t, 2, h.sink.LogRecordCount())
	got := h.sink.AllLogs()[0].ResourceLogs()
	attrs := got.At(0).Resource().Attributes().AsRaw()
	assert.Equal(t, map[string]any{
		event.AttrContainerID:                   id,
		event.AttrK8sPodName:                    "web-5d8f7-abcde",
		event.AttrK8sPodUID:                     string(pod.UID),
		event.AttrK8sNamespace:                  ns,
		event.AttrK8sNodeName:                   "as-the-receiver-saw-it",
		event.AttrK8sContainer:                  "app",
		event.AttrContainerImageName:            "registry.local:5000/shop/web",
		event.AttrContainerImageTags:            []any{"1.4.2"},
		"k8s.replicaset.name":                   "web-5d8f7",
		"k8s.deployment.name":                   "web",
		"k8s.pod.labels.app.kubernetes.io/name": "web",
		"team":                                  "payments",
		"k8s.tier.frontend":                     "yes",
		"k8s.pod.annotations.vigil.dev/owner":   "alice",
	}, attrs)
	assert.Equal(t, map[string]any{event.AttrHostName: "node-1"}, got.At(1).Resource().Attributes().AsRaw(),
		"a resource without container.id changed")

	// Without a node name of its own the pod's is set.
	ld = plog.NewLogs()
	addRecord(ld, id, "exit")
	require.NoError(t, h.p.ConsumeLogs(t.Context(), ld))
	v, _ := h.sink.AllLogs()[1].ResourceLogs().At(0).Resource().Attributes().Get(event.AttrK8sNodeName)
	assert.Equal(t, testNode, v.Str())

	h.assertCounts(t, 2, 0, 0)
}

func testOtherOwnerChains(t *testing.T, f *fixture) {
	ns := f.namespace(t, nil)
	cron := f.cronJob(t, ns, "backup")
	job := f.job(t, ns, "backup-29123456", controllerRef("batch/v1", "CronJob", cron.Name, cron.UID))
	jobPod := f.pod(t, ns, "backup-29123456-x7k2p", "alpine",
		controllerRef("batch/v1", "Job", job.Name, job.UID), nil)
	f.setStatus(t, jobPod, runtimeID(t, "job"))
	dsPod := f.pod(t, ns, "agent-q8w2e", "agent:2",
		controllerRef("apps/v1", "DaemonSet", "agent", "00000000-0000-0000-0000-00000000000d"), nil)
	f.setStatus(t, dsPod, runtimeID(t, "ds"))
	stsPod := f.pod(t, ns, "db-0", "postgres:17",
		controllerRef("apps/v1", "StatefulSet", "db", "00000000-0000-0000-0000-00000000000e"), nil)
	f.setStatus(t, stsPod, runtimeID(t, "sts"))
	bare := f.pod(t, ns, "bare", "busybox", metav1.OwnerReference{}, nil)
	f.setStatus(t, bare, runtimeID(t, "bare"))

	h := f.start(t, nil)
	for _, c := range []string{"job", "ds", "sts", "bare"} {
		h.waitKnown(t, runtimeID(t, c))
	}
	// The Job's owner may be resolved after its pod: wait for the chain.
	require.Eventually(t, func() bool {
		p, _, ok := h.cache.ByContainerID(runtimeID(t, "job"))
		return ok && len(p.Owners) == 2
	}, eventually, 20*time.Millisecond)

	for _, tc := range []struct {
		container string
		owners    map[string]any
		tag       string
	}{
		{"job", map[string]any{"k8s.job.name": "backup-29123456", "k8s.cronjob.name": "backup"}, "latest"},
		{"ds", map[string]any{"k8s.daemonset.name": "agent"}, "2"},
		{"sts", map[string]any{"k8s.statefulset.name": "db"}, "17"},
		{"bare", map[string]any{}, "latest"},
	} {
		ld := plog.NewLogs()
		addRecord(ld, runtimeID(t, tc.container), tc.container)
		require.NoError(t, h.p.ConsumeLogs(t.Context(), ld))
		attrs := ld.ResourceLogs().At(0).Resource().Attributes().AsRaw()
		owners := map[string]any{}
		for k, v := range attrs {
			if strings.HasPrefix(k, "k8s.") && strings.HasSuffix(k, ".name") && !podAttrs[k] {
				owners[k] = v
			}
		}
		assert.Equal(t, tc.owners, owners, tc.container)
		// "alpine" and "busybox" mean the latest tag, as they do to the
		// runtime.
		assert.Equal(t, []any{tc.tag}, attrs[event.AttrContainerImageTags], tc.container)
	}
}

// podAttrs are the k8s.*.name attributes that do not name an owner.
var podAttrs = map[string]bool{
	event.AttrK8sPodName: true, event.AttrK8sNamespace: true, event.AttrK8sNodeName: true, event.AttrK8sContainer: true,
}

func testWaits(t *testing.T, f *fixture) {
	ns := f.namespace(t, nil)
	known := f.pod(t, ns, "known", "busybox:1.37", metav1.OwnerReference{}, nil)
	f.setStatus(t, known, runtimeID(t, "known"))
	// Long enough that only a broken processor releases the record
	// without its pod, however slow the machine.
	h := f.start(t, func(c *Config) { c.WaitForMetadata = time.Minute })
	h.waitKnown(t, runtimeID(t, "known"))

	newID := runtimeID(t, "new")
	ld := plog.NewLogs()
	addRecord(ld, newID, "new 1")
	addRecord(ld, runtimeID(t, "known"), "known 1")
	require.NoError(t, h.p.ConsumeLogs(t.Context(), ld))
	more := plog.NewLogs()
	addRecord(more, newID, "new 2")
	require.NoError(t, h.p.ConsumeLogs(t.Context(), more))

	// The known container's record went on in the caller, while the new
	// container's wait for their pod.
	assert.Equal(t, []string{"known 1"}, bodies(h.sink))
	later := plog.NewLogs()
	addRecord(later, runtimeID(t, "known"), "known 2")
	require.NoError(t, h.p.ConsumeLogs(t.Context(), later))
	assert.Equal(t, []string{"known 1", "known 2"}, bodies(h.sink), "a held container blocked a known one")

	// The later batch passed while the new container's records stayed:
	// they are held, not late. Its pod releases them.
	pod := f.pod(t, ns, "brand-new", "nginx:1.27", metav1.OwnerReference{}, nil)
	f.setStatus(t, pod, newID)

	require.Eventually(t, func() bool { return h.sink.LogRecordCount() == 4 }, eventually, 10*time.Millisecond,
		"the held records never arrived")
	assert.Equal(t, []string{"known 1", "known 2", "new 1", "new 2"}, bodies(h.sink), "held records out of order")
	for _, l := range h.sink.AllLogs()[2:] {
		attrs := l.ResourceLogs().At(0).Resource().Attributes()
		name, _ := attrs.Get(event.AttrK8sPodName)
		assert.Equal(t, "brand-new", name.Str())
		img, _ := attrs.Get(event.AttrContainerImageName)
		assert.Equal(t, "nginx", img.Str())
	}
	h.assertCounts(t, 2, 2, 0)
}

func testMissing(t *testing.T, f *fixture) {
	h := f.start(t, func(c *Config) { c.WaitForMetadata = 300 * time.Millisecond })
	ghost := runtimeID(t, "ghost")
	ld := plog.NewLogs()
	addRecord(ld, ghost, "ghost 1")
	require.NoError(t, h.p.ConsumeLogs(t.Context(), ld))
	require.Eventually(t, func() bool { return h.sink.LogRecordCount() == 1 }, eventually, 10*time.Millisecond,
		"a record of a container without a pod was never released")
	attrs := h.sink.AllLogs()[0].ResourceLogs().At(0).Resource().Attributes().AsRaw()
	assert.Equal(t, map[string]any{event.AttrContainerID: ghost}, attrs)
	h.assertCounts(t, 0, 0, 1)

	// A container already waited for in vain does not make each of its
	// records wait again.
	require.Eventually(t, func() bool {
		h.p.mu.Lock()
		defer h.p.mu.Unlock()
		return len(h.p.pending) == 0
	}, eventually, 10*time.Millisecond)
	ld = plog.NewLogs()
	addRecord(ld, ghost, "ghost 2")
	require.NoError(t, h.p.ConsumeLogs(t.Context(), ld))
	assert.Equal(t, []string{"ghost 1", "ghost 2"}, bodies(h.sink))
	h.assertCounts(t, 0, 0, 2)

	// Its pod, should it show up after all, is still found.
	ns := f.namespace(t, nil)
	pod := f.pod(t, ns, "late-ghost", "busybox", metav1.OwnerReference{}, nil)
	f.setStatus(t, pod, ghost)
	h.waitKnown(t, ghost)
	ld = plog.NewLogs()
	addRecord(ld, ghost, "ghost 3")
	require.NoError(t, h.p.ConsumeLogs(t.Context(), ld))
	name, _ := ld.ResourceLogs().At(0).Resource().Attributes().Get(event.AttrK8sPodName)
	assert.Equal(t, "late-ghost", name.Str())
	h.assertCounts(t, 1, 0, 2)
	h.assertMetric(t, map[string]int64{resultFound: 1, resultMissing: 2})
}

func testNoWait(t *testing.T, f *fixture) {
	h := f.start(t, func(c *Config) { c.WaitForMetadata = 0 })
	ld := plog.NewLogs()
	addRecord(ld, runtimeID(t, "unknown"), "unknown")
	require.NoError(t, h.p.ConsumeLogs(t.Context(), ld))
	assert.Equal(t, []string{"unknown"}, bodies(h.sink))
	h.assertCounts(t, 0, 0, 1)
}

func testMaxPending(t *testing.T, f *fixture) {
	h := f.start(t, func(c *Config) {
		c.WaitForMetadata = time.Minute
		c.MaxPending = 2
	})
	a, b := runtimeID(t, "a"), runtimeID(t, "b")
	send := func(id, body string) {
		ld := plog.NewLogs()
		addRecord(ld, id, body)
		require.NoError(t, h.p.ConsumeLogs(t.Context(), ld))
	}
	send(a, "a1")
	send(a, "a2")
	assert.Empty(t, bodies(h.sink))
	// Full: another container's record passes at once, without metadata.
	send(b, "b1")
	assert.Equal(t, []string{"b1"}, bodies(h.sink))
	// Full again, for a held container: what it holds goes first.
	send(a, "a3")
	assert.Equal(t, []string{"b1", "a1", "a2", "a3"}, bodies(h.sink))
	h.assertCounts(t, 0, 0, 4)
	h.p.mu.Lock()
	assert.Zero(t, h.p.held)
	assert.Empty(t, h.p.pending)
	h.p.mu.Unlock()
}

func testShutdownFlushes(t *testing.T, f *fixture) {
	h := f.start(t, func(c *Config) { c.WaitForMetadata = time.Hour })
	ld := plog.NewLogs()
	addRecord(ld, runtimeID(t, "x"), "x1")
	addRecord(ld, runtimeID(t, "y"), "y1")
	require.NoError(t, h.p.ConsumeLogs(t.Context(), ld))
	ld = plog.NewLogs()
	addRecord(ld, runtimeID(t, "x"), "x2")
	require.NoError(t, h.p.ConsumeLogs(t.Context(), ld))
	assert.Empty(t, bodies(h.sink))

	ctx, cancel := context.WithTimeout(t.Context(), eventually)
	defer cancel()
	require.NoError(t, h.p.Shutdown(ctx))
	assert.ElementsMatch(t, []string{"x1", "x2", "y1"}, bodies(h.sink), "records held at shutdown were lost")
	h.assertCounts(t, 0, 0, 3)
}

// TestStartNeedsTheExtension: a pipeline that names an extension the
// collector does not run fails at Start, saying what to add.
func TestStartNeedsTheExtension(t *testing.T) {
	p, err := NewFactory().CreateLogs(t.Context(), processortest.NewNopSettings(typ), createDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	err = p.Start(t.Context(), componenttest.NewNopHost())
	require.ErrorContains(t, err, `k8s_workload: k8s_metadata: extension "k8s_metadata" is not configured`)

	// An extension of another type under that id is refused too.
	err = p.Start(t.Context(), k8smetatest.Host{k8smetatest.ID: nopComponent{}})
	require.ErrorContains(t, err, "is not a k8s_metadata extension")
	require.NoError(t, p.Shutdown(t.Context()))
}

type nopComponent struct{}

func (nopComponent) Start(context.Context, component.Host) error { return nil }
func (nopComponent) Shutdown(context.Context) error              { return nil }

// harness is one started extension and processor.
type harness struct {
	p      *workloadProcessor
	sink   *consumertest.LogsSink
	cache  *k8s.Cache
	reader *sdkmetric.ManualReader
}

// fixture writes the objects a kubelet and controllers would, and starts
// extensions and processors against the API server.
type fixture struct {
	cs         kubernetes.Interface
	kubeconfig string
	n          atomic.Int64
}

// start runs the k8s_metadata extension (kubeConfig auth, the pods of
// testNode) and a processor using it, configured by edit, until the test
// ends.
func (f *fixture) start(t *testing.T, edit func(*Config)) *harness {
	t.Helper()
	host, _ := k8smetatest.Start(t, f.kubeconfig, testNode)

	cfg := createDefaultConfig().(*Config)
	if edit != nil {
		edit(cfg)
	}
	reader := sdkmetric.NewManualReader()
	set := processortest.NewNopSettings(typ)
	set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	sink := new(consumertest.LogsSink)
	lp, err := NewFactory().CreateLogs(t.Context(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, lp.Start(t.Context(), host))
	// Registered after the extension's, so it runs first, as the
	// collector shuts pipelines down before extensions.
	t.Cleanup(func() { require.NoError(t, lp.Shutdown(context.Background())) })
	p := lp.(*workloadProcessor)
	return &harness{p: p, sink: sink, cache: p.cache, reader: reader}
}

func (h *harness) waitKnown(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), eventually)
	defer cancel()
	if _, _, ok := h.cache.WaitForContainer(ctx, id); !ok {
		t.Fatalf("the cache did not learn container %s within %s", id[:12], eventually)
	}
}

func (h *harness) assertCounts(t *testing.T, found, waited, missing int64) {
	t.Helper()
	assert.Equal(t, [3]int64{found, waited, missing},
		[3]int64{h.p.counts.found.Load(), h.p.counts.waited.Load(), h.p.counts.missing.Load()},
		"counts found, waited, missing")
}

// assertMetric checks the processor's otelcol_processor_k8s_workload_metadata counter,
// by result.
func (h *harness) assertMetric(t *testing.T, want map[string]int64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, h.reader.Collect(t.Context(), &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, "github.com/vigilsec/vigil/processor/k8sworkloadprocessor", sm.Scope.Name)
		for _, m := range sm.Metrics {
			if m.Name != "otelcol_processor_k8s_workload_metadata" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				r, _ := dp.Attributes.Value("result")
				got[r.AsString()] = dp.Value
			}
		}
	}
	assert.Equal(t, want, got)
}

// namespace creates a namespace for one test, with the default service
// account that pod admission wants (no controller-manager creates it).
func (f *fixture) namespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("workload-%d", f.n.Add(1))
	_, err := f.cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = f.cs.CoreV1().ServiceAccounts(name).Create(t.Context(), &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return name
}

// pod creates a pod on testNode with one container "app" of image, owned
// by owner unless it is zero.
func (f *fixture) pod(t *testing.T, ns, name, image string, owner metav1.OwnerReference, edit func(*corev1.Pod)) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.PodSpec{NodeName: testNode, Containers: []corev1.Container{{Name: "app", Image: image}}},
	}
	if owner.Name != "" {
		pod.OwnerReferences = []metav1.OwnerReference{owner}
	}
	if edit != nil {
		edit(pod)
	}
	out, err := f.cs.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
	require.NoError(t, err)
	return out
}

// setStatus reports container "app" running as id, as the kubelet does.
func (f *fixture) setStatus(t *testing.T, pod *corev1.Pod, id string) {
	t.Helper()
	pod = pod.DeepCopy()
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "app", Image: pod.Spec.Containers[0].Image, ImageID: pod.Spec.Containers[0].Image,
		ContainerID: "containerd://" + id,
		State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	}}
	_, err := f.cs.CoreV1().Pods(pod.Namespace).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{})
	require.NoError(t, err)
}

func (f *fixture) deployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	out, err := f.cs.AppsV1().Deployments(ns).Create(t.Context(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: template(map[string]string{"app": name}),
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return out
}

// replicaSet writes a ReplicaSet as the Deployment controller would: no
// controller-manager runs.
func (f *fixture) replicaSet(t *testing.T, ns, name string, owner metav1.OwnerReference) *appsv1.ReplicaSet {
	t.Helper()
	out, err := f.cs.AppsV1().ReplicaSets(ns).Create(t.Context(), &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{owner}},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"rs": name}},
			Template: template(map[string]string{"rs": name}),
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return out
}

func (f *fixture) cronJob(t *testing.T, ns, name string) *batchv1.CronJob {
	t.Helper()
	out, err := f.cs.BatchV1().CronJobs(ns).Create(t.Context(), &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{
			Spec: batchv1.JobSpec{Template: jobTemplate()},
		}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return out
}

func (f *fixture) job(t *testing.T, ns, name string, owner metav1.OwnerReference) *batchv1.Job {
	t.Helper()
	out, err := f.cs.BatchV1().Jobs(ns).Create(t.Context(), &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{owner}},
		Spec:       batchv1.JobSpec{Template: jobTemplate()},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return out
}

func template(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox:1.37"}}},
	}
}

func jobTemplate() corev1.PodTemplateSpec {
	t := template(nil)
	t.Spec.RestartPolicy = corev1.RestartPolicyNever
	return t
}

func controllerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: &yes}
}

// runtimeID is a runtime id (64 hex digits) unique to the test and seed.
func runtimeID(t *testing.T, seed string) string {
	sum := sha256.Sum256([]byte(t.Name() + "/" + seed))
	return hex.EncodeToString(sum[:])
}

// addRecord appends a ResourceLogs of container id holding one record
// with body, as the ebpf receiver shapes them, and returns its resource.
func addRecord(ld plog.Logs, id, body string) pcommon.Map {
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(event.AttrContainerID, id)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(event.ScopeName)
	lr := sl.LogRecords().AppendEmpty()
	lr.SetEventName(event.NameProcessExec)
	lr.Body().SetStr(body)
	return rl.Resource().Attributes()
}

// bodies lists the bodies of the records in sink, in arrival order.
func bodies(sink *consumertest.LogsSink) []string {
	var out []string
	for _, l := range sink.AllLogs() {
		for _, rl := range l.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					out = append(out, lr.Body().Str())
				}
			}
		}
	}
	return out
}
