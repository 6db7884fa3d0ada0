package k8smetaextension

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/vigilsec/vigil/internal/testenv"
)

const testNode = "vigil-test-node"

// start creates and starts the extension as the collector would, and
// shuts it down when the test ends.
func start(t *testing.T, cfg *Config) (extension.Extension, error) {
	t.Helper()
	ext, err := NewFactory().Create(t.Context(), extensiontest.NewNopSettings(typ), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, ext.Shutdown(context.Background())) })
	return ext, ext.Start(t.Context(), componenttest.NewNopHost())
}

// TestStartWithKubeconfig runs the extension against a real API server,
// configured as a user outside the cluster would: its cache holds the pods
// of the node named by node_from_env_var, and only those.
func TestStartWithKubeconfig(t *testing.T) {
	kube := testenv.StartKube(t)
	kubeconfig := kube.Kubeconfig(t, t.TempDir())
	ctx := t.Context()
	_, err := kube.Clientset.CoreV1().ServiceAccounts("default").Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	for _, node := range []string{testNode, "other-node"} {
		_, err := kube.Clientset.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "on-" + node},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}

	t.Setenv("VIGIL_NODE", testNode)
	cfg := createDefaultConfig().(*Config)
	cfg.AuthType, cfg.KubeConfig, cfg.NodeFromEnvVar = AuthKubeConfig, kubeconfig, "VIGIL_NODE"
	ext, err := start(t, cfg)
	require.NoError(t, err)

	md, err := FromHost(host{component.NewID(typ): ext}, component.NewID(typ))
	require.NoError(t, err)
	c := md.Cache()
	require.NotNil(t, c)
	assert.Equal(t, testNode, c.Node())
	// Start waited for the first list: the pod is there without polling.
	pods := c.Pods()
	require.Len(t, pods, 1)
	assert.Equal(t, "on-"+testNode, pods[0].Name)
	assert.Equal(t, strings.TrimSuffix(kube.Config.Host, "/"), strings.TrimSuffix(md.RESTConfig().Host, "/"))
}

// TestStartWithUnreachableAPIServer: the collector starts, without
// metadata, rather than failing; the informers keep retrying.
func TestStartWithUnreachableAPIServer(t *testing.T) {
	t.Setenv("K8S_NODE_NAME", testNode)
	cfg := createDefaultConfig().(*Config)
	cfg.AuthType = AuthKubeConfig
	cfg.KubeConfig = writeKubeconfig(t, "https://127.0.0.1:1")
	cfg.SyncTimeout = 200 * time.Millisecond
	ext, err := start(t, cfg)
	require.NoError(t, err)
	md := ext.(Metadata)
	require.NotNil(t, md.Cache())
	assert.Empty(t, md.Cache().Pods())
}

func TestStartErrors(t *testing.T) {
	t.Run("node variable unset", func(t *testing.T) {
		t.Setenv("VIGIL_UNSET_NODE", "")
		cfg := createDefaultConfig().(*Config)
		cfg.NodeFromEnvVar = "VIGIL_UNSET_NODE"
		_, err := start(t, cfg)
		assert.ErrorContains(t, err, "node_from_env_var: $VIGIL_UNSET_NODE is empty")
	})
	t.Run("serviceAccount outside a pod", func(t *testing.T) {
		t.Setenv("K8S_NODE_NAME", testNode)
		t.Setenv("KUBERNETES_SERVICE_HOST", "")
		_, err := start(t, createDefaultConfig().(*Config))
		assert.ErrorContains(t, err, "auth_type serviceAccount")
		assert.ErrorContains(t, err, "outside a pod, use auth_type kubeConfig")
	})
	t.Run("missing kubeconfig", func(t *testing.T) {
		t.Setenv("K8S_NODE_NAME", testNode)
		cfg := createDefaultConfig().(*Config)
		cfg.AuthType, cfg.KubeConfig = AuthKubeConfig, filepath.Join(t.TempDir(), "nope")
		_, err := start(t, cfg)
		assert.ErrorContains(t, err, "kubeconfig:")
	})
	t.Run("unknown context", func(t *testing.T) {
		t.Setenv("K8S_NODE_NAME", testNode)
		cfg := createDefaultConfig().(*Config)
		cfg.AuthType, cfg.KubeConfig, cfg.Context = AuthKubeConfig, writeKubeconfig(t, "https://127.0.0.1:1"), "prod"
		_, err := start(t, cfg)
		assert.ErrorContains(t, err, `context "prod" does not exist`)
	})
}

func TestFromHost(t *testing.T) {
	id := component.MustNewIDWithName("k8s_metadata", "a")
	_, err := FromHost(host{}, id)
	assert.ErrorContains(t, err, `extension "k8s_metadata/a" is not configured`)
	_, err = FromHost(host{id: nopExtension{}}, id)
	assert.ErrorContains(t, err, `extension "k8s_metadata/a" is not a k8s_metadata extension`)
}

// host is a component.Host running the given extensions.
type host map[component.ID]component.Component

func (h host) GetExtensions() map[component.ID]component.Component { return h }

type nopExtension struct{}

func (nopExtension) Start(context.Context, component.Host) error { return nil }
func (nopExtension) Shutdown(context.Context) error              { return nil }

// writeKubeconfig writes a kubeconfig for server, with one context "test".
func writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: server, InsecureSkipTLSVerify: true}
	cfg.AuthInfos["test"] = &clientcmdapi.AuthInfo{Token: "none"}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	cfg.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path
}
