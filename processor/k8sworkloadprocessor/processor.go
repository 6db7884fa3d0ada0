package k8sworkloadprocessor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/extension/k8smetaextension"
	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/k8s"
	"github.com/vigilsec/vigil/processor/k8sworkloadprocessor/internal/metadata"
)

// Values of the metric's result attribute.
const (
	resultFound   = "found"
	resultWaited  = "waited"
	resultMissing = "missing"
)

// missedMemory bounds the containers remembered as never found (see
// workloadProcessor.missed); when it is reached the memory starts over.
const missedMemory = 4096

// workloadProcessor labels the ResourceLogs of each container with its pod
// and workload, holding those of containers the cache does not know yet.
type workloadProcessor struct {
	cfg         *Config
	logger      *zap.Logger
	next        consumer.Logs
	labels      []extractRule
	annotations []extractRule

	metric  metric.Int64Counter
	results map[string]metric.AddOption
	counts  counts

	// cache is set by Start, before the pipeline sends anything.
	cache *k8s.Cache

	// ctx ends at Shutdown, which ends every wait: held records are
	// flushed, never dropped.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	pending map[string]*pendingContainer // by container id
	held    int                          // log records in pending
	// missed are containers whose wait ended without a pod: their later
	// records pass on at once, so that a container outside Kubernetes
	// (a sandbox, something the runtime runs for itself) does not delay
	// each of its records by wait_for_metadata. A pod that shows up later
	// is still found: the cache is asked first.
	missed map[string]struct{}
	closed bool
}

// pendingContainer holds the records of one container, in arrival order,
// until its pod is known or its wait ends.
type pendingContainer struct {
	logs    plog.Logs
	records int
	cancel  context.CancelFunc
	// releasing: the wait is over and the waiting goroutine is passing
	// the records on; later records still queue behind them, to keep the
	// container's order.
	releasing bool
}

// counts mirrors the metric for tests.
type counts struct {
	found, waited, missing atomic.Int64
}

func newProcessor(cfg *Config, set processor.Settings, next consumer.Logs) (*workloadProcessor, error) {
	p := &workloadProcessor{
		cfg:     cfg,
		logger:  set.Logger,
		next:    next,
		pending: map[string]*pendingContainer{},
		missed:  map[string]struct{}{},
		results: map[string]metric.AddOption{},
	}
	for i, f := range cfg.Extract.Labels {
		r, err := f.compile("labels")
		if err != nil {
			return nil, fmt.Errorf("extract.labels[%d]: %w", i, err)
		}
		p.labels = append(p.labels, r)
	}
	for i, f := range cfg.Extract.Annotations {
		r, err := f.compile("annotations")
		if err != nil {
			return nil, fmt.Errorf("extract.annotations[%d]: %w", i, err)
		}
		p.annotations = append(p.annotations, r)
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("k8s_workload processor: creating its metric: %w", err)
	}
	p.metric = tb.ProcessorK8sWorkloadMetadata
	for _, r := range []string{resultFound, resultWaited, resultMissing} {
		p.results[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", r)))
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p, nil
}

func (p *workloadProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: true}
}

// Start finds the k8s_metadata extension; extensions start before
// pipelines, so its cache exists by now.
func (p *workloadProcessor) Start(_ context.Context, host component.Host) error {
	md, err := k8smetaextension.FromHost(host, p.cfg.K8sMetadata)
	if err != nil {
		return fmt.Errorf("k8s_workload: k8s_metadata: %w", err)
	}
	c := md.Cache()
	if c == nil {
		return fmt.Errorf("k8s_workload: k8s_metadata: extension %q has no cache: it has not started", p.cfg.K8sMetadata)
	}
	p.cache = c
	return nil
}

// Shutdown ends every wait and returns once the held records have been
// passed on, without metadata unless the cache knows their container by
// now. Processors shut down before the components after them, so the next
// consumer still takes them.
func (p *workloadProcessor) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("k8s_workload: shutdown before the held records were passed on: %w", ctx.Err())
	}
}

// kept is a ResourceLogs that goes on in the caller's batch, with the pod
// to label it with (nil: none).
type kept struct {
	pod *k8s.Pod
	ctr k8s.Container
}

// ConsumeLogs labels the ResourceLogs of known containers and passes them
// on; those of containers the cache does not know yet are held, so that
// neither they are lost nor the others wait for them.
func (p *workloadProcessor) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if p.cache == nil {
		return p.next.ConsumeLogs(ctx, ld)
	}
	var (
		decide  []kept
		missing int
		found   int
		// flushed are the held records of containers that overflowed
		// max_pending: they go ahead of the batch, which may hold later
		// records of the same containers.
		flushed = plog.NewLogs()
	)
	p.mu.Lock()
	ld.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		id := containerID(rl)
		if id == "" {
			decide = append(decide, kept{})
			return false
		}
		n := recordCount(rl)
		e := p.pending[id]
		full := p.held+n > p.cfg.MaxPending
		if e != nil && full {
			// The container's held records go on ahead of this one,
			// which keeps its order. Those already on their way from
			// await may be overtaken: waiting for them here would make
			// every container wait for the next consumer.
			if !e.releasing {
				e.logs.ResourceLogs().MoveAndAppendTo(flushed.ResourceLogs())
				p.held -= e.records
				e.cancel()
				delete(p.pending, id)
			}
			e = nil
		}
		if e == nil {
			if pod, ctr, ok := p.cache.ByContainerID(id); ok {
				decide = append(decide, kept{pod, ctr})
				found += n
				return false
			}
			_, gaveUp := p.missed[id]
			if full || gaveUp || p.closed || p.cfg.WaitForMetadata <= 0 {
				decide = append(decide, kept{})
				missing += n
				return false
			}
			e = p.hold(id)
		}
		rl.MoveTo(e.logs.ResourceLogs().AppendEmpty())
		e.records += n
		p.held += n
		return true
	})
	p.mu.Unlock()

	for i, rl := range ld.ResourceLogs().All() {
		if k := decide[i]; k.pod != nil {
			p.decorate(rl.Resource().Attributes(), k.pod, k.ctr)
		}
	}
	p.count(ctx, resultFound, found)
	p.count(ctx, resultMissing, missing)
	if flushed.ResourceLogs().Len() > 0 {
		p.label(ctx, flushed)
		ld.ResourceLogs().MoveAndAppendTo(flushed.ResourceLogs())
		ld = flushed
	}
	if ld.ResourceLogs().Len() == 0 {
		return nil
	}
	return p.next.ConsumeLogs(ctx, ld)
}

