package ociimage

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations of index.json that name the image on import: containerd
// (`ctr images import`) reads the first, podman and skopeo the second.
const (
	containerdNameAnnotation = "io.containerd.image.name"
	refNameAnnotation        = "org.opencontainers.image.ref.name"
)

// WriteArchive writes idx as an OCI image layout in a tar archive at path,
// named ref: oci-layout, index.json, then every blob under blobs/sha256/.
// The archive's own entries are sorted and undated, so equal indexes give
// equal archives.
func WriteArchive(path string, idx v1.ImageIndex, ref string) error {
	blobs := map[v1.Hash]func() (io.ReadCloser, int64, error){}
	if err := collectBlobs(idx, blobs); err != nil {
		return err
	}
	idxDigest, err := idx.Digest()
	if err != nil {
		return err
	}
	idxSize, err := idx.Size()
	if err != nil {
		return err
	}
	top, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType:   types.OCIImageIndex,
			Digest:      idxDigest,
			Size:        idxSize,
			Annotations: map[string]string{containerdNameAnnotation: ref, refNameAnnotation: ref},
		}},
	})
	if err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	tw := tar.NewWriter(tmp)
	add := func(name string, size int64, r io.Reader) error {
		h := &tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		n, err := io.Copy(tw, r)
		if err == nil && n != size {
			err = fmt.Errorf("%s: %d bytes, want %d", name, n, size)
		}
		return err
	}
	layout := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	if err := add("oci-layout", int64(len(layout)), bytes.NewReader(layout)); err != nil {
		return err
	}
	if err := add("index.json", int64(len(top)), bytes.NewReader(top)); err != nil {
		return err
	}
	digests := make([]v1.Hash, 0, len(blobs))
	for h := range blobs {
		digests = append(digests, h)
	}
	sort.Slice(digests, func(i, j int) bool { return digests[i].String() < digests[j].String() })
	for _, h := range digests {
		rc, size, err := blobs[h]()
		if err != nil {
			return err
		}
		err = add("blobs/"+h.Algorithm+"/"+h.Hex, size, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("blob %s: %w", h, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Images are public artefacts: readable for a rootless podman load.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// collectBlobs adds the blobs idx refers to, itself included: nested
// indexes, image manifests, configs and layers.
func collectBlobs(idx v1.ImageIndex, blobs map[v1.Hash]func() (io.ReadCloser, int64, error)) error {
	raw, err := idx.RawManifest()
	if err != nil {
		return err
	}
	if err := addRaw(blobs, raw); err != nil {
		return err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range m.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			if err := collectBlobs(child, blobs); err != nil {
				return err
			}
		case d.MediaType.IsImage():
			img, err := idx.Image(d.Digest)
			if err != nil {
				return err
			}
			if err := collectImage(img, blobs); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: media type %s in the index", d.Digest, d.MediaType)
		}
	}
	return nil
}

func collectImage(img v1.Image, blobs map[v1.Hash]func() (io.ReadCloser, int64, error)) error {
	for _, get := range []func() ([]byte, error){img.RawManifest, img.RawConfigFile} {
		raw, err := get()
		if err != nil {
			return err
		}
		if err := addRaw(blobs, raw); err != nil {
			return err
		}
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		h, err := l.Digest()
		if err != nil {
			return err
		}
		size, err := l.Size()
		if err != nil {
			return err
		}
		blobs[h] = func() (io.ReadCloser, int64, error) {
			rc, err := l.Compressed()
			return rc, size, err
		}
	}
	return nil
}

func addRaw(blobs map[v1.Hash]func() (io.ReadCloser, int64, error), raw []byte) error {
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	blobs[h] = func() (io.ReadCloser, int64, error) { return io.NopCloser(bytes.NewReader(raw)), int64(len(raw)), nil }
	return nil
}
