// Package engine is Vigil's node agent without the Collector: it loads the
// sensor, keeps the process cache, keeps the kernel's policies in step with
// their sources, and turns what the kernel reports into events, handed to
// whoever consumes them in batches (the ebpf receiver, a test).
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	"k8s.io/client-go/rest"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/k8s"
	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/process"
	"github.com/vigilsec/vigil/internal/redact"
	"github.com/vigilsec/vigil/internal/stack"
	"github.com/vigilsec/vigil/internal/useraction"
)

// policySyncTimeout bounds how long Start waits for the first list of the
// cluster's TracingPolicy objects.
const policySyncTimeout = 30 * time.Second

// maxBatch bounds how many events one Consume carries; the reader flushes
// earlier whenever it has caught up with the ring buffer.
const maxBatch = 1024

// pendingBatches is how many batches may wait for the consumer. The reader
// hands batches to a goroutine of their own, so that it goes on draining
// the ring buffer and building records while the consumer takes the
// previous batch (the Collector's batch processor exports on the caller's
// time); when that many wait, it waits too.
const pendingBatches = 4

// Options configure an Engine. The zero value of each field is its
// feature off, except those marked required.
type Options struct {
	// Logger is required.
	Logger *zap.Logger
	// Consume takes each batch of events; an error counts the batch as
	// lost (consumer_refused). Nil drops the events: a metrics-only
	// agent still keeps its counters.
	Consume func(context.Context, plog.Logs) error
	// Version is the agent's version, on every event's scope.
	Version string
	// NodeName is the Kubernetes node's name (k8s.node.name); the host
	// name stands in for it in exec ids when empty.
	NodeName string

	// RingBufferSize, Mechanism and PinPath are the sensor's
	// (kernel.SensorOptions).
	RingBufferSize uint32
	Mechanism      kernel.Mechanism
	PinPath        string
	// BPFStats turns the kernel's BPF statistics on while the engine runs.
	BPFStats bool

	// ProcFS is where the host's proc filesystem is mounted (required).
	ProcFS string
	// CacheSize bounds the process cache (required); Ancestors is how
	// many ancestors beyond the parent each event lists.
	CacheSize, Ancestors int
	// Environment reads each new program's environment; EnvironmentValues
	// names the variables whose values are kept, the others masked.
	Environment       bool
	EnvironmentValues []string
	// Redactor hides secrets in command lines; nil hides nothing.
	Redactor *redact.Redactor
	// ExposeStackAddresses keeps the address of every stack frame.
	ExposeStackAddresses bool

	// Policies are TracingPolicy files and directories, read again every
	// ReloadInterval (required when there are policies or Kube).
	Policies       []string
	ReloadInterval time.Duration
	// Library are policies of the detection library, after every other
	// source.
	Library []LibraryPolicy
	// StatusFile is where the statuses of the policies are written for
	// `vigil policy status`; empty for none.
	StatusFile string
	// Kube, when set, loads the cluster's TracingPolicy objects and
	// enforces pod and namespace scopes.
	Kube *Kube
}

// Kube is the cluster the engine's node belongs to.
type Kube struct {
	// Pods is the node-local view of pods; REST connects to the
	// kube-apiserver with the same credentials.
	Pods *k8s.Cache
	REST *rest.Config
}

// LibraryPolicy is one policy of the detection library as a policy source.
type LibraryPolicy struct {
	Source string
	Data   []byte
	// Enforce switches the policy to policy-mode enforce.
	Enforce bool
}

// Engine is a running agent. Close detaches it from the kernel.
type Engine struct {
	opts   Options
	logger *zap.Logger

	host     event.Host
	clock    kernel.BootClock
	sensor   *kernel.Sensor
	cache    *process.Cache
	kstack   *stack.Kernel
	ustack   *stack.User
	policies *policyManager
	watcher  *k8s.PolicyWatcher
	requests *useraction.Runner // GetUrl and DnsLookup
	cgroups  *k8s.CgroupIndex
	stats    stats
	// bpfStats holds the kernel's BPF statistics on (Options.BPFStats).
	bpfStats io.Closer

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// Reused by the read loop for every event, which the batch turns into
	// a record before the next: a burst of hook events allocates only
	// what the record keeps.
	hook      event.Hook
	buildIDs  buildIDCache // loader events' files
	ancestors []*process.Process
	sysCalls  map[uint32]string // "sys_" + the syscall's name, by number
}

