package ebpfreceiver

import (
	"context"
	"maps"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/receiver/ebpfreceiver/internal/metadata"
)

// Reasons an event is lost (vigil.events.lost, attribute reason).
const (
	lostRingBufferFull = metadata.AttributeLostReasonRingBufferFull
	lostConsumer       = metadata.AttributeLostReasonConsumerRefused
	lostUndecodable    = metadata.AttributeLostReasonUndecodable
	// lostRateLimited are matched calls a selector's rateLimit held back,
	// counted in the kernel.
	lostRateLimited = metadata.AttributeLostReasonRateLimited
)

func (r *ebpfReceiver) metricsLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.MetricsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			md := r.collectMetrics()
			opCtx := r.obs.StartMetricsOp(ctx)
			err := r.metrics.ConsumeMetrics(opCtx, md)
			r.obs.EndMetricsOp(opCtx, obsFormat, md.DataPointCount(), err)
			if err != nil {
				r.set.Logger.Debug("next consumer refused metrics", zap.Error(err))
			}
		}
	}
}

// collectMetrics snapshots the counters as cumulative sums: since Start,
// and for a policy's hooks since its running version was installed.
func (r *ebpfReceiver) collectMetrics() pmetric.Metrics {
	mb := r.mb
	now := pcommon.NewTimestampFromTime(time.Now())
	rb := mb.NewResourceBuilder()
	rb.SetHostName(r.host.Name)
	if r.host.NodeName != "" {
		rb.SetK8sNodeName(r.host.NodeName)
	}
	res := rb.Emit()

	mb.RecordVigilEventsDataPoint(now, int64(r.stats.exec.Load()), event.NameProcessExec)
	mb.RecordVigilEventsDataPoint(now, int64(r.stats.exit.Load()), event.NameProcessExit)
	for k, n := range r.stats.hookEvents() {
		mb.RecordVigilEventsDataPoint(now, int64(n), k.name, metadata.WithPolicyEventMetricAttribute(k.policy),
			metadata.WithExecutableMetricAttribute(k.binary))
	}

	hooks, rateLimited, err := r.policies.hookCounts()
	if err != nil {
		r.set.Logger.Warn("reading the policy hooks' kernel counters", zap.Error(err))
	}
	for _, h := range hooks {
		rateLimited += h.RateLimited
	}
	kernelDrops, err := r.sensor.Drops()
	if err != nil {
		r.set.Logger.Warn("reading kernel drop counters", zap.Error(err))
	}
	for reason, n := range map[metadata.AttributeLostReason]uint64{
		lostRingBufferFull: kernelDrops,
		lostConsumer:       r.stats.consumerRefused.Load(),
		lostUndecodable:    r.stats.undecodable.Load(),
		lostRateLimited:    rateLimited,
	} {
		mb.RecordVigilEventsLostDataPoint(now, int64(n), reason)
	}

	progs, err := r.sensor.ProgramStats()
	if err != nil {
		r.set.Logger.Warn("reading the kernel's counts of Vigil's programs", zap.Error(err))
	}
	for name, st := range progs {
		mb.RecordVigilBpfSkippedRunsDataPoint(now, int64(st.Skipped), name)
		// Runs are counted only while the kernel's BPF statistics are
		// on: no series at all rather than zeros that look like idle
		// programs.
		if st.Runs > 0 {
			mb.RecordVigilBpfRunsDataPoint(now, int64(st.Runs), name)
			mb.RecordVigilBpfRunTimeDataPoint(now, st.RunTime.Seconds(), name)
		}
	}

	for action, results := range r.requests.Counts() {
		a, ok := metadata.MapAttributeRequestAction[action]
		if !ok {
			continue
		}
		for result, n := range results {
			if res, ok := metadata.MapAttributeRequestResult[result]; ok {
				mb.RecordVigilPolicyRequestsDataPoint(now, int64(n), a, res)
			}
		}
	}

	running, refusals := r.policies.counts()
	mb.RecordVigilPoliciesRefusedDataPoint(now, int64(refusals), metadata.AttributeRefusalReasonRefused)
	mb.RecordVigilPoliciesLoadedDataPoint(now, int64(running))

	fill, err := r.sensor.MapFill()
	if err != nil {
		r.set.Logger.Warn("reading the fill of the kernel's maps", zap.Error(err))
	}
	for name, f := range fill {
		mb.RecordVigilBpfMapEntriesDataPoint(now, int64(f.Entries), name)
		mb.RecordVigilBpfMapCapacityDataPoint(now, int64(f.Capacity), name)
	}
	mb.RecordVigilProcessCacheSizeDataPoint(now, int64(r.cache.Len()))

	counts, overflow, err := r.sensor.PolicyCounts()
	if err != nil {
		r.set.Logger.Warn("reading the Count action's kernel counters", zap.Error(err))
	}
	mb.RecordVigilPolicyCountsOverflowDataPoint(now, int64(overflow))
	mb.EmitForResource(metadata.WithResource(res))

	// The counters of a policy's hooks start with its running version:
	// one resource per version, so that each carries its start time.
	perCgroup := r.policies.policyCounts(counts)
	cgroups := make([]uint64, 0, len(perCgroup))
	for _, c := range perCgroup {
		cgroups = append(cgroups, c.cgroup)
	}
	// A container's sub-cgroups are one series; the host's cgroups are
	// one, without container.id.
	containers := r.cgroups.Containers(cgroups)
	type countSeries struct {
		policy, namespace, hook, action, container string
	}
	// What each running version counted: its hooks' counters and its
	// Count series, emitted together under its start time.
	type version struct {
		hooks  []hookCount
		counts map[countSeries]uint64
	}
	versions := map[time.Time]*version{}
	versionAt := func(since time.Time) *version {
		v := versions[since]
		if v == nil {
			v = &version{counts: map[countSeries]uint64{}}
			versions[since] = v
		}
		return v
	}
	for _, h := range hooks {
		v := versionAt(h.since)
		v.hooks = append(v.hooks, h)
	}
	for _, c := range perCgroup {
		versionAt(c.since).counts[countSeries{c.policy, c.namespace, c.hook, c.action, containers[c.cgroup]}] += c.n
	}
	for _, since := range slices.SortedFunc(maps.Keys(versions), time.Time.Compare) {
		v := versions[since]
		for _, h := range v.hooks {
			opts := namespaceOption(h.namespace)
			mb.RecordVigilPolicyHookHitsDataPoint(now, int64(h.Hits), h.policy, h.hook, opts...)
			mb.RecordVigilPolicyHookMatchesDataPoint(now, int64(h.Matched), h.policy, h.hook, opts...)
			mb.RecordVigilPolicyHookRateLimitedDataPoint(now, int64(h.RateLimited), h.policy, h.hook, opts...)
			mb.RecordVigilPolicyHookSignalsDataPoint(now, int64(h.Signaled), h.policy, h.hook, opts...)
		}
		for c, n := range v.counts {
			opts := namespaceOption(c.namespace)
			if c.container != "" {
				opts = append(opts, metadata.WithContainerIDMetricAttribute(c.container))
			}
			mb.RecordVigilPolicyCountsDataPoint(now, int64(n), c.policy, c.hook, c.action, opts...)
		}
		mb.EmitForResource(metadata.WithResource(res), metadata.WithStartTimeOverride(pcommon.NewTimestampFromTime(since)))
	}
	return mb.Emit()
}

// namespaceOption is the attribute of a TracingPolicyNamespaced's
// namespace; none for a cluster-wide policy.
func namespaceOption(namespace string) []metadata.MetricAttributeOption {
	if namespace == "" {
		return nil
	}
	return []metadata.MetricAttributeOption{metadata.WithPolicyNamespaceMetricAttribute(namespace)}
}
