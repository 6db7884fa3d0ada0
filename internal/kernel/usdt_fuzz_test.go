package kernel

import (
	"encoding/binary"
	"testing"
)

// stapsdtNoteBytes writes one SDT note as a compiler does.
func stapsdtNoteBytes(pc, base, sem uint64, provider, name, args string) []byte {
	desc := binary.LittleEndian.AppendUint64(nil, pc)
	desc = binary.LittleEndian.AppendUint64(desc, base)
	desc = binary.LittleEndian.AppendUint64(desc, sem)
	desc = append(desc, provider+"\x00"+name+"\x00"+args+"\x00"...)
	owner := []byte("stapsdt\x00")
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(owner)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
	b = binary.LittleEndian.AppendUint32(b, 3)
	b = append(b, owner...)
	b = append(b, desc...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// FuzzStapsdtNotes: the notes section of a binary a policy names is the
// binary's to write. A note written from known values reads back as them;
// no section, however malformed, panics the reader or the argument parser.
func FuzzStapsdtNotes(f *testing.F) {
	f.Add(uint64(0x1139), uint64(0x2004), uint64(0), "vigil", "hit", "-4@%edi 8@-16(%rbp) 4@$3", []byte{})
	f.Add(uint64(1), uint64(2), uint64(3), "p", "n", "8@(%rax", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, pc, base, sem uint64, provider, name, args string, junk []byte) {
		if notes, err := parseStapsdtNotes(junk, binary.LittleEndian); err == nil {
			for _, n := range notes {
				parseUsdtArgs(n.args) // must not panic
			}
		}
		parseUsdtArgs(args)
		for _, s := range []string{provider, name, args} {
			for i := 0; i < len(s); i++ {
				if s[i] == 0 {
					return // NUL ends a string of the note
				}
			}
		}
		notes, err := parseStapsdtNotes(stapsdtNoteBytes(pc, base, sem, provider, name, args), binary.LittleEndian)
		if err != nil {
			t.Fatal(err)
		}
		want := stapsdtNote{pc: pc, base: base, semaphore: sem, provider: provider, name: name, args: args}
		if len(notes) != 1 || notes[0] != want {
			t.Fatalf("read %+v, want %+v", notes, want)
		}
	})
}
