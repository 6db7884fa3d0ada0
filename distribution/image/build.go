package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
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
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range s.Platforms {
		img, err := buildImage(s, p)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", p.OS, p.Architecture, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Architecture}},
		})
	}
	return mutate.Annotations(idx, s.labels()).(v1.ImageIndex), nil
}

func buildImage(s Spec, p Platform) (v1.Image, error) {
	files := []file{
		{path: "/etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n")},
		{path: "/etc/group", mode: 0o644, data: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{path: "/tmp", mode: 0o777 | os.ModeDir | os.ModeSticky},
		{path: "/var/log", mode: 0o755 | os.ModeDir},
		{path: "/var/run", mode: 0o755 | os.ModeDir},
	}
	for _, from := range []struct{ src, dst string }{{s.Config, configPath}, {s.CABundle, caPath}} {
		data, err := os.ReadFile(from.src)
		if err != nil {
			return nil, err
		}
		files = append(files, file{path: from.dst, mode: 0o644, data: data})
	}
	for _, b := range binaries {
		data, err := os.ReadFile(filepath.Join(p.Bin, b))
		if err != nil {
			return nil, fmt.Errorf("%w (make dist builds it)", err)
		}
		files = append(files, file{path: path.Join(binDir, b), mode: 0o755, data: data})
	}
	layerTar, err := tarFiles(files, s.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Config: v1.Config{
			Entrypoint: []string{path.Join(binDir, "otelcol-vigil")},
			Cmd:        []string{"--config", configPath},
			Env:        []string{"PATH=" + binDir},
			WorkingDir: "/",
			Labels:     s.labels(),
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: s.Created},
			CreatedBy: "go run ./distribution/image",
			Comment:   strings.Join(binaries, ", ") + ", the default config and CA certificates",
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, v1.Time{Time: s.Created})
}

// file is one entry of the layer; a directory when mode says so.
type file struct {
	path string
	mode os.FileMode
	data []byte
}

// tarFiles writes a layer holding files and every directory above them,
// sorted by path, owned by root, all stamped with mtime: nothing of the
// machine or the moment of the build gets in.
func tarFiles(files []file, mtime time.Time) ([]byte, error) {
	entries := map[string]file{}
	for _, f := range files {
		p := strings.TrimPrefix(path.Clean(f.path), "/")
		entries[p] = f
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := entries[d]; !ok {
				entries[d] = file{path: d, mode: 0o755 | os.ModeDir}
			}
		}
	}
	names := make([]string, 0, len(entries))
	for p := range entries {
		names = append(names, p)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range names {
		f := entries[p]
		h := &tar.Header{
			Name:    p,
			Mode:    int64(f.mode.Perm()),
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if f.mode&os.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		if f.mode.IsDir() {
			h.Typeflag, h.Name = tar.TypeDir, p+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
