package enforcementprocessor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/vigilsec/vigil/extension/k8smetaextension/k8smetatest"
	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/testenv"
)

// testNode is the node of the collector under test; no kubelet runs, so a
// pod deleted with a grace period stays, terminating, until it runs out.
const testNode = "vigil-test-node"

// kubeFixture is one real kube-apiserver and etcd, shared by the subtests,
// each of which works in a namespace of its own.
type kubeFixture struct {
	kube *testenv.Kube
	cs   kubernetes.Interface
	// host holds the k8s_metadata extension, started on an admin
	// kubeconfig as a user configures it.
	host k8smetatest.Host
	n    atomic.Int64
}

// TestKubernetesActions runs the k8s_label and k8s_delete_pod actions
// against a real API server, through the real k8s_metadata extension.
func TestKubernetesActions(t *testing.T) {
	kube := testenv.StartKube(t)
	f := &kubeFixture{kube: kube, cs: kube.Clientset}
	f.host, _ = k8smetatest.Start(t, kube.Kubeconfig(t, t.TempDir()), testNode)

	t.Run("LabelsThePod", f.testLabel)
	t.Run("DeletesThePodAtOnceWithGraceZero", f.testDeleteNow)
	t.Run("DeletesWithAGracePeriod", f.testDeleteGrace)
	t.Run("LeavesARecreatedPodAlone", f.testRecreated)
	t.Run("MonitorModeChangesNothing", f.testMonitor)
	t.Run("NoPodAttributesIsNoTarget", f.testNoPod)
	t.Run("ForbiddenIsAuditedWithTheRBACHint", f.testForbidden)
	t.Run("ShutdownFinishesQueuedCalls", f.testShutdown)
}

func (f *kubeFixture) testLabel(t *testing.T) {
	pod := f.pod(t, f.namespace(t), "miner", nil)
	p, sink := f.start(t, RuleConfig{
		Name: "quarantine", Action: ActionK8sLabel, Label: "vigil.dev/quarantine=true", Condition: minerCondition,
	})
	consume(t, p, podRecord(pod, "xmrig"))
	// The call runs off the pipeline: nothing is audited yet in the batch
	// itself, the audit record follows the API server's answer.
	a := waitRecords(t, sink, "enforcement.action", 1, audits("quarantine"))[0]
	assertAudit(t, a, map[string]string{
		event.AttrEnforcementAction: ActionK8sLabel, event.AttrEnforcementResult: "taken",
		event.AttrEnforcementReason: "rule_matched", event.AttrEnforcementMode: "enforce",
		event.AttrTargetK8sNamespace: pod.Namespace, event.AttrTargetK8sPodName: pod.Name, event.AttrTargetK8sPodUID: string(pod.UID),
		event.AttrEnforcementLabel: "vigil.dev/quarantine=true", event.AttrExecID: "exec-miner",
		event.AttrTargetContainerID: "c0ffee",
	})
	if want := "k8s_label " + pod.Namespace + "/miner vigil.dev/quarantine=true: taken (rule_matched) by quarantine"; a.lr.Body().Str() != want {
		t.Errorf("body %q, want %q", a.lr.Body().Str(), want)
	}
	if v, _ := a.resource.Get(event.AttrK8sPodName); v.Str() != pod.Name {
		t.Error("the audit record has not the event's resource")
	}
	f.waitPod(t, pod, "the quarantine label", func(p *corev1.Pod) bool {
		return p.Labels["vigil.dev/quarantine"] == "true" && p.Labels["app"] == "miner"
	})

	// More events of the pod: one call was enough.
	consume(t, p, podRecord(pod, "xmrig"))
	got := records(sink, audits("quarantine"))
	if len(got) != 2 || got[1].str(event.AttrEnforcementResult) != "skipped" || got[1].str(event.AttrEnforcementReason) != event.ReasonDuplicate {
		t.Errorf("second event: %d audit records, last %v", len(got), got[len(got)-1].lr.Attributes().AsRaw())
	}
	t.Logf("audit record: %s %v", a.lr.Body().Str(), a.lr.Attributes().AsRaw())
}

