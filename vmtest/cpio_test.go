package main

import (
	"bytes"
	"slices"
	"strconv"
	"testing"
)

type cpioEntry struct {
	name  string
	mode  uint32
	data  string
	major uint32
	minor uint32
}

// readCPIO parses a newc archive, checking the alignment the kernel needs.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("offset %d field %d: %v", off, i, err)
		}
		return uint32(v)
	}
	for {
		if off%4 != 0 || string(b[off:off+6]) != "070701" {
			t.Fatalf("no newc header at offset %d", off)
		}
		mode, size, major, minor, nameSize := field(1), field(6), field(9), field(10), field(11)
		name := string(b[off+110 : off+110+int(nameSize)-1])
		off = int(align4(uint32(off + 110 + int(nameSize))))
		data := string(b[off : off+int(size)])
		off = int(align4(uint32(off + int(size))))
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Errorf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, cpioEntry{name, mode, data, major, minor})
	}
}

func TestCPIOWriterAddsParentsFirstAndOnce(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	c.dir("usr/bin", 0o755)
	c.bytes("usr/lib/x86_64-linux-gnu/libc.so.6", 0o755, []byte("elf"))
	c.symlink("bin", "usr/bin")
	c.charDev("dev/console", 0o600, 5, 1)
	c.dir("usr", 0o755) // already there: not written again
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	var names []string
	entries := readCPIO(t, buf.Bytes())
	for _, e := range entries {
		names = append(names, e.name)
	}
	want := []string{"usr", "usr/bin", "usr/lib", "usr/lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu/libc.so.6", "bin", "dev", "dev/console"}
	if !slices.Equal(names, want) {
		t.Fatalf("entries %q, want %q", names, want)
	}
	if e := entries[4]; e.mode != cpioFile|0o755 || e.data != "elf" {
		t.Errorf("file %+v", e)
	}
	if e := entries[5]; e.mode != cpioSymlink|0o777 || e.data != "usr/bin" {
		t.Errorf("symlink %+v", e)
	}
	if e := entries[7]; e.mode != cpioCharDev|0o600 || e.major != 5 || e.minor != 1 {
		t.Errorf("device %+v", e)
	}
}

func TestCPIOWriterRefusesADuplicateFile(t *testing.T) {
	c := newCPIOWriter(new(bytes.Buffer))
	c.bytes("init", 0o755, []byte("a"))
	c.bytes("init", 0o755, []byte("b"))
	if err := c.close(); err == nil {
		t.Fatal("a second init was accepted")
	}
}
