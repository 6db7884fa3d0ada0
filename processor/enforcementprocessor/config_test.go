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
	if cfg.Mode != ModeEnforce || cfg.PinPath != "/sys/fs/bpf/vigil" || cfg.ProcFS != "/proc" {
		t.Errorf("defaults %+v", cfg)
	}
}

func TestLoadConfig(t *testing.T) {
	cfg := loadConfig(t, "")
	if err := confmap.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) != 5 || cfg.ExpireInterval != 10*time.Second {
		t.Fatalf("config %+v", cfg)
	}
	if r := cfg.Rules[3]; r.Action != ActionDenyConnect || r.Scope != ScopeContainer || r.TTL != 10*time.Minute {
		t.Errorf("rule 3 %+v", r)
	}
	if r := cfg.Rules[4]; r.Audit == nil || *r.Audit {
		t.Errorf("rule 4 audit %v", r.Audit)
	}
}

// TestValidateNamesTheRuleAndField: a broken rule is refused with its name
// and the reason, and every broken field is reported.
func TestValidateNamesTheRuleAndField(t *testing.T) {
	for name, want := range map[string][]string{
		"bad_condition":  {`rules[0] "typo": condition: `},
		"unknown_action": {`rules[0] "explode": action: "explode" is not one of kill, signal, deny_exec, deny_connect, drop`},
		"bad_params": {
			`mode: "audit": enforce or monitor`,
			`rules[0] "p": signal: "SIGNOPE": not a signal name`,
			`rules[0] "p": rate_limit: "10": N/duration, as 10/1m`,
			`rules[1] "p": name: used by another rule`,
			`rules[1] "p": ttl: a positive duration`,
			`rules[1] "p": destination: "::1": the connect deny list holds IPv4 destinations only`,
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