// stats are the engine's counters, read by Counters.
type stats struct {
	start           time.Time
	exec, exit      atomic.Uint64
	consumerRefused atomic.Uint64
	undecodable     atomic.Uint64
	hooks           hookEvents
}

// Start loads the sensor, reads the running processes, loads the policies
// (waiting at most policySyncTimeout, or ctx, for the cluster's) and starts
// reading events. The Engine must be Closed to detach from the kernel.
func Start(ctx context.Context, opts Options) (*Engine, error) {
	hostname, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("reading the host name: %w", err)
	}
	e := &Engine{opts: opts, logger: opts.Logger,
		host: event.Host{Name: hostname, ID: machineID(), NodeName: opts.NodeName}}
	node := opts.NodeName
	if node == "" {
		node = hostname
	}
	red := opts.Redactor
	if red == nil {
		red = redact.New(nil)
	}

	sensor, err := kernel.LoadSensor(kernel.SensorOptions{
		RingBufferSize: opts.RingBufferSize, Mechanism: opts.Mechanism, PinPath: opts.PinPath,
	})
	if err != nil {
		return nil, err
	}
	e.sensor = sensor
	// The rest of Start closes what it opened on error.
	ok := false
	defer func() {
		if !ok {
			e.Close()
		}
	}()
	// host_ns in matchNamespaces names the namespaces of the host's pid 1.
	sensor.SetProcFS(opts.ProcFS)
	e.clock = kernel.NewBootClock()
	e.cache = process.NewCache(node, opts.CacheSize)
	e.cache.SetRedactor(red)
	if opts.Environment {
		if err := sensor.SetExecEnvironment(true); err != nil {
			return nil, err
		}
		e.cache.SetEnvironmentValues(opts.EnvironmentValues)
	}
	// Read on the first stack trace: most nodes never ask for one.
	e.kstack = stack.NewKernel(filepath.Join(opts.ProcFS, "kallsyms"))
	e.ustack = stack.NewUser(opts.ProcFS)

	// The sensor is attached before the scan, so a process starting in
	// between is seen by one or the other, possibly both, never neither.
	cgroupRoot, err := kernel.Cgroup2Mount()
	if err != nil {
		e.logger.Warn("processes found in /proc will have no cgroup id", zap.Error(err))
	}
	// One index of the node's container cgroups (it is safe for
	// concurrent use) serves pod scopes and the Count series alike: each
	// walk of the cgroup tree is done once.
	e.cgroups = k8s.NewCgroupIndex(cgroupRoot)
	n, err := e.cache.ScanProcFS(opts.ProcFS, cgroupRoot)
	if err != nil {
		return nil, fmt.Errorf("process.procfs: %w", err)
	}
	// matchBinaries needs the binaries of processes the kernel saw start
	// before it was watching.
	for _, p := range e.cache.RunningProcesses() {
		if err := sensor.SetBinary(p.PID, p.Binary, p.InitTree); err != nil {
			e.logger.Debug("process binary not recorded", zap.Error(err))
		}
	}
	if _, err := policy.SourceFiles(opts.Policies); err != nil {
		return nil, err
	}
	// The connect deny list (the enforcement processor's deny_connect)
	// needs the cgroup connect hook even when no policy hooks connect.
	if err := sensor.EnableConnectDeny(); err != nil {
		e.logger.Warn("connect deny list unavailable: deny_connect will not refuse connections", zap.Error(err))
	}
	// Changes from Kubernetes (a TracingPolicy object, a pod) wake the
	// policy loop at once; a burst of them is one pass.
	policyKick, podKick := make(chan struct{}, 1), make(chan struct{}, 1)
	var kube *kubeSource
	if opts.Kube != nil {
		watcher, err := k8s.WatchPolicies(opts.Kube.REST, kick(policyKick))
		if err != nil {
			return nil, err
		}
		e.watcher = watcher
		kube = &kubeSource{pods: opts.Kube.Pods, watcher: watcher, cgroups: e.cgroups}
		kube.pods.Subscribe(func(k8s.PodEvent) { kick(podKick)() })
		watcher.Start()
		syncCtx, cancel := context.WithTimeout(ctx, policySyncTimeout)
		err = watcher.WaitForSync(syncCtx)
		cancel()
		if err != nil {
			// The file policies run; the cluster's load when the list
			// succeeds.
			e.logger.Error("cluster policies not loaded yet", zap.Error(err))
		}
	}
	e.requests = useraction.New(useraction.Options{Done: func(action, target string, err error) {
		if err != nil {
			e.logger.Debug("policy request failed", zap.String("action", action), zap.String("target", target), zap.Error(err))
		}
	}})
	e.policies = newPolicyManager(sensor, e.logger, opts.Policies, kube)
	e.policies.statusFile = opts.StatusFile
	e.policies.library = opts.Library
	e.policies.sync()
	if opts.BPFStats {
		// Not fatal: the events do not depend on it, and the log names
		// what the kernel lacks.
		if e.bpfStats, err = ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME)); err != nil {
			e.logger.Warn("bpf_stats: the kernel's BPF statistics stay off (BPF_ENABLE_STATS needs Linux 5.8+): vigil.bpf.runs and vigil.bpf.run_time are left out", zap.Error(err))
		}
	}
	e.stats.start = time.Now()
	e.logger.Info("process sensor attached",
		zap.String("mechanism", string(sensor.Mechanism())),
		zap.Int("processes_from_procfs", n),
		zap.String("cgroup2", cgroupRoot))

	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.readLoop()
	}()
	loopCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	if len(opts.Policies) > 0 || kube != nil {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.policyLoop(loopCtx, kube != nil, policyKick, podKick)
		}()
	}
	ok = true
	return e, nil
}

