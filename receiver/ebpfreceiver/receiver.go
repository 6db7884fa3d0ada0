package ebpfreceiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/extension/k8smetaextension"
	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/k8s"
	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/process"
	"github.com/vigilsec/vigil/internal/stack"
	"github.com/vigilsec/vigil/internal/useraction"
	"github.com/vigilsec/vigil/receiver/ebpfreceiver/internal/metadata"
)

// policySyncTimeout bounds how long Start waits for the first list of the
// cluster's TracingPolicy objects.
const policySyncTimeout = 30 * time.Second

// The transport and data format of the receiver's ObsReport series.
const (
	obsTransport = "ebpf"
	obsFormat    = "kernel"
)

// maxBatch bounds how many events one ConsumeLogs carries; the reader
// flushes earlier whenever it has caught up with the ring buffer.
const maxBatch = 1024

// pendingBatches is how many batches may wait for the next consumer. The
// reader hands batches to a goroutine of their own, so that it goes on
// draining the ring buffer and building records while the pipeline takes
// the previous batch (the batch processor exports on the caller's time);
// when that many wait, it waits too.
const pendingBatches = 4

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
	obs *receiverhelper.ObsReport

	host     event.Host
	clock    kernel.BootClock
	sensor   *kernel.Sensor
	cache    *process.Cache
	kstack   *stack.Kernel
	ustack   *stack.User
	policies *policyManager
	watcher  *k8s.PolicyWatcher
	requests *useraction.Runner // GetUrl and DnsLookup
	stats    stats
	// mb builds the metrics; cgroups names the containers of the Count
	// action's cgroups. Both are the metrics loop's alone.
	mb      *metadata.MetricsBuilder
	cgroups *k8s.CgroupIndex
	// bpfStats holds the kernel's BPF statistics on (bpf_stats).
	bpfStats io.Closer

	cancel      context.CancelFunc
	metricsDone chan struct{}
	wg          sync.WaitGroup

	// Reused by the read loop for every event, which the batch turns into
	// a record before the next: a burst of hook events allocates only
	// what the record keeps.
	hook      event.Hook
	ancestors []*process.Process
	sysCalls  map[uint32]string // "sys_" + the syscall's name, by number
}

// stats are the receiver's counters, read by the metrics loop.
type stats struct {
	start           time.Time
	exec, exit      atomic.Uint64
	consumerRefused atomic.Uint64
	undecodable     atomic.Uint64

	mu    sync.Mutex
	hooks map[hookEventKey]uint64
}

// hookEventKey is what policy events are counted by: the binary is what
// the top binaries of a dashboard need.
type hookEventKey struct{ name, policy, binary string }

// maxHookEventSeries bounds the series of vigil.events for policy events: a
// policy that matches every binary of a busy node must not grow the metrics
// without end. Past it, new binaries count under otherBinaries.
const (
	maxHookEventSeries = 2048
	otherBinaries      = "(other)"
)

func (s *stats) countHook(name, policy, binary string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hooks == nil {
		s.hooks = map[hookEventKey]uint64{}
	}
	k := hookEventKey{name, policy, binary}
	if _, ok := s.hooks[k]; !ok && len(s.hooks) >= maxHookEventSeries {
		k.binary = otherBinaries
	}
	s.hooks[k]++
}

// hookEvents returns the policy events so far, by event name and policy.
func (s *stats) hookEvents() map[hookEventKey]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.hooks)
}

func newReceiver(cfg *Config, set receiver.Settings, forget func()) *ebpfReceiver {
	return &ebpfReceiver{cfg: cfg, set: set, forget: forget}
}

func (r *ebpfReceiver) setLogs(c consumer.Logs)       { r.logs = c }
func (r *ebpfReceiver) setMetrics(c consumer.Metrics) { r.metrics = c }

// Start loads the sensors once, however many pipelines use the receiver.
func (r *ebpfReceiver) Start(ctx context.Context, host component.Host) error {
	r.startOnce.Do(func() { r.startErr = r.start(ctx, host) })
	return r.startErr
}

