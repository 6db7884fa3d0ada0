package ebpfreceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/internal/event"
)

// Metric names; all of Vigil's are under vigil.
const (
	metricEvents     = "vigil.events"
	metricEventsLost = "vigil.events.lost"
	metricCacheSize  = "vigil.process_cache.size"
	// metricSkippedRuns counts the runs of Vigil's BPF programs the kernel
	// skipped (kernel.Sensor.SkippedRuns): a missed event or action that
	// no other counter sees.
	metricSkippedRuns = "vigil.bpf.skipped_runs"
	// metricRequests counts the GetUrl and DnsLookup requests.
	metricRequests = "vigil.policy.requests"
	// metricPoliciesLoaded and metricPolicyRefusals follow the policy set.
	metricPoliciesLoaded = "vigil.policies.loaded"
	metricPolicyRefusals = "vigil.policies.refused"
)

// Reasons an event is lost (vigil.events.lost, attribute reason).
const (
	lostRingBufferFull = "ring_buffer_full"
	lostConsumer       = "consumer_refused"
	lostUndecodable    = "undecodable"
)

func (r *ebpfReceiver) metricsLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.MetricsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.metrics.ConsumeMetrics(ctx, r.collectMetrics()); err != nil {
				r.set.Logger.Debug("next consumer refused metrics", zap.Error(err))
			}
		}
	}
}

// collectMetrics snapshots the counters as cumulative sums since Start.
func (r *ebpfReceiver) collectMetrics() pmetric.Metrics {
	now := pcommon.NewTimestampFromTime(time.Now())
	start := pcommon.NewTimestampFromTime(r.stats.start)
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	attrs := rm.Resource().Attributes()
	attrs.PutStr(event.AttrHostName, r.host.Name)
	if r.host.NodeName != "" {
		attrs.PutStr(event.AttrK8sNodeName, r.host.NodeName)
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(event.ScopeName)
	sm.Scope().SetVersion(r.set.BuildInfo.Version)

	sum := func(name, desc, unit, key string, values map[string]uint64) {
		m := sm.Metrics().AppendEmpty()
		m.SetName(name)
		m.SetDescription(desc)
		m.SetUnit(unit)
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		for v, n := range values {
			dp := s.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(start)
			dp.SetTimestamp(now)
			dp.SetIntValue(int64(n))
			dp.Attributes().PutStr(key, v)
		}
	}
	sum(metricEvents, "Events emitted, by event name.", "{event}", "event.name", map[string]uint64{
		event.NameProcessExec:   r.stats.exec.Load(),
		event.NameProcessExit:   r.stats.exit.Load(),
		event.NameProcessKprobe: r.stats.hook.Load(),
	})
	kernelDrops, err := r.sensor.Drops()
	if err != nil {
		r.set.Logger.Warn("reading kernel drop counters", zap.Error(err))
	}
	sum(metricEventsLost, "Events lost before reaching the next consumer, by reason.", "{event}", "reason", map[string]uint64{
		lostRingBufferFull: kernelDrops,
		lostConsumer:       r.stats.consumerRefused.Load(),
		lostUndecodable:    r.stats.undecodable.Load(),
	})

	skipped, err := r.sensor.SkippedRuns()
	if err != nil {
		r.set.Logger.Warn("reading the kernel's skipped-run counters", zap.Error(err))
	}
	sum(metricSkippedRuns, "Runs of Vigil's BPF programs the kernel skipped, each a possibly missed event or enforcement, by program.", "{run}", "bpf.program.name", skipped)

	m := sm.Metrics().AppendEmpty()
	m.SetName(metricRequests)
	m.SetDescription("GetUrl and DnsLookup requests made for policies, by action and result (done, failed, dropped).")
	m.SetUnit("{request}")
	rs := m.SetEmptySum()
	rs.SetIsMonotonic(true)
	rs.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for action, results := range r.requests.Counts() {
		for result, n := range results {
			dp := rs.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(start)
			dp.SetTimestamp(now)
			dp.SetIntValue(int64(n))
			dp.Attributes().PutStr(event.AttrAction, action)
			dp.Attributes().PutStr("result", result)
		}
	}

	running, refusals := r.policies.counts()
	sum(metricPolicyRefusals, "Policy versions refused (invalid, unsupported or not loadable).", "{policy}", "reason", map[string]uint64{
		"refused": refusals,
	})
	g := sm.Metrics().AppendEmpty()
	g.SetName(metricPoliciesLoaded)
	g.SetDescription("Policies running in the kernel.")
	g.SetUnit("{policy}")
	gdp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	gdp.SetTimestamp(now)
	gdp.SetIntValue(int64(running))

	m = sm.Metrics().AppendEmpty()
	m.SetName(metricCacheSize)
	m.SetDescription("Processes in the process cache, running or recently exited.")
	m.SetUnit("{process}")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(now)
	dp.SetIntValue(int64(r.cache.Len()))
	return md
}
