// Package eventstreamexporter provides the `event_stream` exporter: it
// serves the records of its pipeline, live and filtered, to clients such as
// `vigil events` over gRPC on a unix socket and, optionally, on a loopback
// TLS endpoint. The protocol is in eventstreampb.
package eventstreamexporter

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/vigilsec/vigil/exporter/eventstreamexporter/internal/metadata"
)

// NewFactory returns the factory of the event_stream exporter. It supports
// logs only: Vigil's events are log records.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Socket: DefaultSocket,
		// Present only when the tcp section is: then with TLS defaults.
		TCP: configoptional.Default(TCPConfig{TLS: configtls.NewDefaultServerConfig()}),
		// A few seconds of a busy node's events: enough to ride out a
		// burst while a terminal scrolls, small enough (a few MiB) to
		// keep for each of max_clients.
		BufferSize: 4096,
		// Clients are operators at a shell; 16 covers a team debugging
		// one node at once.
		MaxClients: 16,
	}
}

// createLogs wires the exporter into exporterhelper without queue or
// retry: consuming never blocks and never fails (a client that cannot keep
// up misses records instead), so there is nothing to queue or retry, and
// records reach clients in the pipeline's order.
func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("event_stream exporter: unexpected config type %T", cfg)
	}
	e, err := newEventStreamExporter(c, set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, e.consumeLogs,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
	)
}