func (f *kubeFixture) testDeleteNow(t *testing.T) {
	pod := f.pod(t, f.namespace(t), "miner", nil)
	zero := time.Duration(0)
	p, sink := f.start(t, RuleConfig{Name: "evict", Action: ActionK8sDeletePod, GracePeriod: &zero, Condition: minerCondition})
	consume(t, p, podRecord(pod, "xmrig"))
	a := waitRecords(t, sink, "enforcement.action", 1, audits("evict"))[0]
	assertAudit(t, a, map[string]string{
		event.AttrEnforcementResult: "taken", event.AttrTargetK8sPodUID: string(pod.UID),
	})
	if a.int(event.AttrEnforcementGracePeriod) != 0 {
		t.Errorf("grace period %d", a.int(event.AttrEnforcementGracePeriod))
	}
	// Grace 0 removes the object at once, kubelet or not.
	if _, err := f.cs.CoreV1().Pods(pod.Namespace).Get(t.Context(), pod.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the pod is still there: %v", err)
	}
	t.Logf("audit record: %s", a.lr.Body().Str())
}

func (f *kubeFixture) testDeleteGrace(t *testing.T) {
	ns := f.namespace(t)
	own := int64(45)
	byRule := f.pod(t, ns, "by-rule", nil)
	byPod := f.pod(t, ns, "by-pod", func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = &own })
	thirty := 30 * time.Second
	p, sink := f.start(t,
		RuleConfig{Name: "evict-30s", Action: ActionK8sDeletePod, GracePeriod: &thirty,
			Condition: minerCondition + ` and resource.attributes["k8s.pod.name"] == "by-rule"`},
		RuleConfig{Name: "evict-default", Action: ActionK8sDeletePod,
			Condition: minerCondition + ` and resource.attributes["k8s.pod.name"] == "by-pod"`},
	)
	consume(t, p, podRecord(byRule, "xmrig"))
	consume(t, p, podRecord(byPod, "xmrig"))
	for _, rule := range []string{"evict-30s", "evict-default"} {
		a := waitRecords(t, sink, "enforcement.action", 1, audits(rule))[0]
		assertAudit(t, a, map[string]string{event.AttrEnforcementResult: "taken"})
		t.Logf("audit record: %s", a.lr.Body().Str())
	}
	// No kubelet finishes the deletion: the pods stay, terminating, with
	// the rule's grace period, else the pod's own.
	for pod, want := range map[*corev1.Pod]int64{byRule: 30, byPod: own} {
		f.waitPod(t, pod, fmt.Sprintf("a deletion timestamp and a grace period of %ds", want), func(p *corev1.Pod) bool {
			return p.DeletionTimestamp != nil && p.DeletionGracePeriodSeconds != nil && *p.DeletionGracePeriodSeconds == want
		})
	}
}

func (f *kubeFixture) testRecreated(t *testing.T) {
	ns := f.namespace(t)
	old := f.pod(t, ns, "web-0", nil)
	if err := f.cs.CoreV1().Pods(ns).Delete(t.Context(), old.Name, *metav1.NewDeleteOptions(0)); err != nil {
		t.Fatal(err)
	}
	now := f.pod(t, ns, "web-0", nil) // as a StatefulSet recreates it
	zero := time.Duration(0)
	p, sink := f.start(t,
		RuleConfig{Name: "quarantine", Action: ActionK8sLabel, Label: "vigil.dev/quarantine=true", Condition: minerCondition},
		RuleConfig{Name: "evict", Action: ActionK8sDeletePod, GracePeriod: &zero, Condition: minerCondition},
	)
	// The event of the pod that was: same namespace and name, old uid.
	consume(t, p, podRecord(old, "xmrig"))
	for _, rule := range []string{"quarantine", "evict"} {
		a := waitRecords(t, sink, "enforcement.action", 1, audits(rule))[0]
		assertAudit(t, a, map[string]string{
			event.AttrEnforcementResult: "skipped", event.AttrEnforcementReason: event.ReasonPodRecreated,
			event.AttrTargetK8sPodUID: string(old.UID),
		})
		if !strings.Contains(a.str(event.AttrEnforcementError), string(old.UID)) {
			t.Errorf("%s: error %q does not name the uid", rule, a.str(event.AttrEnforcementError))
		}
		t.Logf("audit record: %s", a.lr.Body().Str())
	}
	got, err := f.cs.CoreV1().Pods(ns).Get(t.Context(), now.Name, metav1.GetOptions{})
	if err != nil || got.UID != now.UID || got.DeletionTimestamp != nil || got.Labels["vigil.dev/quarantine"] != "" {
		t.Fatalf("the recreated pod was touched: %v %+v", err, got.ObjectMeta)
	}

	// A pod gone altogether.
	gone := old.DeepCopy()
	gone.Name, gone.UID = "never-was", "00000000-0000-0000-0000-000000000001"
	consume(t, p, podRecord(gone, "xmrig"))
	for _, rule := range []string{"quarantine", "evict"} {
		a := waitRecords(t, sink, "enforcement.action", 2, audits(rule))[1]
		assertAudit(t, a, map[string]string{event.AttrEnforcementResult: "skipped", event.AttrEnforcementReason: event.ReasonPodGone})
	}
}

