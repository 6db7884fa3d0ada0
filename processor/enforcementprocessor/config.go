package enforcementprocessor

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/contexts/ottllog"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/ottlfuncs"
	"go.opentelemetry.io/collector/component"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/vigilsec/vigil/internal/kernel"
)

// Modes of a rule.
const (
	// ModeEnforce takes the action.
	ModeEnforce = "enforce"
	// ModeMonitor only audits what the action would have been.
	ModeMonitor = "monitor"
)

// Actions of a rule.
const (
	ActionKill        = "kill"
	ActionSignal      = "signal"
	ActionDenyExec    = "deny_exec"
	ActionDenyConnect = "deny_connect"
	ActionDrop        = "drop"
	// ActionK8sLabel adds the rule's label to the event's pod.
	ActionK8sLabel = "k8s_label"
	// ActionK8sDeletePod deletes the event's pod.
	ActionK8sDeletePod = "k8s_delete_pod"
)

// isK8sAction reports whether an action calls the Kubernetes API.
func isK8sAction(action string) bool {
	return action == ActionK8sLabel || action == ActionK8sDeletePod
}

// ScopeContainer scopes a deny_connect entry to the offending process's
// cgroup (vigil.cgroup.id); the default applies it to the whole node.
const ScopeContainer = "container"

// Config is the enforcement processor's configuration.
type Config struct {
	// Mode is the default mode of the rules: enforce or monitor.
	Mode string `mapstructure:"mode"`
	// Rules are evaluated in order on every log record; each rule whose
	// condition matches acts, independently of the others.
	Rules []RuleConfig `mapstructure:"rules"`
	// PinPath is the bpffs directory where the ebpf receiver pinned its
	// deny lists (deny_exec, deny_connect).
	PinPath string `mapstructure:"pin_path"`
	// ProcFS is where the host's proc filesystem is mounted; the start
	// time of a pid is read there before it is signalled.
	ProcFS string `mapstructure:"procfs"`
	// ExpireInterval is how often expired deny-list entries are removed.
	ExpireInterval time.Duration `mapstructure:"expire_interval"`
	// K8sMetadata is the component id of the k8s_metadata extension whose
	// connection (RESTConfig) the k8s_label and k8s_delete_pod actions
	// use; required when a rule has one of them.
	K8sMetadata string `mapstructure:"k8s_metadata"`
	// K8sTimeout bounds each Kubernetes API call of an action.
	K8sTimeout time.Duration `mapstructure:"k8s_timeout"`
	// K8sQueueSize bounds the Kubernetes actions waiting for a worker;
	// an action that finds the queue full is skipped (queue_full).
	K8sQueueSize int `mapstructure:"k8s_queue_size"`
}

// RuleConfig is one response rule.
type RuleConfig struct {
	// Name identifies the rule in audit records, metrics and deny-list
	// entries; unique within the processor.
	Name string `mapstructure:"name"`
	// Condition is an OTTL boolean expression on the log record and its
	// resource (the ottllog context): attributes["process.pid"],
	// resource.attributes["container.id"], event_name...
	Condition string `mapstructure:"condition"`
	// Action is kill, signal, deny_exec, deny_connect, drop, k8s_label or
	// k8s_delete_pod.
	Action string `mapstructure:"action"`
	// Mode overrides the processor's mode for this rule.
	Mode string `mapstructure:"mode"`
	// RateLimit bounds how often the rule acts: "N/duration", at most N
	// actions in any window of that duration ("10/1m", "1/s"). Matches
	// beyond it are audited as rate_limited. Empty: no limit.
	RateLimit string `mapstructure:"rate_limit"`
	// Signal is the signal of the signal action: SIGTERM, TERM or a number.
	Signal string `mapstructure:"signal"`
	// TTL is how long a deny_exec or deny_connect entry applies; 0 forever.
	TTL time.Duration `mapstructure:"ttl"`
	// Destination (an IPv4 or IPv6 address or CIDR) and Port (0: every
	// port) are
	// what deny_connect refuses; when Destination is empty the event's
	// destination.address (and, when Port is 0, destination.port) are.
	Destination string `mapstructure:"destination"`
	Port        int    `mapstructure:"port"`
	// Scope "container" limits a deny_connect entry to the cgroup of the
	// event's process; empty applies it to every process of the node.
	Scope string `mapstructure:"scope"`
	// Label is what k8s_label sets on the event's pod: "key=value", with
	// Kubernetes label syntax ("vigil.dev/quarantine=true").
	Label string `mapstructure:"label"`
	// GracePeriod is k8s_delete_pod's grace period, in whole seconds; 0
	// removes the pod from the API at once (kubectl delete --force
	// --grace-period=0). Unset: the pod's own
	// terminationGracePeriodSeconds (30s unless it says otherwise), as
	// kubectl delete does.
	GracePeriod *time.Duration `mapstructure:"grace_period"`
	// Audit, when false, stops the rule's audit records (the metric still
	// counts its actions): for drop rules that silence noise.
	Audit *bool `mapstructure:"audit"`
}