// hold starts holding the records of container id until the cache knows
// it or wait_for_metadata has passed. p.mu is held.
func (p *workloadProcessor) hold(id string) *pendingContainer {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.WaitForMetadata)
	e := &pendingContainer{logs: plog.NewLogs(), cancel: cancel}
	p.pending[id] = e
	p.wg.Add(1)
	go p.await(ctx, id, e)
	return e
}

// await waits for container id, then passes on its held records, and
// those that queue behind them meanwhile, until none is left.
func (p *workloadProcessor) await(ctx context.Context, id string, e *pendingContainer) {
	defer p.wg.Done()
	defer e.cancel()
	_, _, found := p.cache.WaitForContainer(ctx, id)
	timedOut := !found && errors.Is(ctx.Err(), context.DeadlineExceeded)
	for {
		p.mu.Lock()
		if p.pending[id] != e {
			// max_pending overflowed and the caller took the records.
			p.mu.Unlock()
			return
		}
		if e.records == 0 {
			delete(p.pending, id)
			if timedOut {
				if len(p.missed) >= missedMemory {
					clear(p.missed)
				}
				p.missed[id] = struct{}{}
			}
			p.mu.Unlock()
			return
		}
		logs := e.logs
		p.held -= e.records
		e.logs, e.records, e.releasing = plog.NewLogs(), 0, true
		p.mu.Unlock()

		// The records' own contexts have returned long ago.
		bg := context.Background()
		p.label(bg, logs)
		if err := p.next.ConsumeLogs(bg, logs); err != nil {
			p.logger.Error("Passing on records held for Kubernetes metadata failed",
				zap.String("container.id", id), zap.Error(err))
		}
	}
}

// label decorates held records whose container the cache knows by now and
// counts them as waited, the others as missing.
func (p *workloadProcessor) label(ctx context.Context, ld plog.Logs) {
	for _, rl := range ld.ResourceLogs().All() {
		n := recordCount(rl)
		if pod, ctr, ok := p.cache.ByContainerID(containerID(rl)); ok {
			p.decorate(rl.Resource().Attributes(), pod, ctr)
			p.count(ctx, resultWaited, n)
		} else {
			p.count(ctx, resultMissing, n)
		}
	}
}

// decorate sets the attributes of pod and its container ctr on res,
// leaving every attribute res already has as it is.
func (p *workloadProcessor) decorate(res pcommon.Map, pod *k8s.Pod, ctr k8s.Container) {
	// set takes extracted values as they are: an empty label value is a
	// value (node-role.kubernetes.io/control-plane: "").
	set := func(k, v string) {
		if _, ok := res.Get(k); !ok {
			res.PutStr(k, v)
		}
	}
	put := func(k, v string) {
		if v != "" {
			set(k, v)
		}
	}
	put(event.AttrK8sPodName, pod.Name)
	put(event.AttrK8sPodUID, pod.UID)
	put(event.AttrK8sNamespace, pod.Namespace)
	put(event.AttrK8sNodeName, pod.NodeName)
	put(event.AttrK8sContainer, ctr.Name)
	put(event.AttrContainerImageName, ctr.ImageName)
	if _, ok := res.Get(event.AttrContainerImageTags); !ok && ctr.ImageTag != "" {
		res.PutEmptySlice(event.AttrContainerImageTags).AppendEmpty().SetStr(ctr.ImageTag)
	}
	for _, o := range pod.Owners {
		put("k8s."+strings.ToLower(o.Kind)+".name", o.Name)
	}
	var nsLabels map[string]string
	for _, r := range p.labels {
		if !r.namespace {
			r.apply(pod.Labels, set)
			continue
		}
		if nsLabels == nil {
			nsLabels, _ = p.cache.NamespaceLabels(pod.Namespace)
		}
		r.apply(nsLabels, set)
	}
	for _, r := range p.annotations {
		r.apply(pod.Annotations, set)
	}
}

func (p *workloadProcessor) count(ctx context.Context, result string, n int) {
	if n == 0 {
		return
	}
	switch result {
	case resultFound:
		p.counts.found.Add(int64(n))
	case resultWaited:
		p.counts.waited.Add(int64(n))
	case resultMissing:
		p.counts.missing.Add(int64(n))
	}
	p.metric.Add(ctx, int64(n), p.results[result])
}

func containerID(rl plog.ResourceLogs) string {
	v, ok := rl.Resource().Attributes().Get(event.AttrContainerID)
	if !ok {
		return ""
	}
	return v.Str()
}

func recordCount(rl plog.ResourceLogs) int {
	n := 0
	for _, sl := range rl.ScopeLogs().All() {
		n += sl.LogRecords().Len()
	}
	return n
}
