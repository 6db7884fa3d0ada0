package k8smetaextension

import (
	"errors"
	"fmt"
	"time"
)

// Ways the extension authenticates to the API server, as contrib's
// Kubernetes components name them.
const (
	// AuthServiceAccount uses the pod's service account (in-cluster).
	AuthServiceAccount = "serviceAccount"
	// AuthKubeConfig reads a kubeconfig file.
	AuthKubeConfig = "kubeConfig"
)

// Config is the k8s_metadata extension's configuration.
type Config struct {
	// AuthType is serviceAccount (the DaemonSet's own account) or
	// kubeConfig.
	AuthType string `mapstructure:"auth_type"`
	// KubeConfig is the kubeconfig file of auth_type kubeConfig; empty
	// means $KUBECONFIG, then ~/.kube/config.
	KubeConfig string `mapstructure:"kubeconfig"`
	// Context is the kubeconfig context to use; empty means the current.
	Context string `mapstructure:"context"`
	// NodeFromEnvVar names the environment variable holding this node's
	// name (the downward API's spec.nodeName). Only the pods of this node
	// are watched.
	NodeFromEnvVar string `mapstructure:"node_from_env_var"`
	// SyncTimeout bounds how long Start waits for the first list of pods.
	// Past it the collector runs on and the informers keep retrying, so an
	// API server that is down delays metadata without losing events.
	SyncTimeout time.Duration `mapstructure:"sync_timeout"`
}

// Validate checks the configuration without contacting the API server.
func (c *Config) Validate() error {
	var errs []error
	switch c.AuthType {
	case AuthServiceAccount:
		if c.KubeConfig != "" || c.Context != "" {
			errs = append(errs, errors.New("kubeconfig and context: only with auth_type kubeConfig"))
		}
	case AuthKubeConfig:
	default:
		errs = append(errs, fmt.Errorf("auth_type: %q, want %s or %s", c.AuthType, AuthServiceAccount, AuthKubeConfig))
	}
	if c.NodeFromEnvVar == "" {
		errs = append(errs, errors.New("node_from_env_var: required, the variable that names this node"))
	}
	if c.SyncTimeout < 0 {
		errs = append(errs, fmt.Errorf("sync_timeout: %v is negative", c.SyncTimeout))
	}
	return errors.Join(errs...)
}
