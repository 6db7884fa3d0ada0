package enforcementprocessor

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/contexts/ottllog"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/processor/enforcementprocessor/internal/metadata"
)

// enforcementProcessor evaluates the rules on every log record, acts, and
// appends an enforcement.action record for each action taken or skipped.
type enforcementProcessor struct {
	cfg     *Config
	set     processor.Settings
	next    consumer.Logs
	rules   []*rule
	actions metric.Int64Counter
	self    int

	// deny is opened at the first deny action: the receiver creates the
	// pins when it starts, possibly after this processor.
	mu   sync.Mutex
	deny *kernel.DenyLists

	// kube runs the Kubernetes actions; nil when no rule has one.
	kube *kubeActions

	cancel context.CancelFunc
	done   chan struct{}
}

func newProcessor(cfg *Config, set processor.Settings, next consumer.Logs) (*enforcementProcessor, error) {
	p := &enforcementProcessor{cfg: cfg, set: set, next: next, self: os.Getpid()}
	for i, rc := range cfg.Rules {
		if rc.Mode == "" {
			rc.Mode = cfg.Mode
		}
		r, err := rc.compile(set.TelemetrySettings)
		if err != nil {
			return nil, fmt.Errorf("rules[%d] %q: %w", i, rc.Name, err)
		}
		p.rules = append(p.rules, r)
		if isK8sAction(r.Action) && p.kube == nil {
			p.kube = newKubeActions(cfg, p.emitK8s)
		}
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("enforcement processor: creating its metric: %w", err)
	}
	p.actions = tb.ProcessorEnforcementActions
	return p, nil
}

func (p *enforcementProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: true}
}

// Start runs the loop that removes expired deny-list entries and, when a
// rule has a Kubernetes action, connects to the API server through the
// k8s_metadata extension and starts the workers that call it.
func (p *enforcementProcessor) Start(startCtx context.Context, host component.Host) error {
	// Each rule's series exists from the start, at zero, with the result
	// its mode gives: a dashboard shows a rule that has not fired yet as
	// zero, not as no data.
	for _, r := range p.rules {
		result := event.ResultTaken
		if r.Mode == ModeMonitor {
			result = event.ResultSkipped
		}
		p.actions.Add(startCtx, 0, metric.WithAttributes(
			attribute.String("rule", r.Name), attribute.String("action", r.Action), attribute.String("result", result)))
	}
	if p.kube != nil {
		if err := p.kube.start(host, p.cfg.K8sMetadata, p.set.BuildInfo.Version); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.cfg.ExpireInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				p.expire(now)
			}
		}
	}()
	return nil
}

// Shutdown waits for the queued Kubernetes actions (their calls are
// cancelled when ctx ends first), stops the expiry loop and closes the deny
// lists; their entries stay in the kernel until they expire or are removed.
func (p *enforcementProcessor) Shutdown(ctx context.Context) error {
	if p.kube != nil {
		p.kube.stop(ctx)
	}
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deny != nil {
		err := p.deny.Close()
		p.deny = nil
		return err
	}
	return nil
}

func (p *enforcementProcessor) expire(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deny == nil {
		return
	}
	if n, err := p.deny.Expire(now); err != nil {
		p.set.Logger.Warn("removing expired deny-list entries", zap.Error(err))
	} else if n > 0 {
		p.set.Logger.Debug("expired deny-list entries removed", zap.Int("entries", n))
	}
}

// denyLists opens the receiver's deny lists once.
func (p *enforcementProcessor) denyLists() (*kernel.DenyLists, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deny == nil {
		d, err := kernel.OpenDenyLists(p.cfg.PinPath)
		if err != nil {
			return nil, err
		}
		p.deny = d
	}
	return p.deny, nil
}

