package main

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/vigilsec/vigil/internal/ociimage"
)

// Where things are inside the image.
const (
	binDir     = "/usr/bin"
	configPath = "/etc/vigil/config.yaml"
	caPath     = "/etc/ssl/certs/ca-certificates.crt"
)

// binaries are the programs of every platform's image, from Platform.Bin.
var binaries = []string{"otelcol-vigil", "vigil"}

// Spec is what one build of the image index is made from.
type Spec struct {
	// Version is the image's version label and tag (the chart's
	// appVersion); Revision the source commit.
	Version, Revision string
	// Created stamps every file, the config and the history, so that a
	// rebuild of the same sources gives the same digest.
	Created time.Time
	// Config is the default collector configuration, CABundle the CA
	// certificates, both installed in every image.
	Config, CABundle string
	Platforms        []Platform
}

// Platform is one image of the index.
type Platform struct {
	OS, Architecture string
	// Bin is the directory holding that platform's binaries.
	Bin string
}

// labels are the image's OCI annotations, also set on the index.
func (s Spec) labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "otelcol-vigil",
		"org.opencontainers.image.description": "Vigil: eBPF runtime security observability and enforcement, as an OpenTelemetry Collector",
		"org.opencontainers.image.source":      "https://github.com/vigilsec/vigil",
		"org.opencontainers.image.url":         "https://github.com/vigilsec/vigil",
		"org.opencontainers.image.revision":    s.Revision,
		"org.opencontainers.image.version":     s.Version,
		"org.opencontainers.image.created":     s.Created.UTC().Format(time.RFC3339),
		// Tetragon's split, which the SPDX headers of bpf/ declare:
		// the BPF programs are dual GPL-2.0-only / BSD-2-Clause, the
		// rest Apache-2.0 like the Collector it is built from.
		"org.opencontainers.image.licenses": "Apache-2.0 AND (GPL-2.0-only OR BSD-2-Clause)",
	}
}

// Build assembles the image index: one image per platform, in the order
// given.
func Build(s Spec) (v1.ImageIndex, error) {
	if len(s.Platforms) == 0 {
		return nil, fmt.Errorf("no platform to build")
	}
	var images []ociimage.PlatformImage
	for _, p := range s.Platforms {
		img, err := buildImage(s, p)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", p.OS, p.Architecture, err)
		}
		images = append(images, ociimage.PlatformImage{Platform: v1.Platform{OS: p.OS, Architecture: p.Architecture}, Image: img})
	}
	return ociimage.Index(images, s.labels())
}

func buildImage(s Spec, p Platform) (v1.Image, error) {
	files := []ociimage.File{
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n")},
		{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{Path: "/tmp", Mode: 0o777 | os.ModeDir | os.ModeSticky},
		{Path: "/var/log", Mode: 0o755 | os.ModeDir},
		{Path: "/var/run", Mode: 0o755 | os.ModeDir},
	}
	for _, from := range []struct{ src, dst string }{{s.Config, configPath}, {s.CABundle, caPath}} {
		data, err := os.ReadFile(from.src)
		if err != nil {
			return nil, err
		}
		files = append(files, ociimage.File{Path: from.dst, Mode: 0o644, Data: data})
	}
	for _, b := range binaries {
		data, err := os.ReadFile(filepath.Join(p.Bin, b))
		if err != nil {
			return nil, fmt.Errorf("%w (make dist builds it)", err)
		}
		files = append(files, ociimage.File{Path: path.Join(binDir, b), Mode: 0o755, Data: data})
	}
	layer, err := ociimage.Layer(files, s.Created)
	if err != nil {
		return nil, err
	}
	return ociimage.Image(layer, v1.Platform{OS: p.OS, Architecture: p.Architecture}, v1.Config{
		Entrypoint: []string{path.Join(binDir, "otelcol-vigil")},
		Cmd:        []string{"--config", configPath},
		Env:        []string{"PATH=" + binDir},
		WorkingDir: "/",
		Labels:     s.labels(),
	}, s.Created, "go run ./distribution/image: "+strings.Join(binaries, ", ")+", the default config and CA certificates")
}
