// Command image builds the otelcol-vigil container image from this
// repository, with no container daemon and no base image: one layer holding
// the static binaries `make dist` builds, the CA bundle the OTLP exporters
// need for TLS backends, and the default configuration.
//
//	go run ./distribution/image -o build/image/otelcol-vigil.oci.tar
//	go run ./distribution/image -push registry.example/vigil/otelcol-vigil:dev
//
// The result is an OCI image index (one image per platform: linux/amd64
// and linux/arm64, from bin/linux_<arch>/), written as an OCI archive that `podman load`, `skopeo` and
// `ctr images import` read, or pushed to a registry. Two builds of one
// commit on one machine give the same digest: every timestamp is the
// commit's, entries are sorted, ownership is root's.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"sigs.k8s.io/yaml"

	"github.com/vigilsec/vigil/internal/ociimage"
)

// Repository is where the chart and the manifests expect the image.
const Repository = "ghcr.io/vigilsec/otelcol-vigil"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	out := fs.String("o", "", "write the image index as an OCI archive to this path")
	push := fs.String("push", "", "push the image index to this reference (host/repository:tag)")
	bin := fs.String("bin", "bin", "directory of the binaries `make dist` built, one linux_<arch> directory per platform (otelcol-vigil, vigil)")
	arches := fs.String("platforms", "amd64 arm64", "the architectures of the index's images, each from -bin's linux_<arch> directory")
	config := fs.String("config", "distribution/config.yaml", "the default configuration, installed as "+configPath)
	caBundle := fs.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA certificates (Debian's ca-certificates)")
	chart := fs.String("chart", "distribution/helm/vigil/Chart.yaml", "the chart whose appVersion is the image's version and tag")
	revision := fs.String("revision", "", "the source revision (default: git rev-parse HEAD)")
	created := fs.String("created", "", "creation time, Unix seconds (default: SOURCE_DATE_EPOCH, else the commit's time)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" && *push == "" {
		return fmt.Errorf("nothing to do: give -o PATH and/or -push REFERENCE")
	}
	version, err := chartAppVersion(*chart)
	if err != nil {
		return err
	}
	if *revision == "" {
		if *revision, err = git("rev-parse", "HEAD"); err != nil {
			return fmt.Errorf("-revision: %w", err)
		}
	}
	when, err := creationTime(*created)
	if err != nil {
		return err
	}
	idx, err := Build(Spec{
		Version:   version,
		Revision:  *revision,
		Created:   when,
		Config:    *config,
		CABundle:  *caBundle,
		Platforms: platforms(*bin, *arches),
	})
	if err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	if *out != "" {
		ref := Repository + ":" + version
		if err := ociimage.WriteArchive(*out, idx, ref); err != nil {
			return err
		}
		fmt.Printf("%s: %s@%s\n", *out, ref, digest)
	}
	if *push != "" {
		ref, err := name.ParseReference(*push)
		if err != nil {
			return fmt.Errorf("-push: %w", err)
		}
		if err := remote.WriteIndex(ref, idx); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		fmt.Printf("pushed %s@%s\n", ref, digest)
	}
	return nil
}

// platforms are the linux images of the architectures named in arches
// (space- or comma-separated), in that order.
func platforms(bin, arches string) []Platform {
	var out []Platform
	for _, arch := range strings.FieldsFunc(arches, func(r rune) bool { return r == ' ' || r == ',' }) {
		out = append(out, Platform{OS: "linux", Architecture: arch, Bin: filepath.Join(bin, "linux_"+arch)})
	}
	return out
}

// chartAppVersion reads the appVersion of a Chart.yaml: the chart's
// default image tag, so the image is where a helm install looks for it.
func chartAppVersion(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if c.AppVersion == "" {
		return "", fmt.Errorf("%s: no appVersion", path)
	}
	return c.AppVersion, nil
}

// creationTime is flag, else SOURCE_DATE_EPOCH (the reproducible-builds
// convention), else the time of the checked-out commit.
func creationTime(flagValue string) (time.Time, error) {
	s := flagValue
	if s == "" {
		s = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if s == "" {
		var err error
		if s, err = git("log", "-1", "--format=%ct"); err != nil {
			return time.Time{}, fmt.Errorf("-created: %w", err)
		}
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("creation time %q: want Unix seconds", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}

func git(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}
