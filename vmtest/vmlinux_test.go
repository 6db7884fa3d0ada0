package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os/exec"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/internal/testenv"
)

// fakeELF returns a minimal ELF64 file with one PT_NOTE segment holding a
// note of the given owner and type.
func fakeELF(owner string, typ uint32) []byte {
	var note bytes.Buffer
	name := append([]byte(owner), 0)
	binary.Write(&note, binary.LittleEndian, []uint32{uint32(len(name)), 4, typ})
	note.Write(name)
	note.Write(make([]byte, align4(uint32(len(name)))-uint32(len(name))))
	note.Write([]byte{1, 2, 3, 4})

	const ehsize, phsize = 64, 56
	var f bytes.Buffer
	f.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0})
	f.Write(make([]byte, 8))
	le := binary.LittleEndian
	binary.Write(&f, le, uint16(2))  // ET_EXEC
	binary.Write(&f, le, uint16(62)) // EM_X86_64
	binary.Write(&f, le, uint32(1))  // version
	binary.Write(&f, le, uint64(0))  // entry
	binary.Write(&f, le, uint64(64)) // phoff
	binary.Write(&f, le, uint64(0))  // shoff
	binary.Write(&f, le, uint32(0))  // flags
	binary.Write(&f, le, uint16(ehsize))
	binary.Write(&f, le, uint16(phsize))
	binary.Write(&f, le, uint16(1)) // phnum
	binary.Write(&f, le, uint16(64))
	binary.Write(&f, le, uint16(0))
	binary.Write(&f, le, uint16(0))
	binary.Write(&f, le, uint32(4)) // PT_NOTE
	binary.Write(&f, le, uint32(4)) // PF_R
	binary.Write(&f, le, uint64(ehsize+phsize))
	binary.Write(&f, le, uint64(0))
	binary.Write(&f, le, uint64(0))
	binary.Write(&f, le, uint64(note.Len()))
	binary.Write(&f, le, uint64(note.Len()))
	binary.Write(&f, le, uint64(4))
	f.Write(note.Bytes())
	return f.Bytes()
}

// fakeBzImage wraps payload the way arch/x86/boot lays out a bzImage.
func fakeBzImage(payload []byte) []byte {
	const setupSects = 2
	img := make([]byte, (setupSects+1)*512)
	img[0x1f1] = setupSects
	copy(img[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(img[0x206:], 0x20f)
	const offset = 100 // into the protected-mode code
	binary.LittleEndian.PutUint32(img[0x248:], offset)
	binary.LittleEndian.PutUint32(img[0x24c:], uint32(len(payload)))
	img = append(img, make([]byte, offset)...)
	img = append(img, payload...)
	return append(img, "trailing setup data"...)
}

func withSize(p []byte, size int) []byte {
	return binary.LittleEndian.AppendUint32(append([]byte(nil), p...), uint32(size))
}

func TestExtractVmlinuxFromGzipPayload(t *testing.T) {
	vmlinux := fakeELF("Xen", xenElfnotePhys32Entry)
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(vmlinux)
	w.Close()
	got, err := extractVmlinux(fakeBzImage(z.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, vmlinux) {
		t.Fatalf("extracted %d bytes, not the %d-byte vmlinux", len(got), len(vmlinux))
	}
}

// The Debian kernels of the lane: 6.1 is lz4 (legacy frames), 6.12 and
// later zstd; both carry the uncompressed size after the payload.
func TestExtractVmlinuxFromPayloadsWithSize(t *testing.T) {
	for _, tc := range []struct {
		tool string
		args []string
	}{
		{"zstd", []string{"-c", "-q"}},
		{"lz4", []string{"-l", "-c", "-q"}},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			if _, err := exec.LookPath(tc.tool); err != nil {
				testenv.Unavailable(t, "%s not installed (scripts/install-deps.sh vm)", tc.tool)
			}
			vmlinux := fakeELF("Xen", xenElfnotePhys32Entry)
			cmd := exec.Command(tc.tool, tc.args...)
			cmd.Stdin = bytes.NewReader(vmlinux)
			z, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			got, err := extractVmlinux(fakeBzImage(withSize(z, len(vmlinux))))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, vmlinux) {
				t.Fatal("extracted data differs from the vmlinux")
			}
			// A size that disagrees means a truncated or wrong payload.
			if _, err := extractVmlinux(fakeBzImage(withSize(z, len(vmlinux)+1))); err == nil || !strings.Contains(err.Error(), "the image says") {
				t.Errorf("size mismatch: %v", err)
			}
		})
	}
}

func TestExtractVmlinuxRefusesWhatIsNotABzImage(t *testing.T) {
	if _, err := extractVmlinux(make([]byte, 4096)); err == nil || !strings.Contains(err.Error(), "HdrS") {
		t.Errorf("zeros: %v", err)
	}
	if _, err := extractVmlinux(fakeBzImage([]byte("not compressed at all"))); err == nil || !strings.Contains(err.Error(), "unknown kernel compression") {
		t.Errorf("plain payload: %v", err)
	}
}

func TestHasPVHEntry(t *testing.T) {
	for _, tc := range []struct {
		owner string
		typ   uint32
		want  bool
	}{
		{"Xen", xenElfnotePhys32Entry, true},
		{"Xen", 17, false},
		{"GNU", xenElfnotePhys32Entry, false},
	} {
		got, err := hasPVHEntry(fakeELF(tc.owner, tc.typ))
		if err != nil || got != tc.want {
			t.Errorf("note %s/%d: %v, %v; want %v", tc.owner, tc.typ, got, err, tc.want)
		}
	}
}
