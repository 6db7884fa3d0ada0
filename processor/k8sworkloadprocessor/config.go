package k8sworkloadprocessor

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
)

// Sources of an extraction rule, as contrib's k8s_attributes names them.
const (
	FromPod       = "pod"
	FromNamespace = "namespace"
)

// Config is the k8s_workload processor's configuration.
type Config struct {
	// K8sMetadata is the id of the k8s_metadata extension whose cache
	// labels the events.
	K8sMetadata component.ID `mapstructure:"k8s_metadata"`
	// WaitForMetadata is how long the records of a container the cache
	// does not know yet are held for its pod to arrive, counted from the
	// first held record of that container; 0 passes them on at once.
	WaitForMetadata time.Duration `mapstructure:"wait_for_metadata"`
	// MaxPending bounds the log records held at once; past it, records of
	// unknown containers pass on at once without metadata.
	MaxPending int `mapstructure:"max_pending"`
	// Extract names the labels and annotations copied to the resource.
	Extract ExtractConfig `mapstructure:"extract"`
}

// ExtractConfig lists the labels and annotations to copy.
type ExtractConfig struct {
	Labels      []FieldExtractConfig `mapstructure:"labels"`
	Annotations []FieldExtractConfig `mapstructure:"annotations"`
}

// FieldExtractConfig is one extraction rule, with the keys and meaning of
// contrib's k8s_attributes processor.
type FieldExtractConfig struct {
	// TagName is the resource attribute to set. By default it is
	// k8s.pod.labels.<key> (k8s.namespace.labels.<key> from a namespace,
	// k8s.pod.annotations.<key> for annotations). With key_regex it may
	// refer to the regex's groups: $1 or ${1} (write ${1}x, not $1x,
	// before letters), ${name}; $0 is the whole key.
	TagName string `mapstructure:"tag_name"`
	// Key is the exact label or annotation key.
	Key string `mapstructure:"key"`
	// KeyRegex selects every key it matches in full (it is anchored at
	// both ends); exclusive with Key.
	KeyRegex string `mapstructure:"key_regex"`
	// From is pod (the default) or namespace.
	From string `mapstructure:"from"`
}

// Validate checks the configuration; each error names the field.
func (c *Config) Validate() error {
	var errs []error
	if c.WaitForMetadata < 0 {
		errs = append(errs, fmt.Errorf("wait_for_metadata: %s is negative (0 disables waiting)", c.WaitForMetadata))
	}
	if c.MaxPending < 0 || (c.MaxPending == 0 && c.WaitForMetadata > 0) {
		errs = append(errs, fmt.Errorf("max_pending: %d: must be positive while wait_for_metadata is set", c.MaxPending))
	}
	for i, f := range c.Extract.Labels {
		if _, err := f.compile("labels"); err != nil {
			errs = append(errs, fmt.Errorf("extract.labels[%d]: %w", i, err))
		}
	}
	for i, f := range c.Extract.Annotations {
		if _, err := f.compile("annotations"); err != nil {
			errs = append(errs, fmt.Errorf("extract.annotations[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// extractRule is a compiled FieldExtractConfig.
type extractRule struct {
	tag       string
	key       string
	keyRegex  *regexp.Regexp // nil: key
	namespace bool
}

// compile checks f, an entry of extract.<what> (labels or annotations).
func (f FieldExtractConfig) compile(what string) (extractRule, error) {
	r := extractRule{tag: f.TagName, key: f.Key}
	switch f.From {
	case "", FromPod:
	case FromNamespace:
		// The cache drops namespace annotations on arrival: they are
		// never read, and a namespace can carry large ones.
		if what == "annotations" {
			return r, errors.New("from: namespace annotations are not kept by the k8s_metadata cache; only pod annotations can be extracted")
		}
		r.namespace = true
	default:
		return r, fmt.Errorf("from: %q, want %s or %s", f.From, FromPod, FromNamespace)
	}
	switch {
	case f.Key != "" && f.KeyRegex != "":
		return r, errors.New("key and key_regex are exclusive")
	case f.Key == "" && f.KeyRegex == "":
		return r, errors.New("key or key_regex is required")
	case f.KeyRegex != "":
		// Anchored as contrib does, so `team` does not also pick
		// `team-lead`.
		re, err := regexp.Compile("^(?:" + f.KeyRegex + ")$")
		if err != nil {
			return r, fmt.Errorf("key_regex: %w", err)
		}
		r.keyRegex = re
	case strings.Contains(f.TagName, "$"):
		return r, errors.New("tag_name: $ references need key_regex")
	}
	if r.tag == "" {
		key := f.Key
		if r.keyRegex != nil {
			key = "$0"
		}
		source := "pod"
		if r.namespace {
			source = "namespace"
		}
		r.tag = "k8s." + source + "." + what + "." + key
	}
	return r, nil
}

// apply sets r's attributes from kv (a pod's or namespace's labels or
// annotations) through put.
func (r extractRule) apply(kv map[string]string, put func(k, v string)) {
	if r.keyRegex == nil {
		if v, ok := kv[r.key]; ok {
			put(r.tag, v)
		}
		return
	}
	// Sorted, so that when two keys give the same tag name the same one
	// wins every time.
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		m := r.keyRegex.FindStringSubmatchIndex(k)
		if m == nil {
			continue
		}
		put(string(r.keyRegex.ExpandString(nil, r.tag, k, m)), kv[k])
	}
}
