//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/vigilsec/vigil/internal/ociimage"
	"github.com/vigilsec/vigil/internal/testenv"
)

// workloadImage is the image of the workload pods: Debian's static busybox,
// and an /etc/shadow for the policy to protect.
const workloadImage = "localhost/vigil-e2e/busybox:1"

// busyboxApplets are the commands the workload pods run.
var busyboxApplets = []string{"sh", "cat", "sleep", "echo", "ls", "true", "id", "hostname"}

// writeImage builds a one-layer image of files and writes it as an OCI
// archive named ref into dir.
func writeImage(t *testing.T, dir, ref string, files []ociimage.File, cfg v1.Config) string {
	t.Helper()
	created := time.Unix(0, 0).UTC()
	layer, err := ociimage.Layer(files, created)
	must(t, err)
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	img, err := ociimage.Image(layer, platform, cfg, created, "vigil e2e")
	must(t, err)
	idx, err := ociimage.Index([]ociimage.PlatformImage{{Platform: platform, Image: img}}, nil)
	must(t, err)
	archive := filepath.Join(dir, filepath.Base(ref)+".oci.tar")
	must(t, ociimage.WriteArchive(archive, idx, ref))
	return archive
}

// nodeImages writes the pause and workload images.
func nodeImages(t *testing.T, dir string) (pause, workload string) {
	t.Helper()
	pauseBin, err := os.ReadFile(os.Getenv(pauseEnv))
	if err != nil {
		t.Fatalf("the pause binary TestMain built: %v", err)
	}
	pause = writeImage(t, dir, pauseImage, []ociimage.File{{Path: "/pause", Mode: 0o755, Data: pauseBin}},
		v1.Config{Entrypoint: []string{"/pause"}})

	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testenv.Unavailable(t, "Debian's busybox-static is missing: run `scripts/install-deps.sh node`")
	}
	files := []ociimage.File{
		{Path: "/bin/busybox", Mode: 0o755, Data: busybox},
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\n")},
		{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\n")},
		{Path: "/etc/shadow", Mode: 0o640, Data: []byte("root:*:20000:0:99999:7:::\n")},
		{Path: "/tmp", Mode: 0o777 | os.ModeDir | os.ModeSticky},
	}
	for _, a := range busyboxApplets {
		files = append(files, ociimage.File{Path: "/bin/" + a, Link: "busybox"})
	}
	workload = writeImage(t, dir, workloadImage, files, v1.Config{
		Entrypoint: []string{"/bin/sh"},
		Env:        []string{"PATH=/bin"},
	})
	return pause, workload
}
