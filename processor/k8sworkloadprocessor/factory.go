// Package k8sworkloadprocessor is the `k8s_workload` processor: it labels
// each event of a container with its pod, namespace, node, container,
// image, owner chain (ReplicaSet, Deployment, Job, CronJob, StatefulSet,
// DaemonSet) and chosen labels and annotations, from the node-local cache
// of the k8s_metadata extension. The first events of a brand-new container
// often arrive before the kubelet has reported its id to the API server:
// those are held, briefly and within a bound, instead of leaving without
// metadata.
package k8sworkloadprocessor

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"

	"github.com/vigilsec/vigil/processor/k8sworkloadprocessor/internal/metadata"
)

// NewFactory returns the factory of the k8s_workload processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(metadata.Type, createDefaultConfig,
		processor.WithLogs(createLogs, metadata.LogsStability),
		processor.WithMetrics(createMetrics, metadata.MetricsStability))
}

func createDefaultConfig() component.Config {
	return &Config{
		K8sMetadata: component.MustNewID("k8s_metadata"),
		// The kubelet posts a new container's id to the API server a few
		// hundred milliseconds after the runtime starts it, the informer
		// sees it a little later: 2 s covers a busy node.
		WaitForMetadata: 2 * time.Second,
		// An exec storm in a starting pod is a few thousand records; the
		// bound is what the collector may hold if the API server stalls.
		MaxPending: 10000,
	}
}

func createMetrics(_ context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	return newMetricsProcessor(cfg.(*Config), set, next)
}

func createLogs(_ context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	return newProcessor(cfg.(*Config), set, next)
}