func (f *kubeFixture) testMonitor(t *testing.T) {
	pod := f.pod(t, f.namespace(t), "miner", nil)
	zero := time.Duration(0)
	p, sink := f.start(t,
		RuleConfig{Name: "quarantine", Action: ActionK8sLabel, Label: "vigil.dev/quarantine=true", Condition: minerCondition, Mode: ModeMonitor},
		RuleConfig{Name: "evict", Action: ActionK8sDeletePod, GracePeriod: &zero, Condition: minerCondition, Mode: ModeMonitor},
	)
	consume(t, p, podRecord(pod, "xmrig"))
	// Audited in the batch itself: nothing is queued.
	for _, rule := range []string{"quarantine", "evict"} {
		a := records(sink, audits(rule))
		if len(a) != 1 {
			t.Fatalf("%s: %d audit records in the batch", rule, len(a))
		}
		assertAudit(t, a[0], map[string]string{
			event.AttrEnforcementMode: "monitor", event.AttrEnforcementResult: "skipped", event.AttrEnforcementReason: "monitor",
			event.AttrTargetK8sPodName: pod.Name,
		})
	}
	// Shutdown waits for every queued call to the API server: after it,
	// anything monitor mode had queued would have been done.
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := f.cs.CoreV1().Pods(pod.Namespace).Get(t.Context(), pod.Name, metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp != nil || got.Labels["vigil.dev/quarantine"] != "" {
		t.Fatalf("monitor mode changed the pod: %v %+v", err, got.ObjectMeta)
	}
}

func (f *kubeFixture) testNoPod(t *testing.T) {
	p, sink := f.start(t, RuleConfig{Name: "quarantine", Action: ActionK8sLabel, Label: "vigil.dev/quarantine=true", Condition: minerCondition})
	// A host process: the k8s_workload processor found no pod.
	consume(t, p, processRecord(4242, 1, "xmrig"))
	a := records(sink, audits("quarantine"))
	if len(a) != 1 {
		t.Fatalf("%d audit records", len(a))
	}
	assertAudit(t, a[0], map[string]string{event.AttrEnforcementResult: "skipped", event.AttrEnforcementReason: event.ReasonNoTarget})
	if !strings.Contains(a[0].str(event.AttrEnforcementError), "k8s_workload") {
		t.Errorf("error %q", a[0].str(event.AttrEnforcementError))
	}
	t.Logf("audit record: %s", a[0].lr.Body().Str())
}

// testForbidden runs the collector as the shipped manifests do, with their
// ClusterRole (get, list, watch): the actions are refused, audited as
// failed with the hint; once the README's extra rule is bound too, they
// are taken.
func (f *kubeFixture) testForbidden(t *testing.T) {
	ns := f.namespace(t)
	pod := f.pod(t, ns, "miner", nil)
	user := f.serviceAccount(t, ns, "collector", shippedClusterRole(t))
	userHost, _ := k8smetatest.Start(t, user, testNode)
	p, sink := f.startWith(t, userHost,
		RuleConfig{Name: "quarantine", Action: ActionK8sLabel, Label: "vigil.dev/quarantine=true", Condition: minerCondition},
		RuleConfig{Name: "evict", Action: ActionK8sDeletePod, Condition: minerCondition},
	)
	consume(t, p, podRecord(pod, "xmrig"))
	for rule, verb := range map[string]string{"quarantine": "patch", "evict": "delete"} {
		a := waitRecords(t, sink, "enforcement.action", 1, audits(rule))[0]
		assertAudit(t, a, map[string]string{event.AttrEnforcementResult: "failed", event.AttrEnforcementReason: "error"})
		msg := a.str(event.AttrEnforcementError)
		if !strings.Contains(msg, "forbidden") || !strings.Contains(msg, `ClusterRole needs "`+verb+`" on pods`) {
			t.Errorf("%s: error %q", rule, msg)
		}
		t.Logf("audit record: %s", a.lr.Body().Str())
	}

	// The README's ClusterRole for the Kubernetes actions.
	extra := readmeClusterRole(t)
	f.bind(t, ns, "collector", extra)
	f.waitAllowed(t, "system:serviceaccount:"+ns+":collector", ns, "delete")
	// A failed call is not held as a duplicate: the next event retries.
	consume(t, p, podRecord(pod, "xmrig"))
	for _, rule := range []string{"quarantine", "evict"} {
		a := waitRecords(t, sink, "enforcement.action", 2, audits(rule))[1]
		assertAudit(t, a, map[string]string{event.AttrEnforcementResult: "taken"})
	}
}

// testShutdown: the calls queued when the collector stops are made, and
// audited, before Shutdown returns.
func (f *kubeFixture) testShutdown(t *testing.T) {
	ns := f.namespace(t)
	p, sink := f.start(t, RuleConfig{Name: "quarantine", Action: ActionK8sLabel, Label: "vigil.dev/quarantine=true", Condition: minerCondition})
	var pods []*corev1.Pod
	for i := range 5 {
		pod := f.pod(t, ns, fmt.Sprintf("miner-%d", i), nil)
		pods = append(pods, pod)
		consume(t, p, podRecord(pod, "xmrig"))
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a := records(sink, audits("quarantine")); len(a) != len(pods) {
		t.Fatalf("%d audit records after Shutdown, want %d", len(a), len(pods))
	}
	for _, pod := range pods {
		f.waitPod(t, pod, "the quarantine label", func(p *corev1.Pod) bool { return p.Labels["vigil.dev/quarantine"] == "true" })
	}
	// After Shutdown, nothing is queued any more.
	late := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "late", UID: "00000000-0000-0000-0000-000000000002"}}
	consume(t, p, podRecord(late, "xmrig"))
	a := records(sink, audits("quarantine"))
	if last := a[len(a)-1]; last.str(event.AttrEnforcementResult) != "failed" || !strings.Contains(last.str(event.AttrEnforcementError), "shutting down") {
		t.Errorf("after Shutdown: %v", last.lr.Attributes().AsRaw())
	}
}

