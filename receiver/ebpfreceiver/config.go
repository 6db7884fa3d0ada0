package ebpfreceiver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/vigilsec/vigil/distribution/policies"
	"github.com/vigilsec/vigil/internal/engine"
	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/redact"
	"github.com/vigilsec/vigil/receiver/ebpfreceiver/internal/metadata"
)

// Config is the ebpf receiver's configuration.
type Config struct {
	Process ProcessConfig `mapstructure:"process"`
	// MetricsBuilderConfig switches each of the receiver's metrics and
	// resource attributes (`metrics:`, `resource_attributes:`; the list
	// is in documentation.md).
	metadata.MetricsBuilderConfig `mapstructure:",squash"`
	// RingBufferSize is the size in bytes of the ring buffer that carries
	// events from the kernel, shared by all CPUs.
	RingBufferSize int `mapstructure:"ring_buffer_size"`
	// MetricsInterval is how often the receiver's own metrics are emitted
	// to a metrics pipeline.
	MetricsInterval time.Duration `mapstructure:"metrics_interval"`
	// Policies are TracingPolicy files and directories of them (*.yaml,
	// *.yml), watched: changes take effect without a restart.
	Policies []string `mapstructure:"policies"`
	// Library loads Vigil's detection library (distribution/policies),
	// after the configured policies and the cluster's: a policy of the
	// same name from either replaces the library's.
	Library LibraryConfig `mapstructure:"library"`
	// Redaction hides secrets in command lines before any exporter sees
	// them (Tetragon's redaction filters).
	Redaction RedactionConfig `mapstructure:"redaction"`
	// PolicyReloadInterval is how often the policy sources are checked.
	PolicyReloadInterval time.Duration `mapstructure:"policy_reload_interval"`
	// K8sMetadata names a k8s_metadata extension. With it the receiver
	// loads the cluster's TracingPolicy and TracingPolicyNamespaced
	// objects, and enforces podSelector, containerSelector and the
	// namespace of namespaced policies in the kernel.
	K8sMetadata string `mapstructure:"k8s_metadata"`
	// StatusFile is where the receiver writes the state of every policy
	// (loaded, refused and why, mechanisms) for `vigil policy status`;
	// empty for none.
	StatusFile string `mapstructure:"status_file"`
	// ExposeStackAddresses keeps the address of every frame of the stack
	// traces policies ask for (Tetragon's --expose-stack-addresses). Off,
	// frames are named without them: kernel addresses defeat KASLR, and
	// user addresses ASLR, for whoever reads the events.
	ExposeStackAddresses bool `mapstructure:"expose_stack_addresses"`
	// BPFStats turns the kernel's BPF statistics on while the receiver
	// runs (BPF_ENABLE_STATS, Linux 5.8+), for vigil.bpf.runs and
	// vigil.bpf.run_time. They cost every BPF program run on the node two
	// clock reads, Vigil's and any other's: off by default.
	BPFStats bool `mapstructure:"bpf_stats"`
	// PinPath is the bpffs directory where the maps that outlive the
	// collector are pinned (the enforcement deny lists); the enforcement
	// processor's pin_path must name the same.
	PinPath string `mapstructure:"pin_path"`

	// mechanism forces the process sensor's attach mechanism; tests use it
	// to cover the fallback on kernels that have the preferred one.
	mechanism string
}

// LibraryConfig chooses the library policies that load, and which of them
// enforce.
type LibraryConfig struct {
	// Enabled loads every library policy but those Disabled names.
	Enabled  bool     `mapstructure:"enabled"`
	Disabled []string `mapstructure:"disabled"`
	// Enforce names the library policies whose enforcement actions
	// (Sigkill, Override) are taken; the others run in monitor mode and
	// report them.
	Enforce []string `mapstructure:"enforce"`
}

// enabled returns the library policies to load, in the library's order,
// as the engine reads them at every sync.
func (c LibraryConfig) enabled() []engine.LibraryPolicy {
	if !c.Enabled {
		return nil
	}
	var out []engine.LibraryPolicy
	for _, n := range policies.Names() {
		if slices.Contains(c.Disabled, n) {
			continue
		}
		lp := engine.LibraryPolicy{Source: policies.Source + n, Enforce: slices.Contains(c.Enforce, n)}
		lp.Data, _ = policies.YAML(n)
		if lp.Enforce {
			// Other bytes, so that a switch of mode is a change of the
			// source and replaces the running version.
			lp.Data = append(lp.Data, "\n# library.enforce\n"...)
		}
		out = append(out, lp)
	}
	return out
}

