// Package k8smetatest runs a real k8s_metadata extension for the tests of
// the components that use it, as the Collector's *test packages do for
// their components.
package k8smetatest

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/vigilsec/vigil/extension/k8smetaextension"
)

// ID is the id the extension runs under, what a component's k8s_metadata
// setting names.
var ID = component.MustNewID("k8s_metadata")

// Host is a collector host that serves the given extensions to the
// components started on it; componenttest's nop host serves none.
type Host map[component.ID]component.Component

func (h Host) GetExtensions() map[component.ID]component.Component { return h }

// Start runs the k8s_metadata extension on the API server of kubeconfig,
// for the pods of node, until tb ends, and returns a Host that serves it
// under ID.
func Start(tb testing.TB, kubeconfig, node string) (Host, k8smetaextension.Metadata) {
	tb.Helper()
	const env = "VIGIL_TEST_K8S_NODE"
	tb.Setenv(env, node)
	f := k8smetaextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*k8smetaextension.Config)
	cfg.AuthType = k8smetaextension.AuthKubeConfig
	cfg.KubeConfig = kubeconfig
	cfg.NodeFromEnvVar = env
	cfg.SyncTimeout = 10 * time.Second
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(ID.Type()), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := ext.Start(context.Background(), Host{}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := ext.Shutdown(context.Background()); err != nil {
			tb.Errorf("k8s_metadata shutdown: %v", err)
		}
	})
	return Host{ID: ext}, ext.(k8smetaextension.Metadata)
}
