package stack

import (
	"bufio"
	"bytes"
	"debug/elf"
	"debug/gosym"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bounds of User's caches: processes whose mappings are kept, and ELF
// files whose symbol tables are.
const (
	maxProcesses = 256
	// A large Go binary's function table is a few MiB.
	maxFiles = 32
	// mapsTTL is how long a process's mappings are trusted for an address
	// they cover. An address they do not cover rereads them, but not
	// within mapsReread of the last read: stacks that leave the process's
	// files (JIT code, a frame-pointer walk gone astray) would otherwise
	// reread them for every frame.
	mapsTTL    = 10 * time.Second
	mapsReread = time.Second
)

// mapping is one file-backed line of /proc/PID/maps.
type mapping struct {
	start, end, offset uint64
	dev, inode         string
	path               string
}

type procMaps struct {
	gen  string
	read time.Time
	maps []mapping
}

// User names addresses in processes: which file each is mapped from, at
// what offset, and in what function of that file's symbol table. The
// mappings are read from /proc/PID/maps when a stack needs them and kept a
// while, so the frames of a process that has exited since are named while
// they are cached; once the process is gone and not cached, frames keep
// their address alone. It is safe for concurrent use.
type User struct {
	proc string // the procfs mount, normally /proc

	mu    sync.Mutex
	procs map[uint32]*procMaps
	files map[string]*elfSyms
}

// NewUser returns a symbolizer reading the procfs mounted at proc.
func NewUser(proc string) *User {
	return &User{proc: proc, procs: map[uint32]*procMaps{}, files: map[string]*elfSyms{}}
}

// Frames names the addresses of a user stack of process pid, innermost
// first. gen names the program the process runs (its exec id): mappings
// read under another gen belong to the program pid ran before, and are
// read again.
func (u *User) Frames(pid uint32, gen string, addrs []uint64) []Frame {
	u.mu.Lock()
	defer u.mu.Unlock()
	frames := make([]Frame, len(addrs))
	for i, a := range addrs {
		frames[i] = Frame{Address: a}
		m, ok := u.mapping(pid, gen, a)
		if !ok {
			continue
		}
		f := &frames[i]
		f.Module = m.path
		f.ModuleOffset = a - m.start + m.offset
		syms := u.symbols(pid, m)
		if syms == nil {
			continue
		}
		vaddr, ok := syms.vaddr(lookupAddr(i, a) - m.start + m.offset)
		if !ok {
			continue
		}
		if s, ok := syms.lookup(vaddr); ok {
			f.Symbol = s.name
			// The offset of the address itself, not of the byte
			// it was named by.
			f.Offset = vaddr - s.value + (a - lookupAddr(i, a))
		}
	}
	return frames
}

// mapping finds the file mapping of addr in pid, reading the mappings
// when the cached ones are stale, of another program, or do not cover it.
func (u *User) mapping(pid uint32, gen string, addr uint64) (mapping, bool) {
	pm := u.procs[pid]
	if pm != nil && pm.gen == gen {
		age := time.Since(pm.read)
		m, ok := find(pm.maps, addr)
		if ok && age < mapsTTL || !ok && age < mapsReread {
			return m, ok
		}
	}
	maps, err := readMaps(filepath.Join(u.proc, strconv.FormatUint(uint64(pid), 10), "maps"))
	if err != nil {
		// Gone: what was cached for this program is still right.
		if pm != nil && pm.gen == gen {
			return find(pm.maps, addr)
		}
		return mapping{}, false
	}
	if len(u.procs) >= maxProcesses && u.procs[pid] == nil {
		evictOldest(u.procs)
	}
	u.procs[pid] = &procMaps{gen: gen, read: time.Now(), maps: maps}
	return find(maps, addr)
}

func evictOldest(procs map[uint32]*procMaps) {
	var oldest uint32
	var when time.Time
	for pid, pm := range procs {
		if when.IsZero() || pm.read.Before(when) {
			oldest, when = pid, pm.read
		}
	}
	delete(procs, oldest)
}

func find(maps []mapping, addr uint64) (mapping, bool) {
	i, _ := slices.BinarySearchFunc(maps, addr, func(m mapping, a uint64) int {
		switch {
		case m.end <= a:
			return -1
		case m.start > a:
			return 1
		}
		return 0
	})
	if i < len(maps) && maps[i].start <= addr && addr < maps[i].end {
		return maps[i], true
	}
	return mapping{}, false
}

// readMaps reads the file-backed mappings of a /proc/PID/maps file, in
// address order (as the kernel lists them).
func readMaps(path string) ([]mapping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	maps, err := parseMaps(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return maps, nil
}

// parseMaps reads the file-backed mappings of a maps file's content.
func parseMaps(b []byte) ([]mapping, error) {
	var maps []mapping
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// start-end perms offset dev inode path, space separated, the
		// path padded to a column. The path is the rest of the line as
		// it is: it may hold blanks of any kind, and a deleted file is
		// marked " (deleted)".
		var f [5]string
		rest := sc.Text()
		for i := range f {
			rest = strings.TrimLeft(rest, " ")
			f[i], rest, _ = strings.Cut(rest, " ")
		}
		p := strings.TrimLeft(rest, " ")
		if !strings.HasPrefix(p, "/") {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(f[2], 16, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%q: %w", sc.Text(), err)
		}
		maps = append(maps, mapping{start: start, end: end, offset: off, dev: f[3], inode: f[4], path: p})
	}
	return maps, sc.Err()
}

// symbols returns the symbol table of m's file, nil when it has none or
// cannot be read. The file is opened through the process's root, so a
// container's files are its own.
func (u *User) symbols(pid uint32, m mapping) *elfSyms {
	key := m.dev + ":" + m.inode
	if s, ok := u.files[key]; ok {
		return s
	}
	path := filepath.Join(u.proc, strconv.FormatUint(uint64(pid), 10), "root", m.path)
	s, err := readELF(path)
	if err != nil {
		s, err = readELF(m.path)
	}
	if err != nil {
		s = nil
	}
	if len(u.files) >= maxFiles {
		for k := range u.files {
			delete(u.files, k)
			break
		}
	}
	u.files[key] = s
	return s
}

type elfSym struct {
	value, size uint64
	name        string
}

// elfSyms is what naming needs of an ELF file: its loadable segments, to
// turn file offsets into addresses, and its function symbols.
type elfSyms struct {
	progs []elf.ProgHeader
	syms  []elfSym // sorted by value
}

func readELF(path string) (*elfSyms, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := &elfSyms{}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			s.progs = append(s.progs, p.ProgHeader)
		}
	}
	// .symtab names static functions too; stripped files keep .dynsym,
	// and stripped Go binaries (go build -ldflags=-s, go test, most
	// container images) the runtime's function table as well.
	syms, err := f.Symbols()
	if err != nil || len(syms) == 0 {
		syms, _ = f.DynamicSymbols()
		s.syms = goFuncs(f)
	}
	for _, sym := range syms {
		if elf.ST_TYPE(sym.Info) != elf.STT_FUNC || sym.Value == 0 {
			continue
		}
		s.syms = append(s.syms, elfSym{value: sym.Value, size: sym.Size, name: sym.Name})
	}
	slices.SortFunc(s.syms, func(a, b elfSym) int {
		switch {
		case a.value < b.value:
			return -1
		case a.value > b.value:
			return 1
		}
		return 0
	})
	return s, nil
}