func (c LibraryConfig) validate() []error {
	var errs []error
	known := policies.Names()
	for field, names := range map[string][]string{"disabled": c.Disabled, "enforce": c.Enforce} {
		for i, n := range names {
			if !slices.Contains(known, n) {
				errs = append(errs, fmt.Errorf("library.%s[%d]: %q is not a library policy (one of %s)", field, i, n, strings.Join(known, ", ")))
			} else if field == "enforce" && slices.Contains(c.Disabled, n) {
				errs = append(errs, fmt.Errorf("library.enforce[%d]: %q is also disabled", i, n))
			}
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// RedactionConfig chooses what is hidden in process arguments.
type RedactionConfig struct {
	// Defaults applies redact.Defaults: password, token and key flags and
	// assignments, credentials in URLs, authorization headers, AWS key ids.
	Defaults bool `mapstructure:"defaults"`
	// Filters are more: each hides the capture groups of its expressions
	// in the arguments of its binaries (all when none are listed).
	Filters []RedactionFilter `mapstructure:"filters"`
}

// RedactionFilter is one filter, as Tetragon's redactionFilters entries.
type RedactionFilter struct {
	Binaries []string `mapstructure:"binaries"`
	Redact   []string `mapstructure:"redact"`
}

// redactor builds the filters; Validate has compiled them once already.
func (c RedactionConfig) redactor() (*redact.Redactor, error) {
	var filters []redact.Filter
	if c.Defaults {
		filters = append(filters, redact.Defaults...)
	}
	for i, f := range c.Filters {
		res, err := redact.Compile(f.Redact)
		if err != nil {
			return nil, fmt.Errorf("redaction.filters[%d].%w", i, err)
		}
		filters = append(filters, redact.Filter{Binaries: f.Binaries, Redact: res})
	}
	return redact.New(filters), nil
}

// ProcessConfig configures the process cache.
type ProcessConfig struct {
	// CacheSize bounds the number of processes remembered, running or
	// recently exited.
	CacheSize int `mapstructure:"cache_size"`
	// ProcFS is where the host's proc filesystem is mounted: /proc on the
	// host, typically /procRoot in a pod.
	ProcFS string `mapstructure:"procfs"`
	// Ancestors is how many ancestors beyond the parent each event lists.
	Ancestors int `mapstructure:"ancestors"`
	// Environment puts the environment of each new program on its exec
	// event.
	Environment EnvironmentConfig `mapstructure:"environment"`
}

// EnvironmentConfig chooses what of the environment exec events carry.
type EnvironmentConfig struct {
	// Enabled reads the first 2047 bytes (the kernel's ENV_MAX) of every
	// new program's environment (off: environments hold secrets, and
	// reading costs).
	Enabled bool `mapstructure:"enabled"`
	// Values names the variables whose values are kept; the others are
	// listed with their value masked.
	Values []string `mapstructure:"values"`
}

const (
	minCacheSize       = 64
	maxAncestors       = 64
	minRingBufferSize  = 4096
	maxRingBufferSize  = 1 << 30
	minMetricsInterval = 100 * time.Millisecond
	minReloadInterval  = 100 * time.Millisecond
)

// engineOptions is the engine's share of the configuration; the receiver
// adds what comes from the Collector (logger, consumer, Kubernetes).
func (c *Config) engineOptions() (engine.Options, error) {
	red, err := c.Redaction.redactor()
	if err != nil {
		return engine.Options{}, err
	}
	return engine.Options{
		RingBufferSize: uint32(c.RingBufferSize), Mechanism: kernel.Mechanism(c.mechanism), PinPath: c.PinPath,
		BPFStats: c.BPFStats,
		ProcFS:   c.Process.ProcFS, CacheSize: c.Process.CacheSize, Ancestors: c.Process.Ancestors,
		Environment: c.Process.Environment.Enabled, EnvironmentValues: c.Process.Environment.Values,
		Redactor: red, ExposeStackAddresses: c.ExposeStackAddresses,
		Policies: c.Policies, ReloadInterval: c.PolicyReloadInterval, Library: c.Library.enabled(),
		StatusFile: c.StatusFile,
	}, nil
}

// Validate checks the configuration; each error names its field.
func (c *Config) Validate() error {
	var errs []error
	if c.Process.CacheSize < minCacheSize {
		errs = append(errs, fmt.Errorf("process.cache_size: must be at least %d, got %d", minCacheSize, c.Process.CacheSize))
	}
	if !filepath.IsAbs(c.Process.ProcFS) {
		errs = append(errs, fmt.Errorf("process.procfs: must be an absolute path, got %q", c.Process.ProcFS))
	}
	if !filepath.IsAbs(c.PinPath) {
		errs = append(errs, fmt.Errorf("pin_path: must be an absolute path on a bpffs, got %q", c.PinPath))
	}
	if c.Process.Ancestors < 0 || c.Process.Ancestors > maxAncestors {
		errs = append(errs, fmt.Errorf("process.ancestors: must be between 0 and %d, got %d", maxAncestors, c.Process.Ancestors))
	}
	if n := c.RingBufferSize; n < minRingBufferSize || n > maxRingBufferSize || n&(n-1) != 0 || n%os.Getpagesize() != 0 {
		errs = append(errs, fmt.Errorf("ring_buffer_size: must be a power of two between %d and %d bytes, got %d", minRingBufferSize, maxRingBufferSize, n))
	}
	for i, p := range c.Policies {
		if p == "" {
			errs = append(errs, fmt.Errorf("policies[%d]: must not be empty", i))
		}
	}
	errs = append(errs, c.Library.validate()...)
	if _, err := c.Redaction.redactor(); err != nil {
		errs = append(errs, err)
	}
	for i, f := range c.Redaction.Filters {
		if len(f.Redact) == 0 {
			errs = append(errs, fmt.Errorf("redaction.filters[%d].redact: at least one expression is required", i))
		}
	}
	if c.PolicyReloadInterval < minReloadInterval {
		errs = append(errs, fmt.Errorf("policy_reload_interval: must be at least %s, got %s", minReloadInterval, c.PolicyReloadInterval))
	}
	if c.StatusFile != "" && !filepath.IsAbs(c.StatusFile) {
		errs = append(errs, fmt.Errorf("status_file: must be an absolute path, got %q", c.StatusFile))
	}
	if c.K8sMetadata != "" {
		var id component.ID
		if err := id.UnmarshalText([]byte(c.K8sMetadata)); err != nil {
			errs = append(errs, fmt.Errorf("k8s_metadata: %w", err))
		}
	}
	if c.MetricsInterval < minMetricsInterval {
		errs = append(errs, fmt.Errorf("metrics_interval: must be at least %s, got %s", minMetricsInterval, c.MetricsInterval))
	}
	return errors.Join(errs...)
}