// kick wakes a loop waiting on ch, unless a wake-up already waits.
func kick(ch chan struct{}) func() {
	return func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// policyLoop reads the policy sources every ReloadInterval and whenever
// Kubernetes reports a change.
func (e *Engine) policyLoop(ctx context.Context, kube bool, policyKick, podKick <-chan struct{}) {
	t := time.NewTicker(e.opts.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.policies.sync()
			if kube {
				// Catches cgroups that were missing at the last pod
				// event.
				e.policies.refreshScopes()
			}
		case <-policyKick:
			e.policies.sync()
		case <-podKick:
			e.policies.refreshScopes()
		}
	}
}

// Close detaches the sensor and waits for the loops to finish; events
// already read are delivered first. The pinned deny lists stay. It also
// undoes a Start that failed half way, so it takes each part as present or
// not.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		if e.cancel != nil {
			e.cancel()
		}
		if e.watcher != nil {
			e.watcher.Stop()
		}
		// Closing the sensor ends the read loop after its last flush.
		e.closeErr = e.sensor.Close()
		e.wg.Wait()
		if e.requests != nil {
			e.requests.Close()
		}
		if e.bpfStats != nil {
			e.bpfStats.Close()
		}
	})
	return e.closeErr
}

// Started is when the engine started counting: the start of Counters'
// cumulative series.
func (e *Engine) Started() time.Time { return e.stats.start }

// Host is the node the events come from.
func (e *Engine) Host() event.Host { return e.host }

// Statuses returns the state of every policy, sorted by name.
func (e *Engine) Statuses() []policy.Status { return e.policies.statuses() }

// Syncs counts the passes over the policy sources, done or given up: a
// caller waits for passes rather than for a time that might not hold one.
func (e *Engine) Syncs() uint64 { return e.policies.syncs.Load() }

// Sensor is the kernel side, for callers that inspect it.
func (e *Engine) Sensor() *kernel.Sensor { return e.sensor }

func (e *Engine) readLoop() {
	// Not cancelled at Close: the events read before it are delivered.
	ctx := context.Background()
	pending := make(chan plog.Logs, pendingBatches)
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		for logs := range pending {
			if err := e.opts.Consume(ctx, logs); err != nil {
				n := logs.LogRecordCount()
				e.stats.consumerRefused.Add(uint64(n))
				e.logger.Warn("next consumer refused events", zap.Int("events", n), zap.Error(err))
			}
		}
	}()
	// The read loop ends once every batch it made is delivered.
	defer func() {
		close(pending)
		<-delivered
	}()
	batch := event.NewBatch(e.host, e.opts.Version, e.clock.Time)
	flush := func() {
		if batch.Len() == 0 {
			return
		}
		if e.opts.Consume == nil {
			batch.Take()
			return
		}
		pending <- batch.Take()
	}
	for {
		rec, err := e.sensor.Read()
		if errors.Is(err, kernel.ErrClosed) {
			flush()
			return
		}
		if err != nil {
			e.stats.undecodable.Add(1)
			e.logger.Warn("unreadable record from the kernel", zap.Error(err))
			continue
		}
		e.handle(rec, batch)
		if batch.Len() >= maxBatch || !e.sensor.Pending() {
			flush()
		}
	}
}

// machineID is the host.id of semantic conventions on Linux.
func machineID() string {
	b, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
