// Package ociimage writes OCI images from files, with no container daemon
// and no base image: the layer, the image and its index, and the OCI
// archive `podman load`, `skopeo` and `ctr images import` read.
//
// Everything it writes depends only on its inputs: entries are sorted,
// owned by root and stamped with the time the caller gives (a commit's),
// so building the same files twice gives the same digests.
package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// File is one entry of a layer: a regular file (Data), a directory
// (Mode has os.ModeDir) or a symbolic link (Link).
type File struct {
	Path string
	Mode os.FileMode
	Data []byte
	Link string
}

// Layer returns a gzip-compressed OCI layer holding files and every
// directory above them (0755 unless listed), sorted by path, owned by root,
// all stamped with mtime.
func Layer(files []File, mtime time.Time) (v1.Layer, error) {
	data, err := tarFiles(files, mtime)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}

// Image returns an OCI image of the one layer, for platform, with cfg as
// its runtime configuration; created dates the image and its history
// entry, which says what made the layer.
func Image(layer v1.Layer, platform v1.Platform, cfg v1.Config, created time.Time, createdBy string) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: platform.Architecture,
		OS:           platform.OS,
		Variant:      platform.Variant,
		Config:       cfg,
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: created}, CreatedBy: createdBy},
	})
	if err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, v1.Time{Time: created})
}

// PlatformImage is an image and the platform it runs on.
type PlatformImage struct {
	Platform v1.Platform
	Image    v1.Image
}

// Index returns an OCI image index of images, in order, annotated.
func Index(images []PlatformImage, annotations map[string]string) (v1.ImageIndex, error) {
	if len(images) == 0 {
		return nil, fmt.Errorf("an image index needs an image")
	}
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, pi := range images {
		p := pi.Platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        pi.Image,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	if len(annotations) > 0 {
		idx = mutate.Annotations(idx, annotations).(v1.ImageIndex)
	}
	return idx, nil
}

// tarFiles writes the layer's tar: files and every directory above them,
// sorted by path, owned by root, all stamped with mtime, so that nothing of
// the machine or the moment of the build gets in.
func tarFiles(files []File, mtime time.Time) ([]byte, error) {
	entries := map[string]File{}
	for _, f := range files {
		p := strings.TrimPrefix(path.Clean(f.Path), "/")
		entries[p] = f
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := entries[d]; !ok {
				entries[d] = File{Path: d, Mode: 0o755 | os.ModeDir}
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
		h := &tar.Header{Name: p, Mode: int64(f.Mode.Perm()), ModTime: mtime, Format: tar.FormatPAX}
		if f.Mode&os.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		switch {
		case f.Mode.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, p+"/"
		case f.Link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.Link, 0o777
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