func (r *ebpfReceiver) start(startCtx context.Context, host component.Host) error {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: r.set.ID, Transport: obsTransport, ReceiverCreateSettings: r.set, LongLivedCtx: true,
	})
	if err != nil {
		return fmt.Errorf("ebpf receiver: %w", err)
	}
	r.obs = obs
	var meta k8smetaextension.Metadata
	if r.cfg.K8sMetadata != "" {
		var id component.ID
		if err := id.UnmarshalText([]byte(r.cfg.K8sMetadata)); err != nil {
			return fmt.Errorf("ebpf receiver: k8s_metadata: %w", err)
		}
		m, err := k8smetaextension.FromHost(host, id)
		if err != nil {
			return fmt.Errorf("ebpf receiver: k8s_metadata: %w", err)
		}
		meta = m
	}
	hostname, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("ebpf receiver: reading the host name: %w", err)
	}
	r.host = event.Host{Name: hostname, ID: machineID(), NodeName: os.Getenv("K8S_NODE_NAME")}
	node := r.host.NodeName
	if node == "" {
		node = hostname
	}

	sensor, err := kernel.LoadSensor(kernel.SensorOptions{
		RingBufferSize: uint32(r.cfg.RingBufferSize),
		Mechanism:      kernel.Mechanism(r.cfg.mechanism),
		PinPath:        r.cfg.PinPath,
	})
	if err != nil {
		return fmt.Errorf("ebpf receiver: %w", err)
	}
	r.sensor = sensor
	// host_ns in matchNamespaces names the namespaces of the host's pid 1.
	sensor.SetProcFS(r.cfg.Process.ProcFS)
	r.clock = kernel.NewBootClock()
	r.cache = process.NewCache(node, r.cfg.Process.CacheSize)
	red, err := r.cfg.Redaction.redactor()
	if err != nil {
		sensor.Close()
		return fmt.Errorf("ebpf receiver: %w", err)
	}
	r.cache.SetRedactor(red)
	if env := r.cfg.Process.Environment; env.Enabled {
		if err := sensor.SetExecEnvironment(true); err != nil {
			sensor.Close()
			return fmt.Errorf("ebpf receiver: %w", err)
		}
		r.cache.SetEnvironmentValues(env.Values)
	}
	// Read on the first stack trace: most nodes never ask for one.
	r.kstack = stack.NewKernel(filepath.Join(r.cfg.Process.ProcFS, "kallsyms"))
	r.ustack = stack.NewUser(r.cfg.Process.ProcFS)

	// The sensor is attached before the scan, so a process starting in
	// between is seen by one or the other, possibly both, never neither.
	cgroupRoot, err := kernel.Cgroup2Mount()
	if err != nil {
		r.set.Logger.Warn("processes found in /proc will have no cgroup id", zap.Error(err))
	}
	n, err := r.cache.ScanProcFS(r.cfg.Process.ProcFS, cgroupRoot)
	if err != nil {
		sensor.Close()
		return fmt.Errorf("ebpf receiver: process.procfs: %w", err)
	}
	// matchBinaries needs the binaries of processes the kernel saw start
	// before it was watching.
	for _, p := range r.cache.RunningProcesses() {
		if err := sensor.SetBinary(p.PID, p.Binary, p.InitTree); err != nil {
			r.set.Logger.Debug("process binary not recorded", zap.Error(err))
		}
	}
	if _, err := policy.SourceFiles(r.cfg.Policies); err != nil {
		sensor.Close()
		return fmt.Errorf("ebpf receiver: %w", err)
	}
	// The connect deny list (the enforcement processor's deny_connect)
	// needs the cgroup connect hook even when no policy hooks connect.
	if err := sensor.EnableConnectDeny(); err != nil {
		r.set.Logger.Warn("connect deny list unavailable: deny_connect will not refuse connections", zap.Error(err))
	}
	// Changes from Kubernetes (a TracingPolicy object, a pod) wake the
	// policy loop at once; a burst of them is one pass.
	policyKick, podKick := make(chan struct{}, 1), make(chan struct{}, 1)
	kick := func(ch chan struct{}) func() {
		return func() {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	var kube *kubeSource
	if meta != nil {
		watcher, err := k8s.WatchPolicies(meta.RESTConfig(), kick(policyKick))
		if err != nil {
			sensor.Close()
			return fmt.Errorf("ebpf receiver: %w", err)
		}
		kube = &kubeSource{pods: meta.Cache(), watcher: watcher, cgroups: k8s.NewCgroupIndex(cgroupRoot)}
		kube.pods.Subscribe(func(k8s.PodEvent) { kick(podKick)() })
		watcher.Start()
		r.watcher = watcher
		syncCtx, cancel := context.WithTimeout(startCtx, policySyncTimeout)
		err = watcher.WaitForSync(syncCtx)
		cancel()
		if err != nil {
			// The file policies run; the cluster's load when the list
			// succeeds.
			r.set.Logger.Error("cluster policies not loaded yet", zap.Error(err))
		}
	}
	r.requests = useraction.New(useraction.Options{Done: func(action, target string, err error) {
		if err != nil {
			r.set.Logger.Debug("policy request failed", zap.String("action", action), zap.String("target", target), zap.Error(err))
		}
	}})
	r.policies = newPolicyManager(sensor, r.set.Logger, r.cfg.Policies, kube)
	r.policies.statusFile = r.cfg.StatusFile
	r.policies.library = r.cfg.Library.enabled()
	r.policies.sync()
	if r.cfg.BPFStats {
		// Not fatal: the events do not depend on it, and the log names
		// what the kernel lacks.
		if r.bpfStats, err = ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME)); err != nil {
			r.set.Logger.Warn("bpf_stats: the kernel's BPF statistics stay off (BPF_ENABLE_STATS needs Linux 5.8+): vigil.bpf.runs and vigil.bpf.run_time are left out", zap.Error(err))
		}
	}
	r.stats.start = time.Now()
	r.mb = metadata.NewMetricsBuilder(r.cfg.MetricsBuilderConfig, r.set, metadata.WithStartTime(pcommon.NewTimestampFromTime(r.stats.start)))
	r.cgroups = k8s.NewCgroupIndex(cgroupRoot)
	r.set.Logger.Info("process sensor attached",
		zap.String("mechanism", string(sensor.Mechanism())),
		zap.Int("processes_from_procfs", n),
		zap.String("cgroup2", cgroupRoot))

	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.readLoop()
	}()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if len(r.cfg.Policies) > 0 || kube != nil {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			t := time.NewTicker(r.cfg.PolicyReloadInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					r.policies.sync()
					if kube != nil {
						// Catches cgroups that were missing at the
						// last pod event.
						r.policies.refreshScopes()
					}
				case <-policyKick:
					r.policies.sync()
				case <-podKick:
					r.policies.refreshScopes()
				}
			}
		}()
	}
	if r.metrics != nil {
		r.metricsDone = make(chan struct{})
		go func() {
			defer close(r.metricsDone)
			r.metricsLoop(ctx)
		}()
	}
	return nil
}

