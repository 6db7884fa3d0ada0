package k8sworkloadprocessor

import (
	"context"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"

	"github.com/vigilsec/vigil/internal/event"
)

// metricsProcessor labels the data points that carry a container.id, the
// ebpf receiver's per-container counters (vigil.policy.counts), with the
// container's pod, namespace and workload. On data points, not on the
// resource: a Prometheus exporter keeps data point attributes as labels,
// and one node's counters span many pods. A metric is a running total, so
// nothing is held back: a container the cache does not know yet is
// labelled at the next interval.
type metricsProcessor struct {
	*workloadProcessor
	next consumer.Metrics
}

func newMetricsProcessor(cfg *Config, set processor.Settings, next consumer.Metrics) (*metricsProcessor, error) {
	p, err := newProcessor(cfg, set, nil)
	if err != nil {
		return nil, err
	}
	return &metricsProcessor{workloadProcessor: p, next: next}, nil
}

func (p *metricsProcessor) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	if p.cache != nil {
		for _, rm := range md.ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					p.labelPoints(m)
				}
			}
		}
	}
	return p.next.ConsumeMetrics(ctx, md)
}

func (p *metricsProcessor) labelPoints(m pmetric.Metric) {
	var dps pmetric.NumberDataPointSlice
	switch m.Type() {
	case pmetric.MetricTypeSum:
		dps = m.Sum().DataPoints()
	case pmetric.MetricTypeGauge:
		dps = m.Gauge().DataPoints()
	default:
		return
	}
	for _, dp := range dps.All() {
		p.labelAttrs(dp.Attributes())
	}
}

func (p *metricsProcessor) labelAttrs(attrs pcommon.Map) {
	id, ok := attrs.Get(event.AttrContainerID)
	if !ok {
		return
	}
	if pod, ctr, ok := p.cache.ByContainerID(id.Str()); ok {
		p.decorate(attrs, pod, ctr)
	}
}
