package event

import (
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Enforcement sources (vigil.enforcement.source).
const (
	SourceProcessor = "processor"
	SourceKernel    = "kernel"
)

// Enforcement results (vigil.enforcement.result).
const (
	ResultTaken   = "taken"
	ResultSkipped = "skipped"
	ResultFailed  = "failed"
)

// Enforcement reasons (vigil.enforcement.reason): why an action was taken
// or, for skipped and failed ones, why not.
const (
	// ReasonRuleMatched: an enforcement rule's condition matched.
	ReasonRuleMatched = "rule_matched"
	// ReasonPolicySelector: a TracingPolicy selector acted in the kernel.
	ReasonPolicySelector = "policy_selector"
	// ReasonDenyList: a deny list acted: the exec one killed the process at
	// exec, or the connect one refused its connect.
	ReasonDenyList = "deny_list"
	// ReasonMonitor: the rule runs in monitor mode; nothing was done.
	ReasonMonitor = "monitor"
	// ReasonRateLimited: the rule had used its rate_limit.
	ReasonRateLimited = "rate_limited"
	// ReasonPIDGone: the process had exited before the signal.
	ReasonPIDGone = "pid_gone"
	// ReasonPIDReused: the pid now belongs to another process (its start
	// time differs from the event's), which is left alone.
	ReasonPIDReused = "pid_reused"
	// ReasonProtected: the target is init (pid 1) or the collector itself,
	// which no rule may signal.
	ReasonProtected = "protected"
	// ReasonNoTarget: the event lacks what the action needs (a pid and
	// start time, a binary, a destination, a cgroup).
	ReasonNoTarget = "no_target"
	// ReasonError: the action failed; vigil.enforcement.error says why.
	ReasonError = "error"
	// ReasonPodGone: no pod of that name is left in the namespace.
	ReasonPodGone = "pod_gone"
	// ReasonPodRecreated: the pod of that name has another uid than the
	// event's (a controller recreated it), and is left alone.
	ReasonPodRecreated = "pod_recreated"
	// ReasonQueueFull: the Kubernetes actions' queue was full.
	ReasonQueueFull = "queue_full"
	// ReasonDuplicate: the rule already acts, or recently acted, on this
	// pod.
	ReasonDuplicate = "duplicate"
)

// Enforcement is one enforcement action taken or skipped, by an enforcement
// rule or in the kernel. It becomes an enforcement.action record.
type Enforcement struct {
	Time   time.Time
	Source string
	// Rule is the enforcement rule or TracingPolicy name
	// (security_rule.name); RuleID the id its deny-list entries carry.
	Rule   string
	RuleID uint64
	// Action is the rule's action (kill, signal, deny_exec, deny_connect,
	// drop) or the policy's (Sigkill, Signal, Override).
	Action string
	Signal string // SIGKILL, SIGTERM... for signalling actions
	Mode   string // enforce or monitor
	Result string
	Reason string
	Error  string
	// Expires is when a deny-list entry stops applying; zero never.
	Expires time.Time

	// Target: what the action is aimed at. Zero values are left out.
	PID         int64
	ExecID      string
	Binary      string
	ContainerID string
	CgroupID    uint64
	Destination string

	// TriggerExecID is the exec id of the event that caused the action.
	TriggerExecID string
}

func (e Enforcement) fill(lr plog.LogRecord, _ *processAttrs) { e.Fill(lr) }

// Fill writes the enforcement.action record into lr.
func (e Enforcement) Fill(lr plog.LogRecord) {
	lr.SetEventName(NameEnforcementAction)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(e.Time))
	if lr.ObservedTimestamp() == 0 {
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	}
	sev, sevText := plog.SeverityNumberWarn, "WARN"
	if e.Result == ResultFailed {
		sev, sevText = plog.SeverityNumberError, "ERROR"
	} else if e.Result == ResultSkipped {
		sev, sevText = plog.SeverityNumberInfo, "INFO"
	}
	lr.SetSeverityNumber(sev)
	lr.SetSeverityText(sevText)
	a := lr.Attributes()
	a.PutStr(AttrSecurityRuleName, e.Rule)
	a.PutStr(AttrEnforcementSource, e.Source)
	if e.RuleID != 0 {
		a.PutStr(AttrEnforcementRuleID, RuleIDString(e.RuleID))
	}
	a.PutStr(AttrEnforcementAction, e.Action)
	if e.Signal != "" {
		a.PutStr(AttrEnforcementSignal, e.Signal)
	}
	a.PutStr(AttrEnforcementMode, e.Mode)
	a.PutStr(AttrEnforcementResult, e.Result)
	a.PutStr(AttrEnforcementReason, e.Reason)
	if e.Error != "" {
		a.PutStr(AttrEnforcementError, e.Error)
	}
	if !e.Expires.IsZero() {
		a.PutStr(AttrEnforcementExpires, e.Expires.UTC().Format(time.RFC3339Nano))
	}
	if e.PID != 0 {
		a.PutInt(AttrTargetPID, e.PID)
	}
	putNonEmpty(a, AttrTargetExecID, e.ExecID)
	putNonEmpty(a, AttrTargetBinary, e.Binary)
	putNonEmpty(a, AttrTargetContainerID, e.ContainerID)
	if e.CgroupID != 0 {
		a.PutInt(AttrTargetCgroupID, int64(e.CgroupID))
	}
	putNonEmpty(a, AttrTargetDestination, e.Destination)
	putNonEmpty(a, AttrExecID, e.TriggerExecID)
	lr.Body().SetStr(e.summary())
}

// summary is the body: "kill /usr/bin/sleep pid 42: taken (rule_matched) by rule r".
func (e Enforcement) summary() string {
	var b strings.Builder
	b.WriteString(e.Action)
	if e.Signal != "" && e.Action != "kill" && e.Action != "Sigkill" {
		b.WriteString(" " + e.Signal)
	}
	switch {
	case e.Destination != "":
		b.WriteString(" " + e.Destination)
		if e.CgroupID != 0 {
			b.WriteString(" from cgroup " + strconv.FormatUint(e.CgroupID, 10))
		}
	case e.Binary != "":
		b.WriteString(" " + e.Binary)
	}
	if e.PID != 0 {
		b.WriteString(" pid " + strconv.FormatInt(e.PID, 10))
	}
	b.WriteString(": " + e.Result + " (" + e.Reason)
	if e.Error != "" {
		b.WriteString(": " + e.Error)
	}
	b.WriteString(") by " + e.Rule)
	return b.String()
}

// RuleIDString formats a deny-list rule id as the audit records and
// `vigil enforcement list` show it.
func RuleIDString(id uint64) string {
	s := strconv.FormatUint(id, 16)
	return "0x" + strings.Repeat("0", 16-len(s)) + s
}

func putNonEmpty(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

// EnforcementScopeName is the instrumentation scope of the records the
// enforcement processor adds.
const EnforcementScopeName = "github.com/vigilsec/vigil/processor/enforcementprocessor"

// AppendEnforcement adds records to logs in one new ResourceLogs that
// carries a copy of resource (the triggering records' resource), under the
// enforcement processor's scope.
func AppendEnforcement(logs plog.Logs, resource pcommon.Resource, version string, records []Enforcement) {
	if len(records) == 0 {
		return
	}
	rl := logs.ResourceLogs().AppendEmpty()
	resource.CopyTo(rl.Resource())
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(EnforcementScopeName)
	sl.Scope().SetVersion(version)
	recs := sl.LogRecords()
	recs.EnsureCapacity(len(records))
	for _, e := range records {
		e.Fill(recs.AppendEmpty())
	}
}
