// Package webhookexporter is the `webhook` exporter: it encodes log records
// with an encoding extension and POSTs each document the encoding writes
// (one a line) as its own HTTP request, the way falcosidekick's HTTP input
// takes Falco alerts. With falco_encoding it sends Vigil's detections to
// falcosidekick and from there to its outputs.
package webhookexporter

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/vigilsec/vigil/exporter/webhookexporter/internal/metadata"
)

// NewFactory returns the factory of the webhook exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(metadata.Type, createDefaultConfig,
		exporter.WithLogs(createLogs, metadata.LogsStability))
}

func createDefaultConfig() component.Config {
	client := confighttp.NewDefaultClientConfig()
	// A webhook answers in milliseconds; a stuck one must not hold the
	// queue for long.
	client.Timeout = 10 * time.Second
	return &Config{
		ClientConfig: client,
		ContentType:  "application/json",
		QueueConfig:  configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
		RetryConfig:  configretry.NewDefaultBackOffConfig(),
	}
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("webhook exporter: unexpected config type %T", cfg)
	}
	e := &webhook{cfg: c, set: set}
	return exporterhelper.NewLogs(ctx, set, cfg, e.consumeLogs,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithQueue(c.QueueConfig),
		exporterhelper.WithRetry(c.RetryConfig),
		// The client has its own timeout (ClientConfig.Timeout).
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{Timeout: 0}),
	)
}
