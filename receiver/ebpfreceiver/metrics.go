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
	// The counts of Vigil's BPF programs (kernel.ProgramStats). Skipped
	// runs are a missed event or action that no other counter sees.
	metricSkippedRuns = "vigil.bpf.skipped_runs"
	metricRuns        = "vigil.bpf.runs"
	metricRunTime     = "vigil.bpf.run_time"
	// The fill of the maps that grow with the node's activity
	// (kernel.Sensor.MapFill).
	metricMapEntries  = "vigil.bpf.map.entries"
	metricMapCapacity = "vigil.bpf.map.capacity"
	// metricRequests counts the GetUrl and DnsLookup requests.
	metricRequests = "vigil.policy.requests"
	// metricPoliciesLoaded and metricPolicyRefusals follow the policy set.
	metricPoliciesLoaded = "vigil.policies.loaded"
	metricPolicyRefusals = "vigil.policies.refused"
	// The kernel's counters of each running hook (kernel.HookCounters),
	// from the hook's installation on: what its selectors filtered out
	// never reaches user space, and no event says it happened.
	metricHookHits        = "vigil.policy.hook.hits"
	metricHookMatches     = "vigil.policy.hook.matches"
	metricHookRateLimited = "vigil.policy.hook.rate_limited"
	metricHookSignals     = "vigil.policy.hook.signals"
)

// Reasons an event is lost (vigil.events.lost, attribute reason).
const (
	lostRingBufferFull = "ring_buffer_full"
	lostConsumer       = "consumer_refused"
	lostUndecodable    = "undecodable"
	// lostRateLimited are matched calls a selector's rateLimit held back,
	// counted in the kernel.
	lostRateLimited = "rate_limited"
)