// Shutdown detaches the sensors and waits for the loops to finish; events
// already read are delivered first.
func (r *ebpfReceiver) Shutdown(context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		r.forget()
		if r.sensor == nil {
			return
		}
		r.cancel()
		if r.watcher != nil {
			r.watcher.Stop()
		}
		if r.metricsDone != nil {
			<-r.metricsDone
		}
		// Closing the sensor ends the read loop after its last flush.
		err = r.sensor.Close()
		r.wg.Wait()
		if r.requests != nil {
			r.requests.Close()
		}
		if r.bpfStats != nil {
			r.bpfStats.Close()
		}
	})
	return err
}

func (r *ebpfReceiver) readLoop() {
	// Not cancelled at Shutdown: the events read before it are delivered.
	ctx := context.Background()
	pending := make(chan plog.Logs, pendingBatches)
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		for logs := range pending {
			n := logs.LogRecordCount()
			opCtx := r.obs.StartLogsOp(ctx)
			err := r.logs.ConsumeLogs(opCtx, logs)
			r.obs.EndLogsOp(opCtx, obsFormat, n, err)
			if err != nil {
				r.stats.consumerRefused.Add(uint64(n))
				r.set.Logger.Warn("next consumer refused events", zap.Int("events", n), zap.Error(err))
			}
		}
	}()
	// The read loop ends once every batch it made is delivered.
	defer func() {
		close(pending)
		<-delivered
	}()
	batch := event.NewBatch(r.host, r.set.BuildInfo.Version, r.clock.Time)
	flush := func() {
		if batch.Len() == 0 {
			return
		}
		if r.logs == nil {
			batch.Take()
			return
		}
		pending <- batch.Take()
	}
	for {
		rec, err := r.sensor.Read()
		if errors.Is(err, kernel.ErrClosed) {
			flush()
			return
		}
		if err != nil {
			r.stats.undecodable.Add(1)
			r.set.Logger.Warn("unreadable record from the kernel", zap.Error(err))
			continue
		}
		r.handle(rec, batch)
		if batch.Len() >= maxBatch || !r.sensor.Pending() {
			flush()
		}
	}
}