// goFuncs reads the functions of a Go binary's .gopclntab, nil when it has
// none.
func goFuncs(f *elf.File) []elfSym {
	pcln, text := f.Section(".gopclntab"), f.Section(".text")
	if pcln == nil || text == nil {
		return nil
	}
	data, err := pcln.Data()
	if err != nil {
		return nil
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return nil
	}
	syms := make([]elfSym, 0, len(tab.Funcs))
	for _, fn := range tab.Funcs {
		syms = append(syms, elfSym{value: fn.Entry, size: fn.End - fn.Entry, name: fn.Name})
	}
	return syms
}

// vaddr turns a file offset into the address the file's symbols use.
func (s *elfSyms) vaddr(off uint64) (uint64, bool) {
	for _, p := range s.progs {
		if p.Off <= off && off < p.Off+p.Filesz {
			return off - p.Off + p.Vaddr, true
		}
	}
	return 0, false
}

// lookup finds the function containing addr. Only a symbol whose extent
// covers it counts: in a stripped library the nearest exported symbol
// before an internal function is not that function.
func (s *elfSyms) lookup(addr uint64) (elfSym, bool) {
	i, _ := slices.BinarySearchFunc(s.syms, addr, func(e elfSym, a uint64) int {
		if e.value <= a {
			return -1
		}
		return 1
	})
	// i is the first symbol after addr; aliases at one address sit
	// together before it.
	for j := i - 1; j >= 0 && j >= i-8; j-- {
		e := s.syms[j]
		if addr >= e.value && (addr < e.value+e.size || e.size == 0 && j == i-1) {
			return e, true
		}
	}
	return elfSym{}, false
}
