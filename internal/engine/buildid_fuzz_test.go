package engine

import (
	"encoding/binary"
	"testing"
)

// FuzzGnuBuildID: the notes of a mapped file are anyone's bytes; walking
// them never panics, and a GNU build id found lies within them.
func FuzzGnuBuildID(f *testing.F) {
	note := func(name string, typ uint32, desc []byte) []byte {
		b := binary.LittleEndian.AppendUint32(nil, uint32(len(name)+1))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
		b = binary.LittleEndian.AppendUint32(b, typ)
		b = append(b, name...)
		b = append(b, make([]byte, int(align4(uint32(len(name)+1)))-len(name))...)
		return append(b, append(desc, make([]byte, int(align4(uint32(len(desc))))-len(desc))...)...)
	}
	f.Add(note("GNU", 3, []byte{0xde, 0xad, 0xbe, 0xef}))
	f.Add(append(note("stapsdt", 3, []byte{1, 2}), note("GNU", 3, []byte{0xaa})...))
	f.Add([]byte{4, 0, 0, 0, 0xff, 0xff, 0, 0, 3, 0, 0, 0, 'G', 'N', 'U', 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if id := gnuBuildID(data, binary.LittleEndian); len(id) > 2*len(data) {
			t.Fatalf("a build id of %d hex digits from %d bytes", len(id), len(data))
		}
	})
}

func TestGnuBuildID(t *testing.T) {
	b := []byte{4, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 'G', 'N', 'U', 0, 0xab, 0xcd, 0, 0}
	if got := gnuBuildID(b, binary.LittleEndian); got != "abcd" {
		t.Errorf("build id %q, want abcd", got)
	}
	if got := gnuBuildID(b[:17], binary.LittleEndian); got != "" {
		t.Errorf("a truncated note gave %q", got)
	}
}