func (r *ebpfReceiver) handle(rec any, batch *event.Batch) {
	switch rec := rec.(type) {
	case *kernel.ExecRecord:
		p := r.cache.Exec(rec)
		// The kernel's entry learns the resolved binary, and the tree
		// flag when only the cache knew it.
		if p.Binary != rec.Filename || p.InitTree != rec.Context.InInitTree {
			r.sensor.SetBinary(p.PID, p.Binary, p.InitTree)
		}
		parent, ancestors := r.lineage(p)
		batch.Add(event.Exec{Time: r.clock.Time(rec.Ktime), Process: p, Parent: parent, Ancestors: ancestors}, p.CgroupName)
		r.stats.exec.Add(1)
		if rec.Denied {
			batch.Add(r.kernelEnforcement(rec.Ktime, p, "deny_exec", "deny_exec", "SIGKILL", event.ReasonDenyList), p.CgroupName)
		}
	case *kernel.ForkRecord:
		r.cache.Fork(rec)
	case *kernel.ExitRecord:
		p := r.cache.Exit(rec)
		if p == nil {
			// Evicted from a cache too small for the node: report
			// what the record itself says.
			p = &process.Process{PID: rec.PID, TID: rec.TID, StartTime: rec.StartTime,
				ExecID: process.ExecID(r.cache.Node(), rec.StartTime, rec.PID)}
		}
		parent, ancestors := r.lineage(p)
		batch.Add(event.Exit{Time: r.clock.Time(rec.Ktime), Process: p, Parent: parent, Ancestors: ancestors, Status: rec.Status}, p.CgroupName)
		r.stats.exit.Add(1)
	case *kernel.ConnectDeniedRecord:
		p := r.cache.Running(rec.PID)
		if p == nil {
			// Not known to the cache (it was full): what the record says.
			p = &process.Process{PID: rec.PID, TID: rec.TID}
		}
		e := r.kernelEnforcement(rec.Ktime, p, "deny_connect", "deny_connect", "", event.ReasonDenyList)
		e.Destination = rec.Destination.String()
		batch.Add(e, p.CgroupName)
	case *kernel.HookRecord:
		ev := &r.hook
		if r.hookEvent(rec, ev) {
			batch.Add(ev, ev.Process.CgroupName)
			r.stats.countHook(ev.Name, ev.Policy, ev.Process.Binary)
			if e, ok := r.hookEnforcement(rec, *ev); ok {
				batch.Add(e, ev.Process.CgroupName)
			}
		}
	}
}

