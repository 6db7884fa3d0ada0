// Package compactexporter provides the `compact` exporter: it prints every
// event as one human line, in the style of `tetra getevents -o compact`,
// to stdout or to a file.
package compactexporter

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/vigilsec/vigil/exporter/compactexporter/internal/metadata"
)

// NewFactory returns the factory of the compact exporter. It supports logs
// only: Vigil's events are log records.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Output:      OutputStdout,
		Color:       ColorAuto,
		QueueConfig: configoptional.Default(exporterhelper.NewDefaultQueueConfig()),
	}
}

// createLogs wires the exporter into exporterhelper: no retry, because a
// line that cannot be written to a local stream or file will not succeed
// on a second attempt either; a queue only where the configuration asks.
func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("compact exporter: unexpected config type %T", cfg)
	}
	e := newCompactExporter(c)
	return exporterhelper.NewLogs(ctx, set, cfg, e.consumeLogs,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithQueue(c.QueueConfig),
	)
}
