package enforcementprocessor

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := cm.Sub(component.NewIDWithName(typ, name).String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := createDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	if err := confmap.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != ModeEnforce || cfg.PinPath != "/sys/fs/bpf/vigil" || cfg.ProcFS != "/proc" ||
		cfg.K8sMetadata != "" || cfg.K8sTimeout != 10*time.Second || cfg.K8sQueueSize != 100 {
		t.Errorf("defaults %+v", cfg)
	}
}

func TestLoadConfig(t *testing.T) {
	cfg := loadConfig(t, "")
	if err := confmap.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) != 7 || cfg.ExpireInterval != 10*time.Second || cfg.K8sMetadata != "k8s_metadata/cluster" ||
		cfg.K8sTimeout != 5*time.Second || cfg.K8sQueueSize != 50 {
		t.Fatalf("config %+v", cfg)
	}
	if r := cfg.Rules[3]; r.Action != ActionDenyConnect || r.Scope != ScopeContainer || r.TTL != 10*time.Minute {
		t.Errorf("rule 3 %+v", r)
	}
	if r := cfg.Rules[4]; r.Audit == nil || *r.Audit {
		t.Errorf("rule 4 audit %v", r.Audit)
	}
	if r := cfg.Rules[5]; r.Action != ActionK8sLabel || r.Label != "vigil.dev/quarantine=true" || r.GracePeriod != nil {
		t.Errorf("rule 5 %+v", r)
	}
	if r := cfg.Rules[6]; r.Action != ActionK8sDeletePod || r.GracePeriod == nil || *r.GracePeriod != 0 {
		t.Errorf("rule 6 %+v", r)
	}
	compiled, err := cfg.Rules[5].compile(nopTelemetry())
	if err != nil || compiled.labelKey != "vigil.dev/quarantine" || compiled.labelValue != "true" {
		t.Errorf("label %q=%q, %v", compiled.labelKey, compiled.labelValue, err)
	}
	if compiled, err = cfg.Rules[6].compile(nopTelemetry()); err != nil || compiled.grace == nil || *compiled.grace != 0 {
		t.Errorf("grace %v, %v", compiled.grace, err)
	}
}

// TestK8sActionsNeedTheExtension: a Kubernetes action without k8s_metadata
// is refused, naming the rule, the action and the missing key.
func TestK8sActionsNeedTheExtension(t *testing.T) {
	cfg := loadConfig(t, "")
	cfg.K8sMetadata = ""
	err := confmap.Validate(cfg)
	for _, w := range []string{
		`rules[5] "quarantine-miner-pod": action: k8s_label needs the processor's k8s_metadata`,
		`rules[6] "delete-miner-pod": action: k8s_delete_pod needs the processor's k8s_metadata`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v\ndoes not contain %q", err, w)
		}
	}
}

// TestValidateNamesTheRuleAndField: a broken rule is refused with its name
// and the reason, and every broken field is reported.
func TestValidateNamesTheRuleAndField(t *testing.T) {
	for name, want := range map[string][]string{
		"bad_condition":  {`rules[0] "typo": condition: `},
		"unknown_action": {`rules[0] "explode": action: "explode" is not one of kill, signal, deny_exec, deny_connect, drop, k8s_label, k8s_delete_pod`},
		"bad_k8s": {
			`k8s_timeout: must be positive, got 0s`,
			`k8s_queue_size: 0: 1 to 100000`,
			`rules[0] "no-label": action: k8s_label needs the processor's k8s_metadata`,
			`rules[0] "no-label": label: must be set for the k8s_label action`,
			`rules[1] "bad-label": label: key "Vigil Quarantine": name part must consist of alphanumeric characters`,
			`value "yes!": a valid label must be an empty string or consist of alphanumeric characters`,
			`rules[2] "not-key-value": label: "quarantined": "key=value"`,
			`rules[3] "half-seconds": grace_period: 1.5s: whole seconds`,
			`rules[3] "half-seconds": label: only for the k8s_label action, not k8s_delete_pod`,
			`rules[4] "grace-on-kill": grace_period: only for the k8s_delete_pod action, not kill`,
		},
		"bad_extension_id": {`k8s_metadata: `},
		"bad_params": {
			`mode: "audit": enforce or monitor`,
			`rules[0] "p": signal: "SIGNOPE": not a signal name`,
			`rules[0] "p": rate_limit: "10": N/duration, as 10/1m`,
			`rules[1] "p": name: used by another rule`,
			`rules[1] "p": ttl: a positive duration`,
			`rules[1] "p": destination: ::ffff:10.0.0.0/64: a v4-mapped prefix must be at least 96 bits long`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := confmap.Validate(loadConfig(t, name))
			if err == nil {
				t.Fatal("validated")
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseRateLimit(t *testing.T) {
	for s, want := range map[string]struct {
		n   int
		per time.Duration
	}{"10/1m": {10, time.Minute}, "1/s": {1, time.Second}, "5 / 30s": {5, 30 * time.Second}} {
		n, per, err := parseRateLimit(s)
		if err != nil || n != want.n || per != want.per {
			t.Errorf("%q: %d/%s %v", s, n, per, err)
		}
	}
	for _, s := range []string{"10", "0/1m", "x/1m", "1/0s", "1/-1m", "1/fortnight"} {
		if _, _, err := parseRateLimit(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestLimiterAllowsNPerWindow(t *testing.T) {
	l := newLimiter(3, time.Minute)
	t0 := time.Now()
	got := 0
	for i := range 10 {
		if l.allow(t0.Add(time.Duration(i) * time.Second)) {
			got++
		}
	}
	if got != 3 {
		t.Fatalf("allowed %d of a burst, want 3", got)
	}
	// A minute after the first, one slot frees.
	if !l.allow(t0.Add(time.Minute)) || l.allow(t0.Add(time.Minute)) {
		t.Error("the window did not slide by one")
	}
}