// hookEvent joins a policy hook's record with its policy and process into
// ev, whose Args it reuses.
func (r *ebpfReceiver) hookEvent(rec *kernel.HookRecord, ev *event.Hook) bool {
	ih, ok := r.sensor.Hook(rec.HookID)
	if !ok {
		r.stats.undecodable.Add(1)
		r.set.Logger.Warn("event of an unknown policy hook", zap.Uint32("hook_id", rec.HookID))
		return false
	}
	p := r.cache.Running(rec.PID)
	if p == nil {
		p = &process.Process{PID: rec.PID, TID: rec.TID, ExecID: process.ExecID(r.cache.Node(), 0, rec.PID)}
	}
	parent, ancestors := r.lineage(p)
	h := ih.Hook
	var name, call string
	if h.Kind == policy.HookSyscall || h.Kind == policy.HookConnect {
		// The one syscall of the hook's list that was called.
		name, call = event.NameProcessKprobe, r.syscallCall(rec.Call)
	} else {
		name, call = hookNames(h)
	}
	*ev = event.Hook{
		Time: r.clock.Time(rec.Ktime), Process: p, Parent: parent, Ancestors: ancestors,
		Name: name, Policy: ih.Program.Policy.Metadata.Name, Call: call,
		Actions: actions(hookAction(rec, h)), Message: h.Message, Tags: h.Tags, Rule: ih.Program.Rule,
		Args: ev.Args[:0], Return: rec.Return, Ret: rec.Ret,
	}
	if int(rec.Selector) < len(h.Selectors) {
		if sel := &h.Selectors[rec.Selector]; len(sel.URLs)+len(sel.Names) > 0 {
			ev.Actions = r.request(sel, ev.Actions)
		}
	}
	for i, a := range rec.Args {
		if i >= len(h.Args) {
			break
		}
		spec := h.Args[i]
		if spec.Type == "nop" {
			continue
		}
		arg := event.HookArg{
			Index: uint32(spec.Index), Type: spec.Type, Label: spec.Label,
			Int: a.Int, Str: a.Str, IsString: spec.Kind != policy.ArgInt && spec.Kind != policy.ArgCaps,
			Truncated: a.Truncated,
		}
		switch {
		case spec.Kind == policy.ArgCaps:
			// The mask, and its capabilities by name as tetra shows them.
			arg.Names = policy.CapabilityNames(uint64(a.Int))
		case spec.Type == "capability":
			arg.Names = []string{policy.CapabilityName(int(a.Int))}
		}
		ev.Args = append(ev.Args, arg)
	}
	if len(rec.KernelStack) > 0 {
		ev.KernelStack = r.kstack.Frames(rec.KernelStack)
	}
	if len(rec.UserStack) > 0 {
		ev.UserStack = r.ustack.Frames(rec.PID, p.ExecID, rec.UserStack)
	}
	if !r.cfg.ExposeStackAddresses {
		hideAddresses(ev.KernelStack, ev.UserStack)
	}
	return true
}

// request starts the selector's GetUrl and DnsLookup requests, and returns
// the event's actions with theirs added.
func (r *ebpfReceiver) request(sel *policy.Selector, kernelActions []string) []string {
	acts := slices.Clone(kernelActions)
	for _, u := range sel.URLs {
		r.requests.Submit(useraction.GetURL, u)
	}
	for _, n := range sel.Names {
		r.requests.Submit(useraction.DNSLookup, n)
	}
	if len(sel.URLs) > 0 {
		acts = append(acts, useraction.GetURL)
	}
	if len(sel.Names) > 0 {
		acts = append(acts, useraction.DNSLookup)
	}
	return acts
}

// hookNames returns the name of a hook's events and how they name the
// hook (vigil.hook): its function, tracepoint, syscalls or binary:symbols.
func hookNames(h *policy.Hook) (eventName, call string) {
	switch h.Kind {
	case policy.HookSyscall, policy.HookConnect:
		calls := make([]string, len(h.Calls))
		for i, c := range h.Calls {
			calls[i] = "sys_" + c
		}
		return event.NameProcessKprobe, strings.Join(calls, ",")
	case policy.HookTracepoint, policy.HookRawTracepoint:
		return event.NameProcessTracepoint, strings.Join(h.Calls, ",")
	case policy.HookUprobe:
		return event.NameProcessUprobe, h.Binary + ":" + uprobeTargets(h)
	case policy.HookUsdt:
		return event.NameProcessUsdt, h.Binary + ":" + h.Calls[0]
	case policy.HookLSM:
		return event.NameProcessLSM, strings.Join(h.Calls, ",")
	}
	return event.NameProcessKprobe, strings.Join(h.Calls, ",")
}

// uprobeTargets names where a uprobe hook attaches: its symbols, then its
// offsets ("readline,0x4f2a0").
func uprobeTargets(h *policy.Hook) string {
	if len(h.Offsets) == 0 {
		return strings.Join(h.Calls, ",")
	}
	targets := slices.Clone(h.Calls)
	for _, off := range h.Offsets {
		targets = append(targets, "0x"+strconv.FormatUint(off, 16))
	}
	return strings.Join(targets, ",")
}

// syscallCall is how an event names a hooked syscall: "sys_" and its name.
func (r *ebpfReceiver) syscallCall(nr uint32) string {
	call, ok := r.sysCalls[nr]
	if !ok {
		if r.sysCalls == nil {
			r.sysCalls = make(map[uint32]string)
		}
		call = "sys_" + kernel.SyscallName(nr)
		r.sysCalls[nr] = call
	}
	return call
}