// The metrics' attributes for an event's name, a BPF program's and a BPF
// map's.
const (
	attrEventName   = "event.name"
	attrProgramName = "bpf.program.name"
	attrMapName     = "bpf.map.name"
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

	newSum := func(name, desc, unit string) pmetric.NumberDataPointSlice {
		m := sm.Metrics().AppendEmpty()
		m.SetName(name)
		m.SetDescription(desc)
		m.SetUnit(unit)
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		return s.DataPoints()
	}
	// point adds a data point counted from since and returns its
	// attributes.
	point := func(dps pmetric.NumberDataPointSlice, since pcommon.Timestamp, n uint64) pcommon.Map {
		dp := dps.AppendEmpty()
		dp.SetStartTimestamp(since)
		dp.SetTimestamp(now)
		dp.SetIntValue(int64(n))
		return dp.Attributes()
	}
	newGauge := func(name, desc, unit string) pmetric.NumberDataPointSlice {
		m := sm.Metrics().AppendEmpty()
		m.SetName(name)
		m.SetDescription(desc)
		m.SetUnit(unit)
		return m.SetEmptyGauge().DataPoints()
	}
	gaugePoint := func(dps pmetric.NumberDataPointSlice, n int64) pcommon.Map {
		dp := dps.AppendEmpty()
		dp.SetTimestamp(now)
		dp.SetIntValue(n)
		return dp.Attributes()
	}
	sum := func(name, desc, unit, key string, values map[string]uint64) {
		dps := newSum(name, desc, unit)
		for v, n := range values {
			point(dps, start, n).PutStr(key, v)
		}
	}

	events := newSum(metricEvents, "Events emitted, by event name, and by policy for policy events.", "{event}")
	point(events, start, r.stats.exec.Load()).PutStr(attrEventName, event.NameProcessExec)
	point(events, start, r.stats.exit.Load()).PutStr(attrEventName, event.NameProcessExit)
	for k, n := range r.stats.hookEvents() {
		attrs := point(events, start, n)
		attrs.PutStr(attrEventName, k.name)
		attrs.PutStr(event.AttrSecurityRuleName, k.policy)
	}

	hooks, rateLimited, err := r.policies.hookCounts()
	if err != nil {
		r.set.Logger.Warn("reading the policy hooks' kernel counters", zap.Error(err))
	}
	var hits, matches, limited, signals pmetric.NumberDataPointSlice
	if len(hooks) > 0 {
		hits = newSum(metricHookHits, "Calls of a policy hook in the kernel, before its selectors, by policy and hook.", "{call}")
		matches = newSum(metricHookMatches, "Calls a selector of the hook matched, by policy and hook.", "{call}")
		limited = newSum(metricHookRateLimited, "Matched calls not reported because of the selector's rateLimit, by policy and hook.", "{call}")
		signals = newSum(metricHookSignals, "Signals the hook's Sigkill and Signal actions sent in the kernel, by policy and hook.", "{signal}")
	}
	for _, h := range hooks {
		since := pcommon.NewTimestampFromTime(h.since)
		for _, c := range []struct {
			dps pmetric.NumberDataPointSlice
			n   uint64
		}{{hits, h.Hits}, {matches, h.Matched}, {limited, h.RateLimited}, {signals, h.Signaled}} {
			attrs := point(c.dps, since, c.n)
			attrs.PutStr(event.AttrSecurityRuleName, h.policy)
			if h.namespace != "" {
				attrs.PutStr(event.AttrK8sNamespace, h.namespace)
			}
			attrs.PutStr(event.AttrHook, h.hook)
		}
		rateLimited += h.RateLimited
	}

	kernelDrops, err := r.sensor.Drops()
	if err != nil {
		r.set.Logger.Warn("reading kernel drop counters", zap.Error(err))
	}
	sum(metricEventsLost, "Events lost before reaching the next consumer, by reason.", "{event}", "reason", map[string]uint64{
		lostRingBufferFull: kernelDrops,
		lostConsumer:       r.stats.consumerRefused.Load(),
		lostUndecodable:    r.stats.undecodable.Load(),
		lostRateLimited:    rateLimited,
	})

	progs, err := r.sensor.ProgramStats()
	if err != nil {
		r.set.Logger.Warn("reading the kernel's counts of Vigil's programs", zap.Error(err))
	}
	skipped := newSum(metricSkippedRuns, "Runs of Vigil's BPF programs the kernel skipped, each a possibly missed event or enforcement, by program.", "{run}")
	counted := false
	for name, st := range progs {
		point(skipped, start, st.Skipped).PutStr(attrProgramName, name)
		counted = counted || st.Runs > 0
	}
	// Runs are counted only while the kernel's BPF statistics are on: no
	// series at all rather than zeros that look like idle programs.
	if counted {
		runs := newSum(metricRuns, "Runs of Vigil's BPF programs, by program, while the kernel's BPF statistics are on.", "{run}")
		runTime := newSum(metricRunTime, "Time Vigil's BPF programs ran, by program, while the kernel's BPF statistics are on.", "s")
		for name, st := range progs {
			point(runs, start, st.Runs).PutStr(attrProgramName, name)
			dp := runTime.AppendEmpty()
			dp.SetStartTimestamp(start)
			dp.SetTimestamp(now)
			dp.SetDoubleValue(st.RunTime.Seconds())
			dp.Attributes().PutStr(attrProgramName, name)
		}
	}

	requests := newSum(metricRequests, "GetUrl and DnsLookup requests made for policies, by action and result (done, failed, dropped).", "{request}")
	for action, results := range r.requests.Counts() {
		for result, n := range results {
			attrs := point(requests, start, n)
			attrs.PutStr(event.AttrAction, action)
			attrs.PutStr("result", result)
		}
	}

	running, refusals := r.policies.counts()
	sum(metricPolicyRefusals, "Policy versions refused (invalid, unsupported or not loadable).", "{policy}", "reason", map[string]uint64{
		"refused": refusals,
	})
	gaugePoint(newGauge(metricPoliciesLoaded, "Policies running in the kernel.", "{policy}"), int64(running))

	fill, err := r.sensor.MapFill()
	if err != nil {
		r.set.Logger.Warn("reading the fill of the kernel's maps", zap.Error(err))
	}
	entries := newGauge(metricMapEntries, "Entries in the kernel maps that fill with the node's activity, by map.", "{entry}")
	capacity := newGauge(metricMapCapacity, "Entries the kernel maps that fill with the node's activity can hold, by map.", "{entry}")
	for name, f := range fill {
		gaugePoint(entries, int64(f.Entries)).PutStr(attrMapName, name)
		gaugePoint(capacity, int64(f.Capacity)).PutStr(attrMapName, name)
	}

	gaugePoint(newGauge(metricCacheSize, "Processes in the process cache, running or recently exited.", "{process}"), int64(r.cache.Len()))
	return md
}