// TestK8sQueueFullIsSkipped: actions beyond k8s_queue_size are audited as
// skipped (queue_full), as are those beyond the rule's rate_limit; a burst
// of one pod's events costs one action. No worker runs (the processor is
// not started), so the queue only fills.
func TestK8sQueueFullIsSkipped(t *testing.T) {
	cfg := testConfig("",
		RuleConfig{Name: "quarantine", Action: ActionK8sLabel, Label: "vigil.dev/quarantine=true", Condition: minerCondition, RateLimit: "3/1h"})
	cfg.K8sMetadata, cfg.K8sQueueSize = "k8s_metadata", 2
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sink := new(consumertest.LogsSink)
	p, err := newProcessor(cfg, processortest.NewNopSettings(typ), sink)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	for i, name := range []string{"a", "a", "b", "c", "d"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)}}
		ld := podRecord(pod, "xmrig")
		ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().PutStr(event.AttrExecID, fmt.Sprint(i))
		consume(t, p, ld)
	}
	got := map[string]string{}
	for _, a := range records(sink, audits("quarantine")) {
		got[a.str(event.AttrExecID)] = a.str(event.AttrEnforcementResult) + "/" + a.str(event.AttrEnforcementReason)
	}
	// 0 and 2 are queued: no record until the API server answers.
	want := map[string]string{"1": "skipped/duplicate", "3": "skipped/queue_full", "4": "skipped/rate_limited"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audits %v, want %v", got, want)
	}
}

// minerCondition matches the records of podRecord(..., "xmrig").
const minerCondition = `event_name == "process.exec" and attributes["process.command_line"] == "xmrig"`

// podRecord is a process.exec record of a container of pod, with the
// resource the k8s_workload processor gives it.
func podRecord(pod *corev1.Pod, commandLine string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr(event.AttrContainerID, "c0ffee")
	res.PutStr(event.AttrK8sNamespace, pod.Namespace)
	res.PutStr(event.AttrK8sPodName, pod.Name)
	res.PutStr(event.AttrK8sPodUID, string(pod.UID))
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(event.NameProcessExec)
	lr.Attributes().PutStr(event.AttrProcessCommandLine, commandLine)
	lr.Attributes().PutStr(event.AttrExecID, "exec-"+pod.Name)
	return ld
}

func consume(t *testing.T, p *enforcementProcessor, ld plog.Logs) {
	t.Helper()
	if err := p.ConsumeLogs(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
}

func assertAudit(t *testing.T, a record, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := a.str(k); got != v {
			t.Errorf("audit %s = %q, want %q (%v)", k, got, v, a.lr.Attributes().AsRaw())
		}
	}
}

