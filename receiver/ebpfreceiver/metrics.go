package ebpfreceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/receiver/ebpfreceiver/internal/metadata"
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

// collectMetrics records the engine's counters as cumulative sums: since
// Start, and for a policy's hooks since its running version was installed.
func (r *ebpfReceiver) collectMetrics() pmetric.Metrics {
	mb := r.mb
	c := r.engine.Counters()
	now := pcommon.NewTimestampFromTime(time.Now())
	host := r.engine.Host()
	rb := mb.NewResourceBuilder()
	rb.SetHostName(host.Name)
	if host.NodeName != "" {
		rb.SetK8sNodeName(host.NodeName)
	}
	res := rb.Emit()

	mb.RecordVigilEventsDataPoint(now, int64(c.Exec), event.NameProcessExec)
	mb.RecordVigilEventsDataPoint(now, int64(c.Exit), event.NameProcessExit)
	for k, n := range c.PolicyEvents {
		mb.RecordVigilEventsDataPoint(now, int64(n), k.Name, metadata.WithPolicyEventMetricAttribute(k.Policy),
			metadata.WithExecutableMetricAttribute(k.Binary))
	}
	for reason, n := range map[metadata.AttributeLostReason]uint64{
		metadata.AttributeLostReasonRingBufferFull:  c.Lost.RingBufferFull,
		metadata.AttributeLostReasonConsumerRefused: c.Lost.ConsumerRefused,
		metadata.AttributeLostReasonUndecodable:     c.Lost.Undecodable,
		metadata.AttributeLostReasonRateLimited:     c.Lost.RateLimited,
	} {
		mb.RecordVigilEventsLostDataPoint(now, int64(n), reason)
	}
	for name, st := range c.Programs {
		mb.RecordVigilBpfSkippedRunsDataPoint(now, int64(st.Skipped), name)
		// Runs are counted only while the kernel's BPF statistics are
		// on: no series at all rather than zeros that look like idle
		// programs.
		if st.Runs > 0 {
			mb.RecordVigilBpfRunsDataPoint(now, int64(st.Runs), name)
			mb.RecordVigilBpfRunTimeDataPoint(now, st.RunTime.Seconds(), name)
		}
	}
	for action, results := range c.Requests {
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
	mb.RecordVigilPoliciesRefusedDataPoint(now, int64(c.PolicyRefusals), metadata.AttributeRefusalReasonRefused)
	mb.RecordVigilPoliciesLoadedDataPoint(now, int64(c.PoliciesRunning))
	for name, f := range c.Maps {
		mb.RecordVigilBpfMapEntriesDataPoint(now, int64(f.Entries), name)
		mb.RecordVigilBpfMapCapacityDataPoint(now, int64(f.Capacity), name)
	}
	mb.RecordVigilProcessCacheSizeDataPoint(now, int64(c.Processes))
	mb.RecordVigilPolicyCountsOverflowDataPoint(now, int64(c.CountOverflow))
	mb.EmitForResource(metadata.WithResource(res))

	// One resource per running policy version, so that each carries its
	// start time: a replaced version's counters start over.
	for _, v := range c.Versions {
		for _, h := range v.Hooks {
			opts := namespaceOption(h.Namespace)
			mb.RecordVigilPolicyHookHitsDataPoint(now, int64(h.Hits), h.Policy, h.Hook, opts...)
			mb.RecordVigilPolicyHookMatchesDataPoint(now, int64(h.Matched), h.Policy, h.Hook, opts...)
			mb.RecordVigilPolicyHookRateLimitedDataPoint(now, int64(h.RateLimited), h.Policy, h.Hook, opts...)
			mb.RecordVigilPolicyHookSignalsDataPoint(now, int64(h.Signaled), h.Policy, h.Hook, opts...)
		}
		for _, pc := range v.Counts {
			opts := namespaceOption(pc.Namespace)
			if pc.Container != "" {
				opts = append(opts, metadata.WithContainerIDMetricAttribute(pc.Container))
			}
			mb.RecordVigilPolicyCountsDataPoint(now, int64(pc.N), pc.Policy, pc.Hook, pc.Action, opts...)
		}
		mb.EmitForResource(metadata.WithResource(res), metadata.WithStartTimeOverride(pcommon.NewTimestampFromTime(v.Since)))
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
