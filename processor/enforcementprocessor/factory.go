// Package enforcementprocessor is the `enforcement` processor: response
// rules on the event stream. A rule is an OTTL condition on a log record and
// an action (kill or signal the process through a pidfd, put its binary or
// destination in the kernel's deny lists, drop the record, label or delete
// its pod through the Kubernetes API); every action, taken or skipped,
// leaves an enforcement.action audit record.
package enforcementprocessor

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"

	"github.com/vigilsec/vigil/internal/kernel"

	"github.com/vigilsec/vigil/processor/enforcementprocessor/internal/metadata"
)

// NewFactory returns the factory of the enforcement processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(metadata.Type, createDefaultConfig,
		processor.WithLogs(createLogs, metadata.LogsStability))
}

func createDefaultConfig() component.Config {
	return &Config{
		// Rules act unless told otherwise, as TracingPolicy actions do;
		// `mode: monitor` is the dry run.
		Mode:    ModeEnforce,
		PinPath: kernel.DefaultPinPath,
		ProcFS:  "/proc",
		// Expired entries are already ignored by the kernel; removing
		// them only frees room, so this need not be frequent.
		ExpireInterval: 30 * time.Second,
		// An API server answers a patch or a delete in milliseconds; 10 s
		// covers a loaded one without holding a worker for long.
		K8sTimeout: 10 * time.Second,
		// A burst of matches on one node is mostly one pod, which dedup
		// folds into one call; 100 distinct pods waiting means the API
		// server is not keeping up, and more would only wait longer.
		K8sQueueSize: 100,
	}
}

func createLogs(_ context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	return newProcessor(cfg.(*Config), set, next)
}
