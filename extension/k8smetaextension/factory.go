// Package k8smetaextension is the `k8s_metadata` extension: one node-local
// Kubernetes cache (pods of this node by container id, namespaces, owner
// chains) shared by the ebpf receiver, which enforces podSelector policies
// and watches TracingPolicy objects through it, and the k8s_workload
// processor, which labels events with it.
package k8smetaextension

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/vigilsec/vigil/extension/k8smetaextension/internal/metadata"
)

// NewFactory returns the factory of the k8s_metadata extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, create, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	return &Config{
		AuthType:       AuthServiceAccount,
		NodeFromEnvVar: "K8S_NODE_NAME",
		SyncTimeout:    30 * time.Second,
	}
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return &metadataExtension{cfg: cfg.(*Config), logger: set.Logger}, nil
}
