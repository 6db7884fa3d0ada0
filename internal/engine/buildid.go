package engine

import (
	"debug/elf"
	"encoding/hex"
	"os"
	"sync"
	"time"
)

// buildIDCache remembers the GNU build ids of the files loader events name:
// a library is mapped by every process that uses it, and its notes are
// read once while the file stays the same (size and modification time).
type buildIDCache struct {
	mu      sync.Mutex
	entries map[string]buildIDEntry
}

type buildIDEntry struct {
	size  int64
	mtime time.Time
	id    string
}

// buildIDCacheMax bounds the cache; past it, it starts over.
const buildIDCacheMax = 4096

// of returns the hex GNU build id of the ELF file at path, "" when it has
// none or cannot be read.
func (c *buildIDCache) of(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[path]; ok && e.size == fi.Size() && e.mtime.Equal(fi.ModTime()) {
		return e.id
	}
	if c.entries == nil || len(c.entries) >= buildIDCacheMax {
		c.entries = map[string]buildIDEntry{}
	}
	id := readBuildID(path)
	c.entries[path] = buildIDEntry{size: fi.Size(), mtime: fi.ModTime(), id: id}
	return id
}

// readBuildID reads the NT_GNU_BUILD_ID note of an ELF file.
func readBuildID(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	for _, sec := range f.Sections {
		if sec.Type != elf.SHT_NOTE {
			continue
		}
		data, err := sec.Data()
		if err != nil {
			continue
		}
		if id := gnuBuildID(data, f.ByteOrder); id != "" {
			return id
		}
	}
	return ""
}

// gnuBuildID finds the GNU build id among the notes of a section: each is
// namesz, descsz, type, then the name and the descriptor, 4-byte aligned.
func gnuBuildID(data []byte, order interface{ Uint32([]byte) uint32 }) string {
	const ntGNUBuildID = 3
	for len(data) >= 12 {
		namesz, descsz, typ := order.Uint32(data), order.Uint32(data[4:]), order.Uint32(data[8:])
		nameEnd := 12 + int(align4(namesz))
		descEnd := nameEnd + int(align4(descsz))
		if namesz > 1<<16 || descsz > 1<<16 || descEnd > len(data) || nameEnd+int(descsz) > len(data) {
			return ""
		}
		if typ == ntGNUBuildID && namesz == 4 && string(data[12:15]) == "GNU" {
			return hex.EncodeToString(data[nameEnd : nameEnd+int(descsz)])
		}
		data = data[descEnd:]
	}
	return ""
}

func align4(n uint32) uint32 { return (n + 3) &^ 3 }
