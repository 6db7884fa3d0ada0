package k8smetaextension

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

func TestDefaultConfig(t *testing.T) {
	cfg := loadConfig(t, "")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, &Config{AuthType: AuthServiceAccount, NodeFromEnvVar: "K8S_NODE_NAME", SyncTimeout: 30 * time.Second}, cfg)
}

func TestLoadConfig(t *testing.T) {
	cfg := loadConfig(t, "kubeconfig")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, &Config{
		AuthType:       AuthKubeConfig,
		KubeConfig:     "/etc/vigil/kubeconfig",
		Context:        "prod",
		NodeFromEnvVar: "NODE",
		SyncTimeout:    5 * time.Second,
	}, cfg)
}

// TestValidateNamesTheField: every broken field is reported, by name.
func TestValidateNamesTheField(t *testing.T) {
	err := confmap.Validate(loadConfig(t, "bad"))
	require.Error(t, err)
	for _, want := range []string{
		`auth_type: "token", want serviceAccount or kubeConfig`,
		"node_from_env_var: required",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not contain %q", err, want)
		}
	}

	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"kubeconfig with serviceAccount": {
			Config{AuthType: AuthServiceAccount, KubeConfig: "/k", NodeFromEnvVar: "N"},
			"kubeconfig and context: only with auth_type kubeConfig",
		},
		"context with serviceAccount": {
			Config{AuthType: AuthServiceAccount, Context: "prod", NodeFromEnvVar: "N"},
			"kubeconfig and context: only with auth_type kubeConfig",
		},
		"negative sync_timeout": {
			Config{AuthType: AuthKubeConfig, NodeFromEnvVar: "N", SyncTimeout: -time.Second},
			"sync_timeout: -1s is negative",
		},
	} {
		t.Run(name, func(t *testing.T) {
			assert.ErrorContains(t, tc.cfg.Validate(), tc.want)
		})
	}
	// kubeConfig without a path means $KUBECONFIG, then ~/.kube/config.
	assert.NoError(t, (&Config{AuthType: AuthKubeConfig, NodeFromEnvVar: "N"}).Validate())
}