const (
	minExpireInterval = 100 * time.Millisecond
	// maxK8sQueueSize bounds k8s_queue_size: each queued action holds a
	// copy of its event's resource.
	maxK8sQueueSize = 100000
	// maxRateLimit bounds N in "N/duration": the limiter remembers the
	// time of each of the last N actions.
	maxRateLimit = 100000
)

// Validate checks the configuration; each error names the rule and field.
func (c *Config) Validate() error {
	var errs []error
	if c.Mode != ModeEnforce && c.Mode != ModeMonitor {
		errs = append(errs, fmt.Errorf("mode: %q: enforce or monitor", c.Mode))
	}
	if !filepath.IsAbs(c.PinPath) {
		errs = append(errs, fmt.Errorf("pin_path: must be an absolute path, got %q", c.PinPath))
	}
	if !filepath.IsAbs(c.ProcFS) {
		errs = append(errs, fmt.Errorf("procfs: must be an absolute path, got %q", c.ProcFS))
	}
	if c.ExpireInterval < minExpireInterval {
		errs = append(errs, fmt.Errorf("expire_interval: must be at least %s, got %s", minExpireInterval, c.ExpireInterval))
	}
	if c.K8sMetadata != "" {
		var id component.ID
		if err := id.UnmarshalText([]byte(c.K8sMetadata)); err != nil {
			errs = append(errs, fmt.Errorf("k8s_metadata: %w", err))
		}
	}
	if c.K8sTimeout <= 0 {
		errs = append(errs, fmt.Errorf("k8s_timeout: must be positive, got %s", c.K8sTimeout))
	}
	if c.K8sQueueSize < 1 || c.K8sQueueSize > maxK8sQueueSize {
		errs = append(errs, fmt.Errorf("k8s_queue_size: %d: 1 to %d", c.K8sQueueSize, maxK8sQueueSize))
	}
	names := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		where := fmt.Sprintf("rules[%d] %q", i, r.Name)
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("rules[%d]: name: must not be empty", i))
		} else if names[r.Name] {
			errs = append(errs, fmt.Errorf("%s: name: used by another rule", where))
		}
		names[r.Name] = true
		if isK8sAction(r.Action) && c.K8sMetadata == "" {
			errs = append(errs, fmt.Errorf("%s: action: %s needs the processor's k8s_metadata (the id of a k8s_metadata extension, whose connection it uses)", where, r.Action))
		}
		if _, err := r.compile(nopTelemetry()); err != nil {
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				errs = append(errs, fmt.Errorf("%s: %w", where, e))
			}
		}
	}
	return errors.Join(errs...)
}

// nopTelemetry is what the OTTL parser gets at validation, where the
// collector's telemetry is not known yet.
func nopTelemetry() component.TelemetrySettings {
	return component.TelemetrySettings{Logger: zap.NewNop(), MeterProvider: metricnoop.NewMeterProvider(), TracerProvider: tracenoop.NewTracerProvider()}
}

// rule is a compiled RuleConfig.
type rule struct {
	RuleConfig
	id          uint64
	condition   *ottl.Condition[*ottllog.TransformContext]
	signal      unix.Signal
	destination netip.Prefix // invalid: from the event
	limit       *limiter     // nil: no limit
	audit       bool
	// labelKey, labelValue: k8s_label's label.
	labelKey, labelValue string
	// grace is k8s_delete_pod's grace period in seconds; nil: the pod's.
	grace *int64
}

