package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// KubeVersion is the kube-apiserver release the Kubernetes tests run
// against; scripts/install-deps.sh k8s builds it into KubeAssets.
const KubeVersion = "v1.37.2"

// KubeAssets returns the directory holding kube-apiserver and etcd:
// KUBEBUILDER_ASSETS when set, else where scripts/install-deps.sh k8s puts
// them (~/.cache/vigil/k8s/KubeVersion).
func KubeAssets() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = filepath.Join(os.TempDir(), "vigil-cache")
	}
	return filepath.Join(cache, "vigil", "k8s", KubeVersion)
}

// Kube is a real kube-apiserver and etcd on loopback, started for one test
// (or one package). No kubelet and no controller-manager run: tests write
// pods and their status through the API themselves.
type Kube struct {
	Config    *rest.Config
	Clientset kubernetes.Interface
	env       *envtest.Environment
}

// StartKube starts kube-apiserver and etcd from KubeAssets, installs the
// CustomResourceDefinitions found in crdPaths (files or directories), and
// stops both when tb ends. Missing binaries skip the test outside CI and
// fail it under CI=true, as a missing kernel feature does.
func StartKube(tb testing.TB, crdPaths ...string) *Kube {
	tb.Helper()
	assets := KubeAssets()
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			Unavailable(tb, "%s is missing from %s: run `scripts/install-deps.sh k8s`", bin, assets)
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     crdPaths,
		ErrorIfCRDPathMissing: true,
	}
	api := env.ControlPlane.GetAPIServer()
	// The apiserver advertises 127.0.0.1; with no other endpoint to
	// reconcile it would keep rewriting the kubernetes service.
	api.Configure().Set("endpoint-reconciler-type", "none")
	cfg, err := env.Start()
	if err != nil {
		tb.Fatalf("start kube-apiserver and etcd from %s: %v", assets, err)
	}
	tb.Cleanup(func() {
		// envtest stops the apiserver before etcd; the other order hangs
		// the apiserver's shutdown on its storage.
		if err := env.Stop(); err != nil {
			tb.Errorf("stop kube-apiserver and etcd: %v", err)
		}
	})
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &Kube{Config: cfg, Clientset: cs, env: env}
}

// Kubeconfig writes a kubeconfig for k's admin user into dir and returns
// its path, for components configured the way a user would configure them.
func (k *Kube) Kubeconfig(tb testing.TB, dir string) string {
	tb.Helper()
	user, err := k.env.AddUser(envtest.User{Name: "vigil-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
