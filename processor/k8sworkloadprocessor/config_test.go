package k8sworkloadprocessor

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(typ, name).String())
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg
}

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, component.MustNewID("k8s_metadata"), cfg.K8sMetadata)
	assert.Equal(t, 2*time.Second, cfg.WaitForMetadata)
	assert.Equal(t, 10000, cfg.MaxPending)
}

func TestLoadConfig(t *testing.T) {
	cfg := loadConfig(t, "")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, &Config{
		K8sMetadata:     component.MustNewIDWithName("k8s_metadata", "cluster"),
		WaitForMetadata: 500 * time.Millisecond,
		MaxPending:      100,
		Extract: ExtractConfig{
			Labels: []FieldExtractConfig{
				{Key: "app.kubernetes.io/name"},
				{TagName: "team", Key: "team", From: FromNamespace},
				{KeyRegex: "^tier-(.*)$", TagName: "k8s.tier.$1"},
			},
			Annotations: []FieldExtractConfig{{Key: "vigil.dev/owner"}},
		},
	}, cfg)

	nowait := loadConfig(t, "nowait")
	require.NoError(t, confmap.Validate(nowait))
	assert.Zero(t, nowait.WaitForMetadata)
}

// TestValidateNamesTheField: every broken field is reported, by its path.
func TestValidateNamesTheField(t *testing.T) {
	err := confmap.Validate(loadConfig(t, "bad"))
	require.Error(t, err)
	for _, want := range []string{
		"wait_for_metadata: -1s is negative",
		"max_pending: -1: must be positive",
		"extract.labels[0]: key and key_regex are exclusive",
		"extract.labels[1]: key or key_regex is required",
		"extract.labels[2]: key_regex: error parsing regexp",
		`extract.labels[3]: from: "node", want pod or namespace`,
		"extract.labels[4]: tag_name: $ references need key_regex",
		"extract.annotations[0]: from: namespace annotations are not kept",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not contain %q", err, want)
		}
	}
}

// TestExtractRules covers contrib's extraction semantics: default tag
// names, exact keys, anchored regexes with references in tag_name.
func TestExtractRules(t *testing.T) {
	labels := map[string]string{
		"app.kubernetes.io/name":      "web",
		"app.kubernetes.io/component": "frontend",
		"tier-frontend":               "yes",
		"tier-frontend-canary":        "",
		"pre-tier-backend":            "no",
	}
	for name, tc := range map[string]struct {
		rule FieldExtractConfig
		what string
		want map[string]string
	}{
		"key": {FieldExtractConfig{Key: "app.kubernetes.io/name"}, "labels",
			map[string]string{"k8s.pod.labels.app.kubernetes.io/name": "web"}},
		"key absent": {FieldExtractConfig{Key: "nope"}, "labels", map[string]string{}},
		"namespace default tag": {FieldExtractConfig{Key: "app.kubernetes.io/name", From: FromNamespace}, "labels",
			map[string]string{"k8s.namespace.labels.app.kubernetes.io/name": "web"}},
		"annotation default tag": {FieldExtractConfig{Key: "app.kubernetes.io/name"}, "annotations",
			map[string]string{"k8s.pod.annotations.app.kubernetes.io/name": "web"}},
		"tag_name": {FieldExtractConfig{Key: "app.kubernetes.io/name", TagName: "service.name"}, "labels",
			map[string]string{"service.name": "web"}},
		"regex is anchored, empty values kept": {FieldExtractConfig{KeyRegex: "tier-(.*)", TagName: "k8s.tier.$1"}, "labels",
			map[string]string{"k8s.tier.frontend": "yes", "k8s.tier.frontend-canary": ""}},
		"regex default tag is the key": {FieldExtractConfig{KeyRegex: `app\.kubernetes\.io/.*`}, "labels",
			map[string]string{"k8s.pod.labels.app.kubernetes.io/name": "web", "k8s.pod.labels.app.kubernetes.io/component": "frontend"}},
		"regex named group": {FieldExtractConfig{KeyRegex: `app\.kubernetes\.io/(?P<what>.*)`, TagName: "app.${what}"}, "labels",
			map[string]string{"app.name": "web", "app.component": "frontend"}},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := tc.rule.compile(tc.what)
			require.NoError(t, err)
			got := map[string]string{}
			r.apply(labels, func(k, v string) { got[k] = v })
			assert.Equal(t, tc.want, got)
		})
	}
}
