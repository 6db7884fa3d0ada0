package k8smetaextension

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/collector/component"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/vigilsec/vigil/internal/k8s"

	"github.com/vigilsec/vigil/extension/k8smetaextension/internal/metadata"
)

// Metadata is what the extension offers the components that name it.
type Metadata interface {
	// Cache is the node-local view of pods, namespaces and workloads.
	Cache() *k8s.Cache
	// RESTConfig is the connection the cache uses, for components that
	// watch other objects (TracingPolicy) with the same credentials.
	RESTConfig() *rest.Config
}

// FromHost returns the k8s_metadata extension id among host's extensions.
func FromHost(host component.Host, id component.ID) (Metadata, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("extension %q is not configured: add it under extensions and service.extensions", id)
	}
	m, ok := ext.(Metadata)
	if !ok {
		return nil, fmt.Errorf("extension %q is not a %s extension", id, metadata.Type)
	}
	return m, nil
}

type metadataExtension struct {
	cfg    *Config
	logger *zap.Logger
	rest   *rest.Config
	cache  *k8s.Cache
}

var _ Metadata = (*metadataExtension)(nil)

func (e *metadataExtension) Cache() *k8s.Cache        { return e.cache }
func (e *metadataExtension) RESTConfig() *rest.Config { return e.rest }

func (e *metadataExtension) Start(ctx context.Context, _ component.Host) error {
	node := os.Getenv(e.cfg.NodeFromEnvVar)
	if node == "" {
		return fmt.Errorf("node_from_env_var: $%s is empty; set it to this node's name (the downward API's spec.nodeName)", e.cfg.NodeFromEnvVar)
	}
	cfg, err := e.restConfig()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	c, err := k8s.NewCache(client, node)
	if err != nil {
		return err
	}
	e.rest, e.cache = cfg, c
	c.Start()
	waitCtx, cancel := context.WithTimeout(ctx, e.cfg.SyncTimeout)
	defer cancel()
	if err := c.WaitForSync(waitCtx); err != nil {
		// Events flow without metadata until the API server answers;
		// stopping the collector would lose them instead.
		e.logger.Error("Kubernetes metadata is not available yet; events go on without it until the informers sync",
			zap.String("host", cfg.Host), zap.Error(err))
		return nil
	}
	e.logger.Info("Kubernetes metadata cache synced", zap.String("node", node),
		zap.String("host", cfg.Host), zap.Int("pods", len(c.Pods())))
	return nil
}

func (e *metadataExtension) Shutdown(context.Context) error {
	if e.cache != nil {
		e.cache.Stop()
	}
	return nil
}

func (e *metadataExtension) restConfig() (*rest.Config, error) {
	if e.cfg.AuthType == AuthServiceAccount {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("auth_type serviceAccount: %w (outside a pod, use auth_type kubeConfig)", err)
		}
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if e.cfg.KubeConfig != "" {
		rules.ExplicitPath = e.cfg.KubeConfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: e.cfg.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return cfg, nil
}