// hideAddresses clears the address of every kernel frame (one alone
// undoes KASLR) and of the user frames in a file; a user frame in no file
// keeps its address, the only thing known of it.
func hideAddresses(kernel, user []stack.Frame) {
	for i := range kernel {
		kernel[i].Address = 0
	}
	for i := range user {
		if user[i].Module != "" {
			user[i].Address = 0
		}
	}
}

// hookEnforcement is the audit record of what a policy selector did in the
// kernel: a signal sent (Sigkill, Signal) or a connect refused (Override on
// a connect hook). Selectors that only report have none.
func (r *ebpfReceiver) hookEnforcement(rec *kernel.HookRecord, ev event.Hook) (event.Enforcement, bool) {
	var h *policy.Hook
	if ih, ok := r.sensor.Hook(rec.HookID); ok {
		h = ih.Hook
	}
	action := hookAction(rec, h)
	var signal string
	switch action {
	case "Sigkill", "Signal":
		signal = unix.SignalName(syscall.Signal(rec.Signal))
		if signal == "" {
			signal = strconv.FormatUint(uint64(rec.Signal), 10)
		}
	case "Override":
	default:
		return event.Enforcement{}, false
	}
	e := r.kernelEnforcement(rec.Ktime, ev.Process, ev.Policy, action, signal, event.ReasonPolicySelector)
	for _, a := range ev.Args {
		if dst, ok := a.Destination(); ok {
			e.Destination = dst.String()
			break
		}
	}
	return e, true
}

// kernelEnforcement is an enforcement.action record for an action the
// kernel took on p.
func (r *ebpfReceiver) kernelEnforcement(ktime uint64, p *process.Process, rule, action, signal, reason string) event.Enforcement {
	return event.Enforcement{
		Time: r.clock.Time(ktime), Source: event.SourceKernel, Rule: rule,
		Action: action, Signal: signal, Mode: "enforce", Result: event.ResultTaken, Reason: reason,
		PID: int64(p.PID), ExecID: p.ExecID, Binary: p.Binary, CgroupID: p.CgroupID,
		ContainerID: k8s.ContainerIDFromCgroup(p.CgroupName), TriggerExecID: p.ExecID,
	}
}

// hookAction is what the kernel did at a hook, as Tetragon names the
// action: the signal the record says it sent, else Override where the
// selector that matched refuses the call (an LSM or fmod_ret return, a
// connect refused), else Post.
func hookAction(rec *kernel.HookRecord, h *policy.Hook) string {
	if rec.Signal == 0 && h != nil && int(rec.Selector) < len(h.Selectors) && !rec.Return {
		if sel := h.Selectors[rec.Selector]; sel.Deny || sel.Override {
			return "Override"
		}
	}
	return actionName(rec.Signal)
}

// The actions of a hook event, one slice each: events share them, read-only.
var (
	actionsPost     = []string{"Post"}
	actionsSigkill  = []string{"Sigkill"}
	actionsSignal   = []string{"Signal"}
	actionsOverride = []string{"Override"}
)

// actions is what the kernel did (hookAction), as an event's Actions.
func actions(action string) []string {
	switch action {
	case "Post":
		return actionsPost
	case "Sigkill":
		return actionsSigkill
	case "Override":
		return actionsOverride
	default:
		return actionsSignal
	}
}

// actionName is what the kernel did, as Tetragon names the action.
func actionName(signal uint32) string {
	switch signal {
	case 0:
		return "Post"
	case uint32(syscall.SIGKILL):
		return "Sigkill"
	default:
		return "Signal"
	}
}

func (r *ebpfReceiver) lineage(p *process.Process) (*process.Process, []*process.Process) {
	if p.ParentExecID == "" {
		return nil, nil
	}
	// The buffer is reused: the events of the read loop are done with
	// their ancestors before the next lookup.
	r.ancestors = r.cache.AppendAncestors(r.ancestors[:0], p, 1+r.cfg.Process.Ancestors)
	all := r.ancestors
	if len(all) == 0 {
		return nil, nil
	}
	return all[0], all[1:]
}

// machineID is the host.id of semantic conventions on Linux.
func machineID() string {
	b, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
