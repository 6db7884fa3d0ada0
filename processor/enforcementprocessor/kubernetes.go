package enforcementprocessor

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/vigilsec/vigil/extension/k8smetaextension"
	"github.com/vigilsec/vigil/internal/event"
)

const (
	// k8sWorkers is how many Kubernetes API calls run at once. The
	// client's own rate limit (5 per second, bursts of 10) is what bounds
	// the load on the API server; this only keeps one slow call from
	// holding the others.
	k8sWorkers = 4
	// k8sRecent is how long a rule leaves alone a pod it has acted on:
	// the events of a pod being quarantined or deleted keep matching for
	// a while, and each would be one more call doing nothing new.
	k8sRecent = time.Minute
	// fieldManager names Vigil in the pod's managedFields.
	fieldManager = "vigil-enforcement"
)

// podRef is the pod a Kubernetes action aims at.
type podRef struct{ namespace, name, uid string }

// podOf reads the pod of an event from the resource attributes the
// k8s_workload processor sets.
func podOf(res pcommon.Map) (podRef, bool) {
	p := podRef{
		namespace: strAttr(res, event.AttrK8sNamespace),
		name:      strAttr(res, event.AttrK8sPodName),
		uid:       strAttr(res, event.AttrK8sPodUID),
	}
	return p, p.namespace != "" && p.name != "" && p.uid != ""
}

func (p podRef) String() string { return p.namespace + "/" + p.name }

// auditRecord is an enforcement.action record: event.Enforcement and the
// target of the Kubernetes actions, which it has no fields for.
type auditRecord struct {
	event.Enforcement
	pod   podRef
	label string // k8s_label's "key=value"
	grace *int64 // k8s_delete_pod's grace period; nil: the pod's
}

// fill writes the record into lr: event.Enforcement's attributes and body,
// with the pod after the action in the body ("k8s_label default/xwing
// vigil.dev/quarantine=true: taken (rule_matched) by quarantine").
func (a auditRecord) fill(lr plog.LogRecord) {
	a.Enforcement.Fill(lr)
	if !isK8sAction(a.Action) {
		return
	}
	attrs := lr.Attributes()
	putNonEmpty(attrs, event.AttrTargetK8sNamespace, a.pod.namespace)
	putNonEmpty(attrs, event.AttrTargetK8sPodName, a.pod.name)
	putNonEmpty(attrs, event.AttrTargetK8sPodUID, a.pod.uid)
	putNonEmpty(attrs, event.AttrEnforcementLabel, a.label)
	what := ""
	if a.pod.name != "" {
		what = " " + a.pod.String()
	}
	if a.label != "" {
		what += " " + a.label
	}
	if a.grace != nil {
		attrs.PutInt(event.AttrEnforcementGracePeriod, *a.grace)
		what += " grace " + strconv.FormatInt(*a.grace, 10) + "s"
	}
	// The body is "action: result..." when the record has no binary, pid
	// or destination, as the Kubernetes actions' have not.
	if body := lr.Body().Str(); what != "" && strings.HasPrefix(body, a.Action+":") {
		lr.Body().SetStr(a.Action + what + body[len(a.Action):])
	}
}

