package ebpfreceiver

import (
	"context"
	"fmt"
	"os"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"

	"github.com/vigilsec/vigil/extension/k8smetaextension"
	"github.com/vigilsec/vigil/internal/engine"
	"github.com/vigilsec/vigil/receiver/ebpfreceiver/internal/metadata"
)

// The transport and data format of the receiver's ObsReport series.
const (
	obsTransport = "ebpf"
	obsFormat    = "kernel"
)

// ebpfReceiver is the Collector's face of an engine.Engine: one per
// configuration, serving its logs and its metrics pipeline.
type ebpfReceiver struct {
	cfg     *Config
	set     receiver.Settings
	logs    consumer.Logs
	metrics consumer.Metrics
	forget  func()

	startOnce, stopOnce sync.Once
	startErr            error

	// obs reports what the next consumers accepted and refused, as the
	// Collector's own receivers do (otelcol_receiver_accepted_log_records
	// and the rest).
	obs    *receiverhelper.ObsReport
	engine *engine.Engine
	// mb builds the metrics, the metrics loop's alone.
	mb *metadata.MetricsBuilder

	cancel      context.CancelFunc
	metricsDone chan struct{}
}

func newReceiver(cfg *Config, set receiver.Settings, forget func()) *ebpfReceiver {
	return &ebpfReceiver{cfg: cfg, set: set, forget: forget}
}

func (r *ebpfReceiver) setLogs(c consumer.Logs)       { r.logs = c }
func (r *ebpfReceiver) setMetrics(c consumer.Metrics) { r.metrics = c }

// Start loads the sensors once, however many pipelines use the receiver.
func (r *ebpfReceiver) Start(ctx context.Context, host component.Host) error {
	r.startOnce.Do(func() { r.startErr = r.start(ctx, host) })
	if r.startErr != nil {
		return fmt.Errorf("ebpf receiver: %w", r.startErr)
	}
	return nil
}

func (r *ebpfReceiver) start(ctx context.Context, host component.Host) error {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: r.set.ID, Transport: obsTransport, ReceiverCreateSettings: r.set, LongLivedCtx: true,
	})
	if err != nil {
		return err
	}
	r.obs = obs
	opts, err := r.cfg.engineOptions()
	if err != nil {
		return err
	}
	opts.Logger, opts.Version = r.set.Logger, r.set.BuildInfo.Version
	opts.NodeName = os.Getenv("K8S_NODE_NAME")
	if r.cfg.K8sMetadata != "" {
		var id component.ID
		if err := id.UnmarshalText([]byte(r.cfg.K8sMetadata)); err != nil {
			return fmt.Errorf("k8s_metadata: %w", err)
		}
		meta, err := k8smetaextension.FromHost(host, id)
		if err != nil {
			return fmt.Errorf("k8s_metadata: %w", err)
		}
		opts.Kube = &engine.Kube{Pods: meta.Cache(), REST: meta.RESTConfig()}
	}
	if r.logs != nil {
		opts.Consume = r.consumeLogs
	}
	if r.engine, err = engine.Start(ctx, opts); err != nil {
		return err
	}
	r.mb = metadata.NewMetricsBuilder(r.cfg.MetricsBuilderConfig, r.set,
		metadata.WithStartTime(pcommon.NewTimestampFromTime(r.engine.Started())))
	if r.metrics != nil {
		loopCtx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		r.metricsDone = make(chan struct{})
		go func() {
			defer close(r.metricsDone)
			r.metricsLoop(loopCtx)
		}()
	}
	return nil
}

// consumeLogs hands a batch of events to the logs pipeline, reported as
// the Collector's receivers report theirs.
func (r *ebpfReceiver) consumeLogs(ctx context.Context, logs plog.Logs) error {
	n := logs.LogRecordCount()
	opCtx := r.obs.StartLogsOp(ctx)
	err := r.logs.ConsumeLogs(opCtx, logs)
	r.obs.EndLogsOp(opCtx, obsFormat, n, err)
	return err
}

// Shutdown detaches the sensors and waits for the loops to finish; events
// already read are delivered first.
func (r *ebpfReceiver) Shutdown(context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		r.forget()
		if r.engine == nil {
			return
		}
		if r.cancel != nil {
			r.cancel()
			<-r.metricsDone
		}
		err = r.engine.Close()
	})
	return err
}
