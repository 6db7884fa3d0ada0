package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/vigilsec/vigil/internal/ociimage"
	"github.com/vigilsec/vigil/internal/testenv"
)

var created = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// testSpec is a Spec over small stand-ins for the binaries, so the tests
// build in milliseconds; `make image` builds from the real ones.
func testSpec(t *testing.T) Spec {
	return testSpecFor(t, "amd64")
}

// testSpecFor is a spec with an image for each of arches, from
// DIR/linux_<arch>/ as make dist lays them out; each binary says which
// architecture it is for.
func testSpecFor(t *testing.T, arches ...string) Spec {
	t.Helper()
	dir := t.TempDir()
	s := Spec{
		Version: "1.2.3", Revision: "0123456789abcdef", Created: created,
		Config: filepath.Join(dir, "config.yaml"), CABundle: filepath.Join(dir, "ca.crt"),
		Platforms: platforms(dir, strings.Join(arches, " ")),
	}
	for _, p := range s.Platforms {
		os.MkdirAll(p.Bin, 0o755)
		for _, b := range binaries {
			os.WriteFile(filepath.Join(p.Bin, b), []byte("#!/bin/false "+b+" "+p.Architecture+"\n"), 0o755)
		}
	}
	os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("receivers: {ebpf: {}}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("-----BEGIN CERTIFICATE-----\n"), 0o644)
	return s
}

func digest(t *testing.T, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func build(t *testing.T, s Spec) v1.ImageIndex {
	t.Helper()
	idx, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// onlyImage returns the index's one image and its platform.
func onlyImage(t *testing.T, idx v1.ImageIndex) (v1.Image, *v1.Platform) {
	t.Helper()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("%d manifests in the index, want 1", len(m.Manifests))
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img, m.Manifests[0].Platform
}

func TestBuildIsReproducible(t *testing.T) {
	s := testSpec(t)
	first := digest(t, build(t, s))
	if again := digest(t, build(t, s)); again != first {
		t.Errorf("two builds of the same sources: %s and %s", first, again)
	}
	// The archive too, byte for byte.
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	for _, p := range []string{a, b} {
		if err := ociimage.WriteArchive(p, build(t, s), "example.test/vigil:1.2.3"); err != nil {
			t.Fatal(err)
		}
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if string(da) != string(db) {
		t.Error("two archives of the same index differ")
	}
	// What goes in does change it: the test can tell builds apart.
	s.Created = s.Created.Add(time.Second)
	if d := digest(t, build(t, s)); d == first {
		t.Error("a build at another commit time has the same digest")
	}
}

func TestImageHoldsTheBinariesConfigAndCertificates(t *testing.T) {
	s := testSpec(t)
	img, platform := onlyImage(t, build(t, s))
	if platform == nil || platform.OS != "linux" || platform.Architecture != "amd64" {
		t.Errorf("platform %+v, want linux/amd64", platform)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Config.Entrypoint, " "); got != "/usr/bin/otelcol-vigil" {
		t.Errorf("entrypoint %q", got)
	}
	if got := strings.Join(cfg.Config.Cmd, " "); got != "--config /etc/vigil/config.yaml" {
		t.Errorf("cmd %q", got)
	}
	if !cfg.Created.Time.Equal(created) {
		t.Errorf("created %v, want the commit time %v", cfg.Created, created)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.source":   "https://github.com/vigilsec/vigil",
		"org.opencontainers.image.revision": "0123456789abcdef",
		"org.opencontainers.image.version":  "1.2.3",
		"org.opencontainers.image.created":  "2026-12-06T12:00:00Z",
	} {
		if got := cfg.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if cfg.Config.Labels["org.opencontainers.image.licenses"] == "" {
		t.Error("no licenses label")
	}

	var names []string
	modes := map[string]int64{}
	content := map[string]string{}
	for _, e := range layerEntries(t, img) {
		h := e.Header
		names = append(names, h.Name)
		modes[h.Name] = h.Mode
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s owned by %d:%d (%s:%s), want root", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(created) {
			t.Errorf("%s dated %v, want %v", h.Name, h.ModTime, created)
		}
		content[h.Name] = e.Data
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("entries not sorted: %v", names)
	}
	for path, want := range map[string]string{
		"usr/bin/otelcol-vigil":             "#!/bin/false otelcol-vigil amd64\n",
		"usr/bin/vigil":                     "#!/bin/false vigil amd64\n",
		"etc/vigil/config.yaml":             "receivers: {ebpf: {}}\n",
		"etc/ssl/certs/ca-certificates.crt": "-----BEGIN CERTIFICATE-----\n",
	} {
		if got, ok := content[path]; !ok || got != want {
			t.Errorf("%s: %q (present %v), want %q", path, got, ok, want)
		}
	}
	for path, want := range map[string]int64{"usr/bin/vigil": 0o755, "etc/vigil/config.yaml": 0o644, "tmp/": 0o1777} {
		if modes[path] != want {
			t.Errorf("%s: mode %o, want %o", path, modes[path], want)
		}
	}
}

// make dist's two architectures: one image each, in the index's order, each
// with its own binaries and its architecture in its config.
func TestIndexHasAnImagePerArchitecture(t *testing.T) {
	s := testSpecFor(t, "amd64", "arm64")
	idx := build(t, s)
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 2 {
		t.Fatalf("%d manifests, want 2", len(m.Manifests))
	}
	for i, arch := range []string{"amd64", "arm64"} {
		d := m.Manifests[i]
		if d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture != arch {
			t.Errorf("manifest %d: platform %+v, want linux/%s", i, d.Platform, arch)
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Architecture != arch || cfg.OS != "linux" {
			t.Errorf("%s image's config says %s/%s", arch, cfg.OS, cfg.Architecture)
		}
		if got := fileIn(t, img, "usr/bin/otelcol-vigil"); got != "#!/bin/false otelcol-vigil "+arch+"\n" {
			t.Errorf("%s image's otelcol-vigil is %q, want %s's", arch, got, arch)
		}
	}
}

// A layerEntry is one file of an image's layer.
type layerEntry struct {
	Header *tar.Header
	Data   string
}

// layerEntries reads img's one layer, in order.
func layerEntries(t *testing.T, img v1.Image) []layerEntry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []layerEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out = append(out, layerEntry{h, string(b)})
	}
}

// fileIn returns the contents of path in img's one layer.
func fileIn(t *testing.T, img v1.Image, path string) string {
	t.Helper()
	for _, e := range layerEntries(t, img) {
		if e.Header.Name == path {
			return e.Data
		}
	}
	t.Fatalf("%s is not in the layer", path)
	return ""
}

func TestBuildNamesAMissingBinary(t *testing.T) {
	s := testSpec(t)
	os.Remove(filepath.Join(s.Platforms[0].Bin, "vigil"))
	_, err := Build(s)
	if err == nil || !strings.Contains(err.Error(), "vigil") || !strings.Contains(err.Error(), "make dist") {
		t.Errorf("err = %v, want the missing binary named and make dist", err)
	}
}

// make image-push's path: the CLI pushes to a registry on loopback, and
// what comes back has the digest that was pushed.
func TestPushToARegistryAndPullBack(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	s := testSpec(t)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/vigil/otelcol-vigil:test"

	args := []string{"-push", ref, "-bin", filepath.Dir(s.Platforms[0].Bin), "-platforms", "amd64", "-config", s.Config, "-ca-bundle", s.CABundle,
		"-chart", writeChart(t, "1.2.3"), "-revision", s.Revision, "-created", "1796558400"}
	if err := run(args); err != nil {
		t.Fatal(err)
	}
	want := digest(t, build(t, s))
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	if d := digest(t, got); d != want {
		t.Errorf("pulled back %s, pushed %s", d, want)
	}
	img, _ := onlyImage(t, got)
	if _, err := img.Layers(); err != nil {
		t.Errorf("the pushed image's layers: %v", err)
	}
}

func writeChart(t *testing.T, appVersion string) string {
	p := filepath.Join(t.TempDir(), "Chart.yaml")
	os.WriteFile(p, []byte("apiVersion: v2\nname: vigil\nversion: 0.1.0\nappVersion: "+appVersion+"\n"), 0o644)
	return p
}

// The archive is read by the tools people load images with: podman and
// skopeo (containers/image), and containerd's ctr.
func TestArchiveLoadsInPodmanSkopeoAndContainerd(t *testing.T) {
	for _, tool := range []string{"podman", "skopeo", "containerd", "ctr"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, "%s is missing: run `scripts/install-deps.sh podman`", tool)
		}
	}
	testenv.RequireRoot(t)
	s := testSpecFor(t, "amd64", "arm64")
	idx := build(t, s)
	want := digest(t, idx).String()
	ref := "example.test/vigil/otelcol-vigil:" + strings.ReplaceAll(t.Name(), "/", "-")
	archive := filepath.Join(t.TempDir(), "image.oci.tar")
	if err := ociimage.WriteArchive(archive, idx, ref); err != nil {
		t.Fatal(err)
	}

	out := command(t, "skopeo", "inspect", "--raw", "oci-archive:"+archive)
	var m v1.IndexManifest
	if err := json.Unmarshal([]byte(out), &m); err != nil || len(m.Manifests) != 2 || m.Manifests[0].Platform.Architecture != "amd64" || m.Manifests[1].Platform.Architecture != "arm64" {
		t.Errorf("skopeo read %q (%v), want the index of an amd64 and an arm64 image", out, err)
	}

	// podman wants a short runroot (50 bytes): not under t.TempDir().
	root, err := os.MkdirTemp("", "vigil-podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	podman := []string{"--root", filepath.Join(root, "storage"), "--runroot", filepath.Join(root, "run")}
	command(t, "podman", append(podman, "load", "-i", archive)...)
	if got := command(t, "podman", append(podman, "image", "inspect", "--format", "{{.Digest}}", ref)...); strings.TrimSpace(got) != want {
		t.Errorf("podman loaded %s with digest %q, want %s", ref, got, want)
	}

	sock := startContainerd(t)
	command(t, "ctr", "--address", sock, "-n", "k8s.io", "images", "import", archive)
	got := command(t, "ctr", "--address", sock, "-n", "k8s.io", "images", "ls", "-q")
	if !strings.Contains(got, ref) {
		t.Errorf("ctr images ls: %q, want %s", got, ref)
	}
	if info := command(t, "ctr", "--address", sock, "-n", "k8s.io", "images", "ls", "name=="+ref); !strings.Contains(info, want) {
		t.Errorf("ctr images ls: %q, want digest %s", info, want)
	}
}

func command(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startContainerd runs a containerd of the test's own (state, root and
// socket in a temporary directory; no CRI), and returns its socket.
func startContainerd(t *testing.T) string {
	t.Helper()
	// A socket path must fit in 108 bytes: not under t.TempDir().
	dir, err := os.MkdirTemp("", "vigil-ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "containerd.sock")
	config := filepath.Join(dir, "config.toml")
	os.WriteFile(config, []byte(`version = 2
root = "`+filepath.Join(dir, "root")+`"
state = "`+filepath.Join(dir, "state")+`"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "`+sock+`"
[ttrpc]
  address = "`+sock+`.ttrpc"
`), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "containerd", "--config", config)
	log, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if exec.Command("ctr", "--address", sock, "version").Run() == nil {
			return sock
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("containerd did not answer within 20s:\n%s", b)
		}
	}
}
