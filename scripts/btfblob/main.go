// Command btfblob copies the kernel's BTF out of a kernel image that keeps
// it uncompressed (arm64's Image, an ELF vmlinux), so that bpftool can turn
// it into a vmlinux.h for a machine that is not this one:
//
//	go run ./scripts/btfblob IMAGE > vmlinux.btf
//
// The .BTF section's contents lie in the image as they do in vmlinux. Its
// header (struct btf_header) says how long it is; the blob is the largest
// place where a header's magic, version 1 and 24-byte length meet type and
// string sections that fit in the image.
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
)

const btfMagic = 0xeb9f

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: btfblob IMAGE > vmlinux.btf")
		os.Exit(2)
	}
	img, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	blob, err := find(img)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	os.Stdout.Write(blob)
}

// find returns the largest well-formed little-endian BTF blob in img: the
// kernel's own, not a module's or a stray match.
func find(img []byte) ([]byte, error) {
	// magic 0xeb9f, version 1, flags 0, hdr_len 24.
	pat := []byte{0x9f, 0xeb, 1, 0, 24, 0, 0, 0}
	var best []byte
	for off := 0; ; {
		i := bytes.Index(img[off:], pat)
		if i < 0 {
			break
		}
		at := off + i
		off = at + 1
		if at+24 > len(img) {
			break
		}
		h := img[at : at+24]
		typeOff, typeLen := binary.LittleEndian.Uint32(h[8:]), binary.LittleEndian.Uint32(h[12:])
		strOff, strLen := binary.LittleEndian.Uint32(h[16:]), binary.LittleEndian.Uint32(h[20:])
		end := uint64(24) + uint64(max(typeOff+typeLen, strOff+strLen))
		if typeOff != 0 || strOff < typeLen || uint64(at)+end > uint64(len(img)) {
			continue
		}
		if int(end) > len(best) {
			best = img[at : uint64(at)+end]
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no BTF (magic %#x) in the image: is it built with CONFIG_DEBUG_INFO_BTF, and uncompressed?", btfMagic)
	}
	return best, nil
}