// ConsumeLogs applies the rules. Dropped records leave the batch; audit
// records join it, one ResourceLogs per triggering ResourceLogs.
func (p *enforcementProcessor) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	type audit struct {
		resource pcommon.Resource
		records  []auditRecord
	}
	var audits []audit
	rls := ld.ResourceLogs()
	for _, rl := range rls.All() {
		var records []auditRecord
		for _, sl := range rl.ScopeLogs().All() {
			sl.LogRecords().RemoveIf(func(lr plog.LogRecord) bool {
				drop := false
				for _, r := range p.rules {
					if !p.matches(ctx, r, rl, sl, lr) {
						continue
					}
					e, dropped, queued := p.act(ctx, r, rl.Resource(), lr)
					drop = drop || dropped
					// A queued action is audited when the API server
					// has answered.
					if r.audit && !queued {
						records = append(records, e)
					}
				}
				return drop
			})
		}
		rl.ScopeLogs().RemoveIf(func(sl plog.ScopeLogs) bool { return sl.LogRecords().Len() == 0 })
		if len(records) > 0 {
			audits = append(audits, audit{rl.Resource(), records})
		}
	}
	n := rls.Len()
	for _, a := range audits {
		appendAudits(ld, a.resource, p.set.BuildInfo.Version, a.records)
	}
	// Resources whose records were all dropped go; their audit records,
	// appended above, carry a copy of the resource.
	i := 0
	rls.RemoveIf(func(rl plog.ResourceLogs) bool {
		i++
		return i <= n && rl.ScopeLogs().Len() == 0
	})
	if ld.LogRecordCount() == 0 {
		return nil
	}
	return p.next.ConsumeLogs(ctx, ld)
}

// matches evaluates a rule's condition; one that fails to evaluate (a type
// mismatch, say) does not match.
func (p *enforcementProcessor) matches(ctx context.Context, r *rule, rl plog.ResourceLogs, sl plog.ScopeLogs, lr plog.LogRecord) bool {
	tCtx := ottllog.NewTransformContext(rl, sl, lr)
	defer tCtx.Close()
	ok, err := r.condition.Eval(ctx, tCtx)
	if err != nil {
		p.set.Logger.Debug("rule condition failed to evaluate", zap.String("rule", r.Name), zap.Error(err))
		return false
	}
	return ok
}

// act takes a rule's action on the record that matched and returns its
// audit record, and whether the record is dropped. A Kubernetes action is
// queued instead (queued true): its worker counts and audits it when the
// API server has answered.
func (p *enforcementProcessor) act(ctx context.Context, r *rule, res pcommon.Resource, lr plog.LogRecord) (_ auditRecord, dropped, queued bool) {
	attrs := lr.Attributes()
	a := auditRecord{Enforcement: event.Enforcement{
		Time: time.Now(), Source: event.SourceProcessor, Rule: r.Name, Action: r.Action, Mode: r.Mode,
		TriggerExecID: strAttr(attrs, event.AttrExecID),
		ContainerID:   strAttr(res.Attributes(), event.AttrContainerID),
	}}
	e := &a.Enforcement
	defer func() {
		if !queued {
			p.count(ctx, r, e.Result)
		}
	}()
	skip := func(reason string) (auditRecord, bool, bool) {
		e.Result, e.Reason = event.ResultSkipped, reason
		return a, false, false
	}

	// What the action aims at, from the event: without it, nothing to do.
	var entry kernel.DenyEntry
	switch r.Action {
	case ActionKill, ActionSignal:
		e.Signal = unix.SignalName(r.signal)
		e.PID = intAttr(attrs, event.AttrProcessPID)
		e.ExecID = e.TriggerExecID
		e.Binary = strAttr(attrs, event.AttrProcessExecutablePath)
		if _, ok := attrs.Get(event.AttrProcessStartBootNs); !ok || e.PID <= 0 {
			e.Error = "the event has no process.pid and vigil.process.start_boot_ns"
			return skip(event.ReasonNoTarget)
		}
		if e.PID == 1 || e.PID == int64(p.self) {
			return skip(event.ReasonProtected)
		}
	case ActionDenyExec:
		e.RuleID = r.id
		e.Binary = strAttr(attrs, event.AttrProcessExecutablePath)
		if !filepath.IsAbs(e.Binary) {
			e.Error = "the event has no absolute process.executable.path"
			return skip(event.ReasonNoTarget)
		}
		entry = kernel.DenyEntry{Kind: kernel.DenyExec, Binary: e.Binary, Rule: r.id}
	case ActionDenyConnect:
		e.RuleID = r.id
		var err error
		if entry, err = r.connectEntry(attrs); err != nil {
			e.Error = err.Error()
			return skip(event.ReasonNoTarget)
		}
		e.Destination = destination(entry)
		e.CgroupID = entry.Cgroup
	case ActionK8sLabel, ActionK8sDeletePod:
		var ok bool
		if a.pod, ok = podOf(res.Attributes()); !ok {
			e.Error = "the event has no k8s.namespace.name, k8s.pod.name and k8s.pod.uid (the k8s_workload processor sets them: put it before enforcement)"
			return skip(event.ReasonNoTarget)
		}
		if r.Action == ActionK8sLabel {
			a.label = r.Label
		}
		a.grace = r.grace
		// Before the rate limit: the burst of events of one pod does
		// not use up the rule's actions for the other pods.
		if p.kube.duplicate(r, a.pod, time.Now()) {
			return skip(event.ReasonDuplicate)
		}
	}
	if r.limit != nil && !r.limit.allow(time.Now()) {
		return skip(event.ReasonRateLimited)
	}
	if r.Mode == ModeMonitor {
		return skip(event.ReasonMonitor)
	}
	if isK8sAction(r.Action) {
		job := k8sJob{rule: r, audit: a, resource: pcommon.NewResource()}
		res.CopyTo(job.resource)
		reason, detail := p.kube.enqueue(job, time.Now())
		if reason == "" {
			return a, false, true
		}
		e.Error = detail
		if reason == event.ReasonError {
			e.Result, e.Reason = event.ResultFailed, reason
			return a, false, false
		}
		return skip(reason)
	}

	e.Result, e.Reason = event.ResultTaken, event.ReasonRuleMatched
	fail := func(err error) {
		e.Result, e.Reason, e.Error = event.ResultFailed, event.ReasonError, err.Error()
		p.set.Logger.Warn("enforcement action failed", zap.String("rule", r.Name), zap.String("action", r.Action), zap.Error(err))
	}
	switch r.Action {
	case ActionKill, ActionSignal:
		start := intAttr(attrs, event.AttrProcessStartBootNs)
		reason, err := signalProcess(p.cfg.ProcFS, int(e.PID), start, r.signal)
		switch {
		case err != nil:
			fail(err)
		case reason != "":
			e.Result, e.Reason = event.ResultSkipped, reason
		}
	case ActionDenyExec, ActionDenyConnect:
		if r.TTL > 0 {
			entry.Expires = time.Now().Add(r.TTL)
			e.Expires = entry.Expires
		}
		d, err := p.denyLists()
		if err == nil {
			err = d.Add(entry)
		}
		if err != nil {
			fail(err)
		}
	case ActionDrop:
		dropped = true
	}
	return a, dropped, false
}

