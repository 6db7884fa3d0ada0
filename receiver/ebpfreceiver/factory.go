// Package ebpfreceiver is the `ebpf` receiver: it loads Vigil's BPF sensors
// and emits what they see as OTLP logs, and its own health as metrics.
package ebpfreceiver

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/vigilsec/vigil/internal/policy"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/receiver/ebpfreceiver/internal/metadata"
)

// NewFactory returns the factory of the ebpf receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(metadata.Type, createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
		receiver.WithMetrics(createMetrics, metadata.MetricsStability))
}

func createDefaultConfig() component.Config {
	return &Config{
		MetricsBuilderConfig: metadata.DefaultMetricsBuilderConfig(),
		Process: ProcessConfig{
			// Running processes on a busy node number in the low
			// thousands; the rest of the room keeps recently exited ones
			// resolvable for late events.
			CacheSize: 32768,
			ProcFS:    "/proc",
			Ancestors: 0,
			// The variables that change how a program runs: their values
			// are what an investigation needs, and they hold no secrets.
			Environment: EnvironmentConfig{Values: []string{"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "PATH", "HOME", "USER", "SHELL", "PWD"}},
		},
		// 8 MiB holds tens of thousands of exec records: enough to ride
		// out a fork storm while the pipeline is busy.
		RingBufferSize:  8 << 20,
		MetricsInterval: 10 * time.Second,
		// Edits show up within a second, for the cost of a stat per file.
		PolicyReloadInterval: time.Second,
		StatusFile:           policy.DefaultStatusFile,
		PinPath:              kernel.DefaultPinPath,
		// Secrets stay out of events unless a user turns this off.
		Redaction: RedactionConfig{Defaults: true},
	}
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r := shared.get(cfg.(*Config), set)
	r.setLogs(next)
	return r, nil
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r := shared.get(cfg.(*Config), set)
	r.setMetrics(next)
	return r, nil
}

// shared makes the logs and the metrics pipeline of one receiver
// configuration use one instance, so the BPF programs load once.
var shared = &instances{byConfig: map[*Config]*ebpfReceiver{}}

type instances struct {
	mu       sync.Mutex
	byConfig map[*Config]*ebpfReceiver
}

func (i *instances) get(cfg *Config, set receiver.Settings) *ebpfReceiver {
	i.mu.Lock()
	defer i.mu.Unlock()
	r, ok := i.byConfig[cfg]
	if !ok {
		r = newReceiver(cfg, set, func() { i.forget(cfg) })
		i.byConfig[cfg] = r
	}
	return r
}

func (i *instances) forget(cfg *Config) {
	i.mu.Lock()
	defer i.mu.Unlock()
	delete(i.byConfig, cfg)
}
