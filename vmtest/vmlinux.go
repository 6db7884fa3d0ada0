package main

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// extractVmlinux returns the uncompressed ELF kernel inside a bzImage, as the
// kernel's scripts/extract-vmlinux does, but without scanning for magic
// numbers: the x86 boot protocol (2.08+, Linux 2.6.26) records where the
// compressed payload is and how long it is.
func extractVmlinux(bz []byte) ([]byte, error) {
	if len(bz) < 0x250 || string(bz[0x202:0x206]) != "HdrS" {
		return nil, errors.New("not a bzImage: no HdrS boot header")
	}
	if v := binary.LittleEndian.Uint16(bz[0x206:]); v < 0x208 {
		return nil, fmt.Errorf("boot protocol %#x predates payload_offset (2.08)", v)
	}
	setupSects := int(bz[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	start := (setupSects+1)*512 + int(binary.LittleEndian.Uint32(bz[0x248:]))
	end := start + int(binary.LittleEndian.Uint32(bz[0x24c:]))
	if start >= end || end > len(bz) {
		return nil, fmt.Errorf("payload [%d, %d) lies outside the %d-byte image", start, end, len(bz))
	}
	payload := bz[start:end]
	c, err := detectCompression(payload)
	if err != nil {
		return nil, err
	}
	// Every compressor but gzip is followed by the uncompressed size
	// (arch/x86/boot/compressed/Makefile: *_with_size); gzip's own trailer
	// holds it.
	if len(payload) < 4 {
		return nil, errors.New("payload too short")
	}
	want := binary.LittleEndian.Uint32(payload[len(payload)-4:])
	if c.name != "gzip" {
		payload = payload[:len(payload)-4]
	}
	out, err := c.decompress(payload)
	if err != nil {
		return nil, fmt.Errorf("%s payload: %w", c.name, err)
	}
	if uint32(len(out)) != want {
		return nil, fmt.Errorf("%s payload unpacked to %d bytes, the image says %d", c.name, len(out), want)
	}
	if !bytes.HasPrefix(out, []byte(elf.ELFMAG)) {
		return nil, fmt.Errorf("%s payload is not an ELF file", c.name)
	}
	return out, nil
}

type compression struct {
	name       string
	decompress func([]byte) ([]byte, error)
}

// detectCompression names the compressor of a kernel payload by its magic.
// gzip and bzip2 are in the standard library; the others run the
// decompressor Debian ships (scripts/install-deps.sh vm installs them).
func detectCompression(p []byte) (compression, error) {
	magics := []struct {
		magic []byte
		c     compression
	}{
		{[]byte{0x1f, 0x8b}, compression{"gzip", gunzip}},
		{[]byte("BZh"), compression{"bzip2", bunzip2}},
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, compression{"xz", command("xz", "-dc", "--single-stream")}},
		{[]byte{0x5d, 0, 0}, compression{"lzma", command("xz", "-dc", "--format=lzma")}},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd}, compression{"zstd", command("zstd", "-dcq")}},
		{[]byte{0x02, 0x21, 0x4c, 0x18}, compression{"lz4", command("lz4", "-dcq")}},
		{[]byte{0x89, 'L', 'Z', 'O'}, compression{"lzo", command("lzop", "-dc")}},
	}
	for _, m := range magics {
		if bytes.HasPrefix(p, m.magic) {
			return m.c, nil
		}
	}
	n := min(len(p), 8)
	return compression{}, fmt.Errorf("unknown kernel compression (payload starts % x)", p[:n])
}

func gunzip(p []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(p))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func bunzip2(p []byte) ([]byte, error) {
	return io.ReadAll(bzip2.NewReader(bytes.NewReader(p)))
}

// command decompresses through a filter program, stdin to stdout.
func command(name string, args ...string) func([]byte) ([]byte, error) {
	return func(p []byte) ([]byte, error) {
		if _, err := exec.LookPath(name); err != nil {
			return nil, fmt.Errorf("%s not found: run scripts/install-deps.sh vm", name)
		}
		cmd := exec.Command(name, args...)
		cmd.Stdin = bytes.NewReader(p)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
		}
		return out.Bytes(), nil
	}
}

// xenElfnotePhys32Entry is the ELF note with the 32-bit PVH entry point
// (CONFIG_PVH); QEMU boots an ELF vmlinux through it.
const xenElfnotePhys32Entry = 18

// hasPVHEntry reports whether the vmlinux ELF has a PVH entry point note.
func hasPVHEntry(vmlinux []byte) (bool, error) {
	f, err := elf.NewFile(bytes.NewReader(vmlinux))
	if err != nil {
		return false, fmt.Errorf("reading vmlinux: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(p.Open())
		if err != nil {
			return false, fmt.Errorf("reading vmlinux notes: %w", err)
		}
		for len(notes) >= 12 {
			nameSize := binary.LittleEndian.Uint32(notes[0:])
			descSize := binary.LittleEndian.Uint32(notes[4:])
			typ := binary.LittleEndian.Uint32(notes[8:])
			nameEnd := 12 + align4(nameSize)
			next := nameEnd + align4(descSize)
			if next > uint32(len(notes)) {
				break
			}
			name := strings.TrimRight(string(notes[12:12+nameSize]), "\x00")
			if name == "Xen" && typ == xenElfnotePhys32Entry {
				return true, nil
			}
			notes = notes[next:]
		}
	}
	return false, nil
}

func align4(n uint32) uint32 { return (n + 3) &^ 3 }