// count adds an action to the otelcol_processor_enforcement_actions metric.
func (p *enforcementProcessor) count(ctx context.Context, r *rule, result string) {
	p.actions.Add(ctx, 1, metric.WithAttributes(
		attribute.String("rule", r.Name), attribute.String("action", r.Action), attribute.String("result", result)))
}

// connectEntry is the deny_connect entry for an event: the configured
// destination and port, else the event's; the event's cgroup when scoped to
// the container.
func (r *rule) connectEntry(attrs pcommon.Map) (kernel.DenyEntry, error) {
	e := kernel.DenyEntry{Kind: kernel.DenyConnect, Prefix: r.destination, Port: uint16(r.Port), Rule: r.id}
	if !e.Prefix.IsValid() {
		a, err := netip.ParseAddr(strAttr(attrs, event.AttrDestinationAddress))
		if err != nil {
			return e, fmt.Errorf("the event has no destination.address and the rule no destination")
		}
		a = a.Unmap()
		e.Prefix = netip.PrefixFrom(a, a.BitLen())
		if e.Port == 0 {
			e.Port = uint16(intAttr(attrs, event.AttrDestinationPort))
		}
	}
	if r.Scope == ScopeContainer {
		id := intAttr(attrs, event.AttrCgroupID)
		if id <= 0 {
			return e, fmt.Errorf("scope container: the event has no vigil.cgroup.id")
		}
		e.Cgroup = uint64(id)
	}
	return e, nil
}

// destination describes a deny_connect target: "10.0.0.0/8 port 443".
func destination(e kernel.DenyEntry) string {
	if e.Port == 0 {
		return e.Prefix.String()
	}
	return e.Prefix.String() + " port " + strconv.Itoa(int(e.Port))
}

func strAttr(m pcommon.Map, k string) string {
	v, ok := m.Get(k)
	if !ok {
		return ""
	}
	return v.AsString()
}

// intAttr is an int attribute, or one written as a decimal string; -1 when
// absent or not a number.
func intAttr(m pcommon.Map, k string) int64 {
	v, ok := m.Get(k)
	if !ok {
		return -1
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeStr:
		if n, err := strconv.ParseInt(v.Str(), 10, 64); err == nil {
			return n
		}
	}
	return -1
}