// compile checks a rule and prepares it; errors name the field. The error
// is always an errors.Join of one error per field.
func (r RuleConfig) compile(set component.TelemetrySettings) (*rule, error) {
	var errs []error
	c := &rule{RuleConfig: r, id: ruleID(r.Name), audit: r.Audit == nil || *r.Audit}
	if strings.TrimSpace(r.Condition) == "" {
		errs = append(errs, errors.New("condition: must not be empty (a rule acts on the records it matches)"))
	} else {
		parser, err := ottllog.NewParser(ottlfuncs.StandardConverters[*ottllog.TransformContext](), set)
		if err == nil {
			c.condition, err = parser.ParseCondition(r.Condition)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("condition: %w", err))
		}
	}
	if r.Mode != "" && r.Mode != ModeEnforce && r.Mode != ModeMonitor {
		errs = append(errs, fmt.Errorf("mode: %q: enforce or monitor", r.Mode))
	}
	switch r.Action {
	case ActionKill:
		c.signal = unix.SIGKILL
	case ActionSignal:
		sig, err := parseSignal(r.Signal)
		if err != nil {
			errs = append(errs, fmt.Errorf("signal: %w", err))
		}
		c.signal = sig
	case ActionDenyExec, ActionDenyConnect, ActionDrop, ActionK8sDeletePod:
	case ActionK8sLabel:
		var err error
		if c.labelKey, c.labelValue, err = parseLabel(r.Label); err != nil {
			errs = append(errs, fmt.Errorf("label: %w", err))
		}
	case "":
		errs = append(errs, errors.New("action: must not be empty: kill, signal, deny_exec, deny_connect, drop, k8s_label or k8s_delete_pod"))
	default:
		errs = append(errs, fmt.Errorf("action: %q is not one of kill, signal, deny_exec, deny_connect, drop, k8s_label, k8s_delete_pod", r.Action))
	}
	if r.Label != "" && r.Action != ActionK8sLabel {
		errs = append(errs, fmt.Errorf("label: only for the k8s_label action, not %s", r.Action))
	}
	if r.GracePeriod != nil {
		g := *r.GracePeriod
		switch {
		case r.Action != ActionK8sDeletePod:
			errs = append(errs, fmt.Errorf("grace_period: only for the k8s_delete_pod action, not %s", r.Action))
		case g < 0 || g%time.Second != 0:
			errs = append(errs, fmt.Errorf("grace_period: %s: whole seconds, 0 or more (0 removes the pod at once)", g))
		default:
			s := int64(g / time.Second)
			c.grace = &s
		}
	}
	if r.Signal != "" && r.Action != ActionSignal {
		errs = append(errs, fmt.Errorf("signal: only for the signal action, not %s", r.Action))
	}
	deny := r.Action == ActionDenyExec || r.Action == ActionDenyConnect
	if r.TTL < 0 || (r.TTL != 0 && !deny) {
		errs = append(errs, fmt.Errorf("ttl: a positive duration, for deny_exec and deny_connect only, got %s for %s", r.TTL, r.Action))
	}
	if r.Action != ActionDenyConnect && (r.Destination != "" || r.Port != 0 || r.Scope != "") {
		errs = append(errs, errors.New("destination, port, scope: only for the deny_connect action"))
	}
	if r.Destination != "" {
		p, err := kernel.ParseDestination(r.Destination)
		if err != nil {
			errs = append(errs, fmt.Errorf("destination: %w", err))
		}
		c.destination = p
	}
	if r.Port < 0 || r.Port > 65535 {
		errs = append(errs, fmt.Errorf("port: %d: 0 (every port) to 65535", r.Port))
	}
	if r.Scope != "" && r.Scope != ScopeContainer {
		errs = append(errs, fmt.Errorf("scope: %q: container, or empty for the whole node", r.Scope))
	}
	if r.RateLimit != "" {
		n, per, err := parseRateLimit(r.RateLimit)
		if err != nil {
			errs = append(errs, fmt.Errorf("rate_limit: %w", err))
		} else {
			c.limit = newLimiter(n, per)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// parseLabel splits "key=value" and checks both halves as Kubernetes does
// (a qualified name, "prefix/name"; a value of up to 63 characters, which
// may be empty).
func parseLabel(s string) (key, value string, err error) {
	if s == "" {
		return "", "", errors.New(`must be set for the k8s_label action: "key=value", as "vigil.dev/quarantine=true"`)
	}
	key, value, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf(`%q: "key=value", as "vigil.dev/quarantine=true"`, s)
	}
	var bad []string
	for _, msg := range validation.IsQualifiedName(key) {
		bad = append(bad, fmt.Sprintf("key %q: %s", key, msg))
	}
	for _, msg := range validation.IsValidLabelValue(value) {
		bad = append(bad, fmt.Sprintf("value %q: %s", value, msg))
	}
	if len(bad) > 0 {
		return "", "", errors.New(strings.Join(bad, "; "))
	}
	return key, value, nil
}

// parseSignal accepts SIGTERM, TERM or a number from 1 to 64.
func parseSignal(s string) (unix.Signal, error) {
	if s == "" {
		return 0, errors.New("must be set for the signal action (SIGTERM, SIGSTOP...)")
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("%d: a signal number from 1 to 64", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("%q: not a signal name", s)
	}
	return sig, nil
}

// parseRateLimit parses "N/duration": N a positive count, duration a Go
// duration ("1m", "30s") or a bare unit ("s", "m", "h": one of it).
func parseRateLimit(s string) (int, time.Duration, error) {
	count, per, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, fmt.Errorf("%q: N/duration, as 10/1m", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if err != nil || n < 1 || n > maxRateLimit {
		return 0, 0, fmt.Errorf("%q: the count must be from 1 to %d", s, maxRateLimit)
	}
	per = strings.TrimSpace(per)
	if per != "" && (per[0] < '0' || per[0] > '9') {
		per = "1" + per
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return 0, 0, fmt.Errorf("%q: the duration must be positive, as 1m or 30s", s)
	}
	return n, d, nil
}