// start runs the processor with rules, on the admin extension.
func (f *kubeFixture) start(t *testing.T, rules ...RuleConfig) (*enforcementProcessor, *consumertest.LogsSink) {
	return f.startWith(t, f.host, rules...)
}

func (f *kubeFixture) startWith(t *testing.T, host k8smetatest.Host, rules ...RuleConfig) (*enforcementProcessor, *consumertest.LogsSink) {
	t.Helper()
	cfg := testConfig("", rules...)
	cfg.K8sMetadata = k8smetatest.ID.String()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sink := new(consumertest.LogsSink)
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(typ), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	return p.(*enforcementProcessor), sink
}

func (f *kubeFixture) namespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("enforcement-%d", f.n.Add(1))
	if _, err := f.cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// No controller-manager creates it; pods need it.
	if _, err := f.cs.CoreV1().ServiceAccounts(name).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// pod creates a pod on testNode, labelled app=<name>.
func (f *kubeFixture) pod(t *testing.T, ns, name string, edit func(*corev1.Pod)) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{NodeName: testNode, Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1.0"}}},
	}
	if edit != nil {
		edit(pod)
	}
	pod, err := f.cs.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// waitPod polls the API server until the pod satisfies ok.
func (f *kubeFixture) waitPod(t *testing.T, pod *corev1.Pod, what string, ok func(*corev1.Pod) bool) {
	t.Helper()
	var last *corev1.Pod
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got, err := f.cs.CoreV1().Pods(pod.Namespace).Get(t.Context(), pod.Name, metav1.GetOptions{})
		if err == nil && got.UID == pod.UID && ok(got) {
			return
		}
		last = got
	}
	t.Fatalf("pod %s/%s: no %s within 10s: %+v", pod.Namespace, pod.Name, what, last)
}

// serviceAccount creates a service account bound to role and returns a
// kubeconfig with a token of it.
func (f *kubeFixture) serviceAccount(t *testing.T, ns, name string, role *rbacv1.ClusterRole) string {
	t.Helper()
	ctx := t.Context()
	if _, err := f.cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.bind(t, ns, name, role)
	f.waitAllowed(t, "system:serviceaccount:"+ns+":"+name, "", "list")
	tok, err := f.cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: f.kube.Config.Host, CertificateAuthorityData: f.kube.Config.CAData}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: name}
	cfg.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// bind creates role (named after the namespace, to be unique) and binds
// it to the service account.
func (f *kubeFixture) bind(t *testing.T, ns, account string, role *rbacv1.ClusterRole) {
	t.Helper()
	ctx := t.Context()
	role = role.DeepCopy()
	role.Name = ns + "-" + role.Name
	role.ResourceVersion = ""
	if _, err := f.cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: account, Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitAllowed waits for the authorizer to let user do verb on pods: it
// sees new bindings through an informer.
func (f *kubeFixture) waitAllowed(t *testing.T, user, ns, verb string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		r, err := f.cs.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:authenticated"},
			ResourceAttributes: &authzv1.ResourceAttributes{Namespace: ns, Verb: verb, Resource: "pods"},
		}}, metav1.CreateOptions{})
		if err == nil && r.Status.Allowed {
			return
		}
	}
	t.Fatalf("%s may not %s pods after 10s", user, verb)
}

// shippedClusterRole is the collector's ClusterRole of
// distribution/kubernetes/rbac.yaml.
func shippedClusterRole(t *testing.T) *rbacv1.ClusterRole {
	t.Helper()
	data, err := os.ReadFile("../../distribution/kubernetes/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return clusterRoleIn(t, data)
}

// readmeClusterRole is the ClusterRole the README documents for the
// Kubernetes actions.
func readmeClusterRole(t *testing.T) *rbacv1.ClusterRole {
	t.Helper()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(data, -1) {
		if bytes.Contains(m[1], []byte("kind: ClusterRole\n")) {
			return clusterRoleIn(t, m[1])
		}
	}
	t.Fatal("no ClusterRole in README.md")
	return nil
}

func clusterRoleIn(t *testing.T, data []byte) *rbacv1.ClusterRole {
	t.Helper()
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var role rbacv1.ClusterRole
		if err := dec.Decode(&role); err != nil {
			t.Fatalf("no ClusterRole: %v", err)
		}
		if role.Kind == "ClusterRole" {
			return &role
		}
	}
}
