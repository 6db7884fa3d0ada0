package kernel

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/link"
	"github.com/vigilsec/vigil/internal/policy"
)

// A USDT probe site, as the binary's .note.stapsdt describes it (the
// SystemTap SDT format that DTRACE_PROBE and STAP_PROBE emit): where it is,
// its semaphore if it has one, and where each argument is at that site.
type usdtSite struct {
	// Offset and SemOffset are file offsets, as uprobes take them;
	// SemOffset is 0 for a probe without a semaphore.
	Offset, SemOffset uint64
	Args              []usdtArg
}

// usdtArg is one argument's location, in the terms of struct usdt_arg
// (bpf/probes.h).
type usdtArg struct {
	Kind   uint8 // usdtArg*
	Size   uint8 // bytes: 1, 2, 4 or 8
	Signed bool
	RegOff uint16 // the register's offset in struct pt_regs
	ValOff int64  // the constant, or the offset from the register
}

const (
	usdtArgConst    = 1
	usdtArgReg      = 2
	usdtArgRegDeref = 3
)

// where says where a site keeps the argument, for errors.
func (a usdtArg) where() string {
	switch a.Kind {
	case usdtArgConst:
		return "a constant"
	case usdtArgReg:
		return "a register"
	}
	return fmt.Sprintf("%d bytes of memory", a.Size)
}

// usdtMaxArgs is USDT_MAX_ARGS (bpf/probes.h).
const usdtMaxArgs = 8

// usdtSites finds the sites of provider:name in the ELF file at path.
func usdtSites(path, provider, name string) ([]usdtSite, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if f.Machine != usdtMachine {
		return nil, fmt.Errorf("%s is for %s: this Vigil reads USDT arguments of %s binaries", path, f.Machine, usdtMachine)
	}
	sec := f.Section(".note.stapsdt")
	if sec == nil {
		return nil, fmt.Errorf("%s has no USDT probes (no .note.stapsdt section)", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("reading .note.stapsdt of %s: %w", path, err)
	}
	notes, err := parseStapsdtNotes(data, f.ByteOrder)
	if err != nil {
		return nil, fmt.Errorf("%s: .note.stapsdt: %w", path, err)
	}
	// A prelinked binary moved its code; .stapsdt.base says by how much.
	var base uint64
	if b := f.Section(".stapsdt.base"); b != nil {
		base = b.Addr
	}
	var sites []usdtSite
	var others []string
	for _, n := range notes {
		if n.provider != provider || n.name != name {
			if len(others) < 8 {
				others = append(others, n.provider+":"+n.name)
			}
			continue
		}
		pc := n.pc
		if base != 0 && n.base != 0 {
			pc += base - n.base
		}
		off, ok := fileOffset(f, pc, true)
		if !ok {
			return nil, fmt.Errorf("%s: probe %s:%s at %#x is in no executable segment", path, provider, name, pc)
		}
		site := usdtSite{Offset: off}
		if n.semaphore != 0 {
			if site.SemOffset, ok = fileOffset(f, n.semaphore, false); !ok {
				return nil, fmt.Errorf("%s: the semaphore of probe %s:%s at %#x is in no loaded segment", path, provider, name, n.semaphore)
			}
		}
		if site.Args, err = parseUsdtArgs(n.args); err != nil {
			return nil, fmt.Errorf("%s: probe %s:%s: arguments %q: %w", path, provider, name, n.args, err)
		}
		sites = append(sites, site)
	}
	if len(sites) == 0 {
		return nil, fmt.Errorf("%s has no USDT probe %s:%s (it has %s)", path, provider, name, strings.Join(others, ", "))
	}
	return sites, nil
}

type stapsdtNote struct {
	pc, base, semaphore  uint64
	provider, name, args string
}

// parseStapsdtNotes reads the SDT notes (owner "stapsdt", type 3) of a
// .note.stapsdt section.
func parseStapsdtNotes(data []byte, bo binary.ByteOrder) ([]stapsdtNote, error) {
	// In 64 bits: a size near 2^32 must not round up to a small one.
	align4 := func(n uint32) uint64 { return (uint64(n) + 3) &^ 3 }
	var out []stapsdtNote
	for len(data) > 0 {
		if len(data) < 12 {
			return nil, errors.New("truncated note header")
		}
		namesz, descsz, typ := bo.Uint32(data), bo.Uint32(data[4:]), bo.Uint32(data[8:])
		data = data[12:]
		if align4(namesz)+align4(descsz) > uint64(len(data)) {
			return nil, errors.New("truncated note")
		}
		owner := string(bytes.TrimRight(data[:namesz], "\x00"))
		desc := data[align4(namesz) : align4(namesz)+uint64(descsz)]
		data = data[align4(namesz)+align4(descsz):]
		if owner != "stapsdt" || typ != 3 {
			continue
		}
		if len(desc) < 24 {
			return nil, errors.New("SDT note shorter than its three addresses")
		}
		n := stapsdtNote{pc: bo.Uint64(desc), base: bo.Uint64(desc[8:]), semaphore: bo.Uint64(desc[16:])}
		strs := strings.SplitN(string(desc[24:]), "\x00", 4)
		if len(strs) < 3 {
			return nil, errors.New("SDT note without provider, name and arguments")
		}
		n.provider, n.name, n.args = strs[0], strs[1], strs[2]
		out = append(out, n)
	}
	return out, nil
}

// fileOffset turns a virtual address of the file into its offset in the
// file, through the loadable segment that maps it.
func fileOffset(f *elf.File, addr uint64, exec bool) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || (exec && p.Flags&elf.PF_X == 0) {
			continue
		}
		if addr >= p.Vaddr && addr < p.Vaddr+p.Filesz {
			return addr - p.Vaddr + p.Off, true
		}
	}
	return 0, false
}