func putNonEmpty(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

// appendAudits adds records to logs in one new ResourceLogs carrying a copy
// of resource, as event.AppendEnforcement does, with the Kubernetes
// targets.
func appendAudits(logs plog.Logs, resource pcommon.Resource, version string, records []auditRecord) {
	if len(records) == 0 {
		return
	}
	es := make([]event.Enforcement, len(records))
	for i, a := range records {
		es[i] = a.Enforcement
	}
	event.AppendEnforcement(logs, resource, version, es)
	rls := logs.ResourceLogs()
	recs := rls.At(rls.Len() - 1).ScopeLogs().At(0).LogRecords()
	for i, a := range records {
		a.fill(recs.At(i))
	}
}

// k8sJob is one Kubernetes action waiting for a worker.
type k8sJob struct {
	rule  *rule
	audit auditRecord
	// resource is a copy of the triggering record's resource, for the
	// audit record: the batch itself has gone on.
	resource pcommon.Resource
	key      string
}

// kubeActions runs the Kubernetes actions off the pipeline: ConsumeLogs
// queues them, k8sWorkers workers call the API server, each with a timeout,
// and hand the outcome to done, which emits the audit record.
type kubeActions struct {
	timeout time.Duration
	queue   chan k8sJob
	done    func(k8sJob)
	client  kubernetes.Interface

	mu     sync.Mutex
	closed bool
	// recent holds, per rule and pod uid, until when the rule leaves the
	// pod alone; the zero time while its call waits or runs.
	recent    map[string]time.Time
	nextPrune time.Time

	ctx    context.Context // cancelled when Shutdown runs out of time
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newKubeActions(cfg *Config, done func(k8sJob)) *kubeActions {
	ctx, cancel := context.WithCancel(context.Background())
	return &kubeActions{
		timeout: cfg.K8sTimeout, queue: make(chan k8sJob, cfg.K8sQueueSize), done: done,
		recent: map[string]time.Time{}, ctx: ctx, cancel: cancel,
	}
}

// start connects with the k8s_metadata extension's credentials and starts
// the workers.
func (k *kubeActions) start(host component.Host, extension, version string) error {
	var id component.ID
	if err := id.UnmarshalText([]byte(extension)); err != nil {
		return fmt.Errorf("enforcement processor: k8s_metadata: %w", err)
	}
	md, err := k8smetaextension.FromHost(host, id)
	if err != nil {
		return fmt.Errorf("enforcement processor: k8s_metadata: %w", err)
	}
	if md.RESTConfig() == nil {
		return fmt.Errorf("enforcement processor: k8s_metadata: extension %q has no connection: it has not started", id)
	}
	// A copy: the extension's config is shared with its informers.
	cfg := rest.CopyConfig(md.RESTConfig())
	cfg.UserAgent = "otelcol-vigil/" + version + " (enforcement processor)"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("enforcement processor: kubernetes client: %w", err)
	}
	k.client = client
	for range k8sWorkers {
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			for job := range k.queue {
				k.run(job)
			}
		}()
	}
	return nil
}

// stop refuses new actions and waits for the queued ones to finish; when
// ctx ends first, the calls still waiting or running are cancelled, and
// audited as failed.
func (k *kubeActions) stop(ctx context.Context) {
	k.mu.Lock()
	if !k.closed {
		k.closed = true
		close(k.queue)
	}
	k.mu.Unlock()
	finished := make(chan struct{})
	go func() { k.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		k.cancel()
		<-finished
	}
	k.cancel()
}

func k8sKey(r *rule, pod podRef) string { return r.Name + "\x00" + pod.uid }

// duplicate reports whether the rule has a call for the pod waiting, or
// acted on it less than k8sRecent ago.
func (k *kubeActions) duplicate(r *rule, pod podRef, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.isRecent(k8sKey(r, pod), now)
}

func (k *kubeActions) isRecent(key string, now time.Time) bool {
	until, ok := k.recent[key]
	return ok && (until.IsZero() || now.Before(until))
}

// enqueue queues a job without waiting; it returns "" when the job was
// queued, else the reason it was not.
func (k *kubeActions) enqueue(job k8sJob, now time.Time) (reason, detail string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return event.ReasonError, "the processor is shutting down"
	}
	if now.After(k.nextPrune) {
		for key, until := range k.recent {
			if !until.IsZero() && !now.Before(until) {
				delete(k.recent, key)
			}
		}
		k.nextPrune = now.Add(k8sRecent)
	}
	job.key = k8sKey(job.rule, job.audit.pod)
	// Checked again: another batch may have queued the pod since.
	if k.isRecent(job.key, now) {
		return event.ReasonDuplicate, ""
	}
	select {
	case k.queue <- job:
		k.recent[job.key] = time.Time{}
		return "", ""
	default:
		return event.ReasonQueueFull, fmt.Sprintf("%d Kubernetes actions are waiting (k8s_queue_size)", cap(k.queue))
	}
}

