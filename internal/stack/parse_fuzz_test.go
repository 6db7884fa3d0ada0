package stack

import (
	"bytes"
	"fmt"
	"testing"
)

// FuzzKallsyms: a symbol table read from any text is sorted, and naming an
// address with it picks the symbol at or below it, never one above; no
// input panics the reader or the lookup.
func FuzzKallsyms(f *testing.F) {
	f.Add([]byte("ffffffff81000000 T _text\nffffffff81000100 t helper\t[mod]\n0000000000000000 T hidden\n"), uint64(0xffffffff81000050))
	f.Add([]byte("zz T x\n"), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, addr uint64) {
		syms, err := readKallsyms(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := 1; i < len(syms); i++ {
			if syms[i-1].addr > syms[i].addr {
				t.Fatalf("symbols out of order at %d: %#x > %#x", i, syms[i-1].addr, syms[i].addr)
			}
		}
		s, ok := lookupKernel(syms, addr)
		if ok && s.addr > addr {
			t.Fatalf("%#x named by %s at %#x, above it", addr, s.name, s.addr)
		}
		if !ok && len(syms) > 0 && syms[0].addr <= addr {
			t.Fatalf("%#x not named though %s at %#x is below it", addr, syms[0].name, syms[0].addr)
		}
	})
}

// FuzzParseMaps: a maps line written from known values reads back as
// them, and a mapping is found only for an address inside it; a process's
// maps file (its paths are the process's to choose) never panics the
// reader.
func FuzzParseMaps(f *testing.F) {
	f.Add(uint64(0x400000), uint64(0x1000), uint64(0), "/usr/bin/x (deleted)", []byte("00400000-00401000 r-xp 00000000 08:01 42 /bin/x\n"))
	f.Fuzz(func(t *testing.T, start, size, off uint64, path string, junk []byte) {
		parseMaps(junk) // must not panic
		if size == 0 || start+size < start || len(path) == 0 || path[0] != '/' || bytes.ContainsAny([]byte(path), "\n\r") {
			return
		}
		line := fmt.Sprintf("%x-%x r-xp %08x 08:01 42 %s\n", start, start+size, off, path)
		maps, err := parseMaps([]byte(line))
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		want := mapping{start: start, end: start + size, offset: off, dev: "08:01", inode: "42", path: path}
		if len(maps) != 1 || maps[0] != want {
			t.Fatalf("%q read as %+v, want %+v", line, maps, want)
		}
		if _, ok := find(maps, start+size); ok {
			t.Fatalf("the end of the mapping %#x found in it", start+size)
		}
		if m, ok := find(maps, start+size-1); !ok || m != want {
			t.Fatalf("the last byte of the mapping not found in it")
		}
	})
}
