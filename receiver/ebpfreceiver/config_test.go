package ebpfreceiver

import (
	"path/filepath"
	"reflect"
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
	sub, err := cm.Sub(component.MustNewIDWithName("ebpf", name).String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConfigDefaultsAreValid(t *testing.T) {
	cfg := loadConfig(t, "")
	if err := confmap.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	want := createDefaultConfig().(*Config)
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("empty config %+v, want the defaults %+v", cfg, want)
	}
}

func TestConfigCustom(t *testing.T) {
	cfg := loadConfig(t, "custom")
	want := Config{
		Process: ProcessConfig{CacheSize: 4096, ProcFS: "/procRoot", Ancestors: 3,
			Environment: EnvironmentConfig{Enabled: true, Values: []string{"PATH"}}},
		RingBufferSize:       16 << 20,
		MetricsInterval:      30 * time.Second,
		Policies:             []string{"/etc/vigil/policies", "/opt/extra.yaml"},
		PolicyReloadInterval: 5 * time.Second,
		K8sMetadata:          "k8s_metadata/node",
		StatusFile:           "/run/vigil/status.json",
		ExposeStackAddresses: true,
		BPFStats:             true,
		PinPath:              "/sys/fs/bpf/vigil-node",
		Library:              LibraryConfig{Enabled: true, Disabled: []string{"network"}, Enforce: []string{"execution", "reverse-shell"}},
		Redaction:            RedactionConfig{Filters: []RedactionFilter{{Binaries: []string{"/usr/bin/mysql"}, Redact: []string{`-p(\S+)`}}}},
	}
	// Each metric is switched on its own; the rest keep their default.
	mbc := cfg.MetricsBuilderConfig
	if mbc.Metrics.VigilProcessCacheSize.Enabled || !mbc.Metrics.VigilEvents.Enabled || !mbc.ResourceAttributes.HostName.Enabled {
		t.Errorf("metrics: %+v, want only vigil.process_cache.size off", mbc)
	}
	cfg.MetricsBuilderConfig = want.MetricsBuilderConfig
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("got %+v, want %+v", *cfg, want)
	}
	if err := confmap.Validate(cfg); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidationNamesEachField(t *testing.T) {
	err := confmap.Validate(loadConfig(t, "invalid"))
	const want = `process.cache_size: must be at least 64, got 10
process.procfs: must be an absolute path, got "proc"
pin_path: must be an absolute path on a bpffs, got "bpf"
process.ancestors: must be between 0 and 64, got 100
ring_buffer_size: must be a power of two between 4096 and 1073741824 bytes, got 5000
policies[0]: must not be empty
library.disabled[1]: "no-such-policy" is not a library policy (one of container-escape, credential-access, defense-evasion, execution, kernel-modules, network, persistence, privilege-escalation, reverse-shell)
library.enforce[0]: "network" is also disabled
redaction.filters[0].redact[0]: "password=\\S+" has no capture group: nothing to hide
redaction.filters[1].redact: at least one expression is required
policy_reload_interval: must be at least 100ms, got 10ms
status_file: must be an absolute path, got "status.json"
k8s_metadata: in "k8s metadata" id: invalid character(s) in type "k8s metadata"
metrics_interval: must be at least 100ms, got 10ms`
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
}