// run makes one call and hands the outcome on.
func (k *kubeActions) run(job k8sJob) {
	e := &job.audit.Enforcement
	err := k.call(job.rule, job.audit.pod)
	e.Time = time.Now()
	e.Result, e.Reason, e.Error = outcome(job.rule, job.audit.pod, err)
	k.mu.Lock()
	if e.Result == event.ResultFailed {
		// A later event may try again: RBAC may have been fixed.
		delete(k.recent, job.key)
	} else {
		k.recent[job.key] = time.Now().Add(k8sRecent)
	}
	k.mu.Unlock()
	k.done(job)
}

// call labels or deletes the pod, only if it still has the event's uid.
func (k *kubeActions) call(r *rule, pod podRef) error {
	ctx, cancel := context.WithTimeout(k.ctx, k.timeout)
	defer cancel()
	pods := k.client.CoreV1().Pods(pod.namespace)
	switch r.Action {
	case ActionK8sLabel:
		// A JSON merge patch of metadata.labels; the uid in it changes
		// nothing but makes the API server refuse the patch when the pod
		// of that name is another one (metadata.uid is immutable).
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"uid":    pod.uid,
			"labels": map[string]string{r.labelKey: r.labelValue},
		}})
		if err != nil {
			return err
		}
		_, err = pods.Patch(ctx, pod.name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
		return err
	case ActionK8sDeletePod:
		return pods.Delete(ctx, pod.name, metav1.DeleteOptions{
			GracePeriodSeconds: r.grace,
			Preconditions:      metav1.NewUIDPreconditions(pod.uid),
		})
	}
	return fmt.Errorf("%s is not a Kubernetes action", r.Action)
}

// outcome is the result, reason and error of a call's answer.
func outcome(r *rule, pod podRef, err error) (result, reason, detail string) {
	switch {
	case err == nil:
		return event.ResultTaken, event.ReasonRuleMatched, ""
	case apierrors.IsNotFound(err):
		return event.ResultSkipped, event.ReasonPodGone, ""
	case apierrors.IsConflict(err) || (apierrors.IsInvalid(err) && invalidField(err, "metadata.uid")):
		// Conflict: the delete's uid precondition; Invalid: the patch
		// tried to change the uid of the pod now holding the name.
		return event.ResultSkipped, event.ReasonPodRecreated, fmt.Sprintf("pod %s is no longer uid %s: %v", pod, pod.uid, err)
	case apierrors.IsForbidden(err):
		verb := "patch"
		if r.Action == ActionK8sDeletePod {
			verb = "delete"
		}
		return event.ResultFailed, event.ReasonError, fmt.Sprintf(
			"%v (RBAC: the collector's ClusterRole needs %q on pods for %s; see the enforcement processor's README)", err, verb, r.Action)
	default:
		return event.ResultFailed, event.ReasonError, err.Error()
	}
}

func invalidField(err error, field string) bool {
	status, ok := err.(apierrors.APIStatus)
	if !ok || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if c.Field == field {
			return true
		}
	}
	return false
}

// emitK8s is kubeActions' done: it counts the action and passes its audit
// record to the next consumer, in a batch of its own.
func (p *enforcementProcessor) emitK8s(job k8sJob) {
	a, r := job.audit, job.rule
	p.count(context.Background(), r, a.Result)
	if a.Result == event.ResultFailed {
		p.set.Logger.Warn("enforcement action failed", zap.String("rule", r.Name), zap.String("action", r.Action),
			zap.String("pod", a.pod.String()), zap.String("error", a.Error))
	}
	if !r.audit {
		return
	}
	ld := plog.NewLogs()
	appendAudits(ld, job.resource, p.set.BuildInfo.Version, []auditRecord{a})
	if err := p.next.ConsumeLogs(context.Background(), ld); err != nil {
		p.set.Logger.Warn("passing on the audit record of a Kubernetes action", zap.String("rule", r.Name), zap.Error(err))
	}
}