// parseUsdtArgs decodes an SDT argument string, such as x86-64's
// "-4@%edi 8@-16(%rbp) 4@$3" or arm64's "-4@w0 8@[sp, 16] 4@3": each
// argument is [-]SIZE@LOCATION, a negative size being signed, the location
// a register, memory at an offset from a register, or a constant, in the
// assembler syntax of the architecture (parseUsdtLocation).
func parseUsdtArgs(s string) ([]usdtArg, error) {
	return parseUsdtArgsWith(s, parseUsdtLocation)
}

// parseUsdtArgsWith is parseUsdtArgs with the location syntax of an
// architecture, for tests of both on any host.
func parseUsdtArgsWith(s string, location func(string, *usdtArg) error) ([]usdtArg, error) {
	fields := usdtFields(s)
	if len(fields) > usdtMaxArgs {
		return nil, fmt.Errorf("%d arguments: Vigil reads the first %d", len(fields), usdtMaxArgs)
	}
	var out []usdtArg
	for i, f := range fields {
		a, err := parseUsdtArg(f, location)
		if err != nil {
			return nil, fmt.Errorf("argument %d %q: %w", i, f, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// usdtFields splits an argument string at the spaces between arguments,
// not those inside arm64's brackets ("8@[sp, 16]").
func usdtFields(s string) []string {
	var out []string
	depth, start := 0, -1
	for i, c := range s {
		switch {
		case c == '[':
			depth++
		case c == ']' && depth > 0:
			depth--
		case (c == ' ' || c == '\t' || c == '\n') && depth == 0:
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

func parseUsdtArg(f string, location func(string, *usdtArg) error) (usdtArg, error) {
	sizeStr, loc, ok := strings.Cut(f, "@")
	if !ok {
		return usdtArg{}, errors.New("no SIZE@ prefix")
	}
	size, err := strconv.Atoi(sizeStr)
	if err != nil {
		return usdtArg{}, errors.New("the size is not a number")
	}
	a := usdtArg{Signed: size < 0}
	if size < 0 {
		size = -size
	}
	switch size {
	case 1, 2, 4, 8:
		a.Size = uint8(size)
	default:
		return usdtArg{}, fmt.Errorf("size %d: 1, 2, 4 or 8 bytes", size)
	}
	if err := location(loc, &a); err != nil {
		return usdtArg{}, err
	}
	return a, nil
}

// attachUsdt attaches a USDT hook at every site of its probe, each with a
// usdt_sites entry that locates its arguments. The caller holds
// s.hooks.mu. On error nothing of the hook stays.
func (s *Sensor) attachUsdt(ih *InstalledHook, progs *probePrograms) error {
	h := ih.Hook
	provider, name, _ := strings.Cut(h.Calls[0], ":")
	sites, err := usdtSites(h.Binary, provider, name)
	if err != nil {
		return fmt.Errorf("%s.path: %w", h.Path, err)
	}
	if len(sites) > policy.MaxUsdtSites {
		return fmt.Errorf("%s: %s has %d sites of %s, at most %d (MaxUsdtSites)", h.Path, h.Binary, len(sites), h.Calls[0], policy.MaxUsdtSites)
	}
	for _, a := range h.Args {
		if int(a.Index) >= len(sites[0].Args) {
			return fmt.Errorf("%s: argument %d: probe %s in %s has %d arguments", h.Path, a.Index, h.Calls[0], h.Binary, len(sites[0].Args))
		}
	}
	if err := usdtSettable(h, sites); err != nil {
		return err
	}
	prog := progs.Usdt
	if slices.ContainsFunc(h.Selectors, func(sel policy.Selector) bool { return sel.Set != nil }) {
		if prog, err = s.usdtSetProgram(progs); err != nil {
			return fmt.Errorf("%s: %w", h.Path, err)
		}
	}
	ex, err := link.OpenExecutable(h.Binary)
	if err != nil {
		return fmt.Errorf("%s.path: %w", h.Path, err)
	}
	fail := func(err error) error {
		ih.closeLinks()
		s.deleteUsdtSites(ih)
		return err
	}
	m := s.maps.UsdtSites
	for _, site := range sites {
		var v sensorUsdtSite
		v.Slot = ih.slot
		for i, a := range site.Args {
			v.Args[i].Kind = a.Kind
			v.Args[i].RegOff = a.RegOff
			v.Args[i].ValOff = a.ValOff
			v.Args[i].Shift = 64 - 8*a.Size
			if a.Signed {
				v.Args[i].IsSigned = 1
			}
		}
		t := s.hooks
		t.nextSite++
		id := t.nextSite
		if err := m.Put(id, &v); err != nil {
			return fail(fmt.Errorf("%s: recording USDT site %#x (at most %d sites across policies): %w", h.Path, site.Offset, m.MaxEntries(), err))
		}
		ih.sites = append(ih.sites, id)
		l, err := ex.Uprobe("", prog, &link.UprobeOptions{Address: site.Offset, RefCtrOffset: site.SemOffset, Cookie: uint64(id)})
		if err != nil {
			return fail(fmt.Errorf("%s: attaching to %s at %#x in %s: %w", h.Path, h.Calls[0], site.Offset, h.Binary, err))
		}
		ih.links = append(ih.links, l)
	}
	ih.Mechanism = "uprobe (usdt)"
	return nil
}

// usdtSettable refuses a Set action on an argument that some site of the
// probe does not keep as 4 bytes of memory (Tetragon's condition too): a
// register or a constant cannot be written from a uprobe.
func usdtSettable(h *policy.Hook, sites []usdtSite) error {
	for i, sel := range h.Selectors {
		if sel.Set == nil {
			continue
		}
		for _, site := range sites {
			if int(sel.Set.Arg) >= len(site.Args) {
				return fmt.Errorf("%s.selectors[%d]: Set on argument %d: the site at %#x has %d arguments", h.Path, i, sel.Set.Arg, site.Offset, len(site.Args))
			}
			if a := site.Args[sel.Set.Arg]; a.Kind != usdtArgRegDeref || a.Size != 4 {
				return fmt.Errorf("%s.selectors[%d]: Set on argument %d: the site at %#x keeps it in %s, and Set writes 4 bytes of memory", h.Path, i, sel.Set.Arg, site.Offset, a.where())
			}
		}
	}
	return nil
}

// deleteUsdtSites forgets the usdt_sites entries of a hook whose links are
// closed.
func (s *Sensor) deleteUsdtSites(ih *InstalledHook) {
	for _, id := range ih.sites {
		s.maps.UsdtSites.Delete(id)
	}
	ih.sites = nil
}

// usdtKind attaches a USDT probe as a uprobe at each of its sites.
type usdtKind struct{}

func (usdtKind) ownProbes() bool { return true }
func (usdtKind) attachable(_ *Sensor, h *policy.Hook) error {
	return needCookie(h, "USDT probes")
}

func (usdtKind) attach(s *Sensor, ih *InstalledHook) error {
	progs, err := s.probeCollection()
	if err != nil {
		return err
	}
	return s.attachUsdt(ih, progs)
}

func (usdtKind) mechanisms(fs Features) []HookMechanism {
	if !fs.Has(FeatureUprobe) {
		return []HookMechanism{missing("usdts", FeatureUprobe)}
	}
	if !fs.Has(FeatureAttachCookie) {
		return []HookMechanism{missing("usdts", FeatureAttachCookie)}
	}
	return []HookMechanism{{Hook: "usdts", Mechanism: "uprobe at each probe site (attach cookie, semaphore)"}}
}
