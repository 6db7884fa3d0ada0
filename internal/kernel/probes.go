package kernel

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/policy"
)

// The tracepoint and uprobe programs (bpf/probes.h) are loaded on first use:
// they need attach cookies (Linux 5.15), which the process sensor does not.
var probePrograms = []string{"vigil_tracepoint", "vigil_uprobe", "vigil_uretprobe", "vigil_usdt", "vigil_connect4", "vigil_connect6", "vigil_kprobe", "vigil_kretprobe"}

// multiPrograms are loaded only where the kernel has kprobe.multi: elsewhere
// their attach type does not load at all.
var multiPrograms = []string{"vigil_kprobe_multi", "vigil_kretprobe_multi"}

const (
	tracefsRoot = "/sys/kernel/tracing"
	tpRecordMax = 512 // TP_RECORD_MAX, bpf/probes.h
	argfKernel  = 1 << 5
	argfDataLoc = 1 << 6
)

// probeCollection loads the tracepoint and uprobe programs, sharing the
// sensor's maps. The caller holds s.hooks.mu.
func (s *Sensor) probeCollection() (*ebpf.Collection, error) {
	if s.probes != nil {
		return s.probes, nil
	}
	spec, err := loadSensor()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded BPF object: %w", err)
	}
	multi := features.HaveBPFLinkKprobeMulti() == nil
	for name := range spec.Programs {
		if !contains(probePrograms, name) && !(multi && contains(multiPrograms, name)) {
			delete(spec.Programs, name)
		}
	}
	// The replacements must match the specs: the ring buffer was sized
	// at load.
	spec.Maps["events"].MaxEntries = s.maps.Events.MaxEntries()
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: s.byName})
	if err != nil {
		return nil, fmt.Errorf("loading the tracepoint and uprobe programs (they need attach cookies, Linux 5.15): %w", describeLoadError(err))
	}
	s.probes = coll
	return coll, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// tpField is one field of a tracepoint's format.
type tpField struct {
	decl    string // e.g. "const char * filename"
	offset  int
	size    int
	signed  bool
	dataLoc bool
}

// tracepointFormat reads a tracepoint's record layout from tracefs,
// mounting tracefs if nothing has.
func tracepointFormat(group, name string) ([]tpField, error) {
	if err := ensureMounted("tracefs", unix.TRACEFS_MAGIC, tracefsRoot); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(tracefsRoot, "events", group, name, "format"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("tracepoint %s/%s does not exist on this kernel", group, name)
		}
		return nil, err
	}
	defer f.Close()
	var fields []tpField
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "field:") {
			continue
		}
		var fld tpField
		for _, part := range strings.Split(line, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), ":")
			if !ok {
				continue
			}
			switch k {
			case "field":
				fld.decl = v
				fld.dataLoc = strings.HasPrefix(v, "__data_loc")
			case "offset":
				fld.offset, _ = strconv.Atoi(v)
			case "size":
				fld.size, _ = strconv.Atoi(v)
			case "signed":
				fld.signed = v == "1"
			}
		}
		fields = append(fields, fld)
	}
	return fields, sc.Err()
}

// tracepointArgs fills the argument table of a tracepoint hook from the
// tracepoint's format: each argument's index is a field position.
func tracepointArgs(c *sensorHookConf, h *policy.Hook) error {
	group, name, _ := strings.Cut(h.Calls[0], "/")
	fields, err := tracepointFormat(group, name)
	if err != nil {
		return fmt.Errorf("%s: %w", h.Path, err)
	}
	recSize := 0
	for i, a := range h.Args {
		if int(a.Index) >= len(fields) {
			return fmt.Errorf("%s.args[%d].index: %d, but %s has %d fields", h.Path, i, a.Index, h.Calls[0], len(fields))
		}
		fld := fields[a.Index]
		ca := &c.Args[i]
		ca.Index = uint8(i)
		ca.Off = uint16(fld.offset)
		ca.Fsize = uint8(fld.size)
		recSize = max(recSize, fld.offset+fld.size)
		switch a.Kind {
		case policy.ArgInt:
			if fld.size != 1 && fld.size != 2 && fld.size != 4 && fld.size != 8 {
				return fmt.Errorf("%s.args[%d]: field %q of %d bytes is not an integer", h.Path, i, fld.decl, fld.size)
			}
			ca.Flags = 0
			if fld.signed {
				ca.Flags |= argfSigned
			}
			ca.Flags |= uint8(trailingZeros(uint8(fld.size))) << 1
		case policy.ArgString:
			switch {
			case fld.dataLoc:
				ca.Flags |= argfKernel | argfDataLoc
				// The string follows the fixed fields: copy the
				// most the program allows.
				recSize = tpRecordMax
			case strings.Contains(fld.decl, "char *") || strings.Contains(fld.decl, "char*"):
				// Syscall tracepoints carry user pointers.
				if group != "syscalls" {
					ca.Flags |= argfKernel
				}
			default:
				return fmt.Errorf("%s.args[%d]: field %q is not a string", h.Path, i, fld.decl)
			}
		}
	}
	if recSize > tpRecordMax {
		return fmt.Errorf("%s: the fields read end at byte %d of the record; at most %d", h.Path, recSize, tpRecordMax)
	}
	if recSize == 0 {
		recSize = 8
	}
	c.RecSize = uint16(recSize)
	return nil
}

func trailingZeros(v uint8) int {
	n := 0
	for v > 1 {
		v >>= 1
		n++
	}
	return n
}

// attachProbes attaches a tracepoint or uprobe hook, with its slot as the
// cookie. On error nothing stays attached.
func (s *Sensor) attachProbes(ih *InstalledHook) error {
	coll, err := s.probeCollection()
	if err != nil {
		return err
	}
	h := ih.Hook
	cookie := uint64(ih.slot)
	switch h.Kind {
	case policy.HookTracepoint:
		group, name, _ := strings.Cut(h.Calls[0], "/")
		l, err := link.Tracepoint(group, name, coll.Programs["vigil_tracepoint"], &link.TracepointOptions{Cookie: cookie})
		if err != nil {
			return fmt.Errorf("%s: attaching to tracepoint %s: %w", h.Path, h.Calls[0], err)
		}
		ih.links = append(ih.links, l)
		ih.Mechanism = "tracepoint"
	case policy.HookRawTracepoint:
		return s.attachRawTracepoint(ih)
	case policy.HookKprobe:
		return s.attachKprobes(ih, coll)
	case policy.HookSyscall:
		return s.attachSyscallWrappers(ih, coll)
	case policy.HookLSM:
		return s.attachLSM(ih)
	case policy.HookUprobe:
		ex, err := link.OpenExecutable(h.Binary)
		if err != nil {
			return fmt.Errorf("%s.path: %w", h.Path, err)
		}
		attach := func(sym string, opts link.UprobeOptions) error {
			opts.Cookie = cookie
			l, err := ex.Uprobe(sym, coll.Programs["vigil_uprobe"], &opts)
			if err != nil {
				return err
			}
			ih.links = append(ih.links, l)
			if h.Return {
				l, err = ex.Uretprobe(sym, coll.Programs["vigil_uretprobe"], &opts)
				if err != nil {
					return err
				}
				ih.links = append(ih.links, l)
			}
			return nil
		}
		for i, sym := range h.Calls {
			if err := attach(sym, link.UprobeOptions{}); err != nil {
				ih.closeLinks()
				return fmt.Errorf("%s.symbols[%d]: %q in %s: %w", h.Path, i, sym, h.Binary, err)
			}
		}
		for i, off := range h.Offsets {
			opts := link.UprobeOptions{Address: off}
			if i < len(h.RefCtrOffsets) {
				opts.RefCtrOffset = h.RefCtrOffsets[i]
			}
			if err := attach("", opts); err != nil {
				ih.closeLinks()
				return fmt.Errorf("%s.offsets[%d]: %#x in %s: %w", h.Path, i, off, h.Binary, err)
			}
		}
		ih.Mechanism = "uprobe"
	case policy.HookUsdt:
		return s.attachUsdt(ih, coll)
	}
	return nil
}

// attachUsdt attaches a USDT hook at every site of its probe, each with a
// usdt_sites entry that locates its arguments. The caller holds
// s.hooks.mu. On error nothing of the hook stays.
func (s *Sensor) attachUsdt(ih *InstalledHook, coll *ebpf.Collection) error {
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
		l, err := ex.Uprobe("", coll.Programs["vigil_usdt"], &link.UprobeOptions{Address: site.Offset, RefCtrOffset: site.SemOffset, Cookie: uint64(id)})
		if err != nil {
			return fail(fmt.Errorf("%s: attaching to %s at %#x in %s: %w", h.Path, h.Calls[0], site.Offset, h.Binary, err))
		}
		ih.links = append(ih.links, l)
	}
	ih.Mechanism = "uprobe (usdt)"
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

func (ih *InstalledHook) closeLinks() {
	for _, l := range ih.links {
		l.Close()
	}
	ih.links = nil
	for _, c := range ih.colls {
		c.Close()
	}
	ih.colls = nil
}

// loadTrampoline loads a copy of a trampoline program (BPF LSM, fmod_ret)
// for one hook: such programs are bound to their function at load, and
// their copy of tramp_slot names the hook.
func (s *Sensor) loadTrampoline(ih *InstalledHook, program, attachTo string) (*ebpf.Program, error) {
	spec, err := loadSensor()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded BPF object: %w", err)
	}
	for name := range spec.Programs {
		if name != program {
			delete(spec.Programs, name)
		}
	}
	spec.Programs[program].AttachTo = attachTo
	if err := spec.Variables["tramp_slot"].Set(ih.slot); err != nil {
		return nil, err
	}
	spec.Maps["events"].MaxEntries = s.maps.Events.MaxEntries()
	// Share every map but the constants, which are this copy's own.
	repl := map[string]*ebpf.Map{}
	for name, m := range s.byName {
		if !strings.HasPrefix(name, ".") {
			repl[name] = m
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: repl})
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("%s: the kernel refuses %s programs (EPERM): %w", ih.Hook.Path, program, ErrMissingFeature)
		}
		return nil, fmt.Errorf("%s: loading %s for %s: %w", ih.Hook.Path, program, attachTo, describeLoadError(err))
	}
	ih.colls = append(ih.colls, coll)
	return coll.Programs[program], nil
}

// attachLSM attaches an lsmhooks hook as a BPF LSM program. Where "bpf" is
// not an active LSM the program would attach and never run: that is
// refused instead.
func (s *Sensor) attachLSM(ih *InstalledHook) error {
	h := ih.Hook
	if err := probeLSMActive(); err != nil {
		return fmt.Errorf("%s.hook: %w: %w", h.Path, ErrMissingFeature, err)
	}
	prog, err := s.loadTrampoline(ih, "vigil_lsm", h.Calls[0])
	if err != nil {
		return err
	}
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		ih.closeLinks()
		return fmt.Errorf("%s.hook: attaching the LSM program to %s: %w", h.Path, h.Calls[0], err)
	}
	ih.links = append(ih.links, l)
	ih.Mechanism = "bpf_lsm"
	return nil
}

// attachRawTracepoint attaches a raw tracepoint hook: a copy of vigil_raw_tp
// of its own, since raw tracepoints take attach cookies only from Linux
// 6.10.
func (s *Sensor) attachRawTracepoint(ih *InstalledHook) error {
	h := ih.Hook
	_, event, _ := strings.Cut(h.Calls[0], "/")
	prog, err := s.loadTrampoline(ih, "vigil_raw_tp", "")
	if err != nil {
		return err
	}
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: event, Program: prog})
	if err != nil {
		ih.closeLinks()
		return fmt.Errorf("%s.event: attaching to raw tracepoint %s: %w", h.Path, event, err)
	}
	ih.links = append(ih.links, l)
	ih.Mechanism = "raw_tp"
	return nil
}

func hasOverride(h *policy.Hook) bool {
	for _, sel := range h.Selectors {
		if sel.Override {
			return true
		}
	}
	return false
}

// attachFentry attaches a kprobe hook as fentry on fn, one of its
// functions. On error nothing of the hook stays attached.
func (s *Sensor) attachFentry(ih *InstalledHook, fn string) error {
	h := ih.Hook
	prog, err := s.loadTrampoline(ih, "vigil_fentry", fn)
	if err != nil {
		ih.closeLinks()
		return err
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		ih.closeLinks()
		return fmt.Errorf("%s.call: attaching fentry to %s: %w", h.Path, fn, err)
	}
	ih.links = append(ih.links, l)
	return nil
}

// attachFmodRet attaches an Override kprobe on a security_* function as
// fmod_ret: the program's non-zero return replaces the function's.
func (s *Sensor) attachFmodRet(ih *InstalledHook, fn string) error {
	h := ih.Hook
	prog, err := s.loadTrampoline(ih, "vigil_fmod_ret", fn)
	if err != nil {
		return err
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		ih.closeLinks()
		return fmt.Errorf("%s.call: attaching fmod_ret to %s: %w", h.Path, fn, err)
	}
	ih.links = append(ih.links, l)
	return nil
}

// ErrMissingFeature wraps the refusal of a hook that this kernel cannot
// host; the error names the feature.
var ErrMissingFeature = errors.New("missing kernel feature")

// attachable refuses, before anything is written, a hook whose mechanism
// this kernel lacks, with the error its attach would give: what the
// policy needs of the kernel is reported before what it needs of the host
// (host_ns, BTF members).
func (s *Sensor) attachable(h *policy.Hook) error {
	switch h.Kind {
	case policy.HookKprobe:
		kprobes := probePMU("kprobe")
		fentry := !h.Return && !hasOverride(h) && len(h.Calls) == 1 && Probe().Has(FeatureFentry)
		if kprobes != nil && !fentry {
			return fmt.Errorf("%s.call: kprobes are not available on this kernel: %w: %w", h.Path, ErrMissingFeature, kprobes)
		}
	case policy.HookLSM:
		if err := probeLSMActive(); err != nil {
			return fmt.Errorf("%s.hook: %w: %w", h.Path, ErrMissingFeature, err)
		}
	case policy.HookSyscall:
		if err := s.syscallSupport().fmodRet; hasOverride(h) && err != nil {
			return fmt.Errorf("%s: Override on a syscall needs fmod_ret on its function (%s*), which needs the kernel's error injection list (CONFIG_FUNCTION_ERROR_INJECTION): %w: %w", h.Path, syscallPrefix, ErrMissingFeature, err)
		}
	}
	return nil
}

// attachKprobes attaches a kprobe hook: with kprobe.multi (Linux 5.18, and
// a kernel with fprobe) where the kernel has it, else one kprobe per
// function. Mechanism says which.
func (s *Sensor) attachKprobes(ih *InstalledHook, coll *ebpf.Collection) error {
	h := ih.Hook
	kprobes := probePMU("kprobe")
	if kprobes != nil || s.preferFentry {
		if !h.Return && !hasOverride(h) && len(h.Calls) == 1 {
			// fentry needs no kprobes: a trampoline on the function.
			err := s.attachFentry(ih, h.Calls[0])
			if err == nil {
				ih.Mechanism = "fentry"
			}
			if err == nil || kprobes == nil || !errors.Is(err, ErrMissingFeature) {
				return err
			}
		}
		if kprobes != nil {
			return fmt.Errorf("%s.call: kprobes are not available on this kernel: %w: %w", h.Path, ErrMissingFeature, kprobes)
		}
	}
	for _, sel := range h.Selectors {
		if sel.Override {
			// Error injection on a security_* function: fmod_ret, which
			// needs no bpf_override_return.
			if len(h.Calls) == 1 && strings.HasPrefix(h.Calls[0], "security_") && !h.Return {
				if err := s.attachFmodRet(ih, h.Calls[0]); err != nil {
					return err
				}
				ih.Mechanism = "fmod_ret"
				return nil
			}
			if err := features.HaveProgramHelper(ebpf.Kprobe, asm.FnOverrideReturn); err != nil {
				return fmt.Errorf("%s: Override on a kprobe needs bpf_override_return, which this kernel lacks (CONFIG_BPF_KPROBE_OVERRIDE): %w", h.Path, ErrMissingFeature)
			}
			return fmt.Errorf("%s: Override on a kprobe is not implemented by this version of Vigil yet", h.Path)
		}
	}
	mechanism, err := attachKprobeLinks(ih, coll, h.Calls)
	if err == nil {
		ih.Mechanism = cmp.Or(mechanism, MechanismNotFound)
	}
	return err
}

// MechanismNotFound is the Mechanism of a hook that is not attached: the
// kernel has none of its functions, and its ignore.callNotFound says to go
// on without them.
const MechanismNotFound = "none: call not found (ignored)"

// attachKprobeLinks attaches kprobes, and kretprobes for a return hook, to
// fns with the hook's slot as the cookie: with kprobe.multi where the probe
// collection has it, else one kprobe per function. It returns the mechanism,
// "" when nothing was attached because the functions are missing and the
// hook ignores that (ignore.callNotFound). On error nothing of the hook
// stays attached.
func attachKprobeLinks(ih *InstalledHook, coll *ebpf.Collection, fns []string) (string, error) {
	h := ih.Hook
	cookie := uint64(ih.slot)
	if coll.Programs["vigil_kprobe_multi"] != nil {
		cookies := make([]uint64, len(fns))
		for i := range cookies {
			cookies[i] = cookie
		}
		opts := link.KprobeMultiOptions{Symbols: fns, Cookies: cookies}
		l, err := link.KprobeMulti(coll.Programs["vigil_kprobe_multi"], opts)
		if err == nil && h.Return {
			ih.links = append(ih.links, l)
			l, err = link.KretprobeMulti(coll.Programs["vigil_kretprobe_multi"], opts)
		}
		if err != nil {
			ih.closeLinks()
			if errors.Is(err, os.ErrNotExist) {
				if h.IgnoreNotFound {
					return "", nil
				}
				return "", fmt.Errorf("%s.call: this kernel has no function among %v by that name (renamed, inlined or not built; ignore.callNotFound skips it): %w: %w", h.Path, fns, ErrMissingFeature, err)
			}
			return "", fmt.Errorf("%s.call: attaching kprobe.multi to %v: %w", h.Path, fns, err)
		}
		ih.links = append(ih.links, l)
		return "kprobe.multi", nil
	}
	attached := false
	for _, fn := range fns {
		l, err := link.Kprobe(fn, coll.Programs["vigil_kprobe"], &link.KprobeOptions{Cookie: cookie})
		if err == nil {
			ih.links = append(ih.links, l)
			if h.Return {
				l, err = link.Kretprobe(fn, coll.Programs["vigil_kretprobe"], &link.KprobeOptions{Cookie: cookie})
				if err == nil {
					ih.links = append(ih.links, l)
				}
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				if h.IgnoreNotFound {
					continue
				}
				ih.closeLinks()
				return "", fmt.Errorf("%s.call: this kernel has no function %s (renamed, inlined or not built; ignore.callNotFound skips it): %w: %w", h.Path, fn, ErrMissingFeature, err)
			}
			ih.closeLinks()
			return "", fmt.Errorf("%s.call: attaching a kprobe to %s: %w", h.Path, fn, err)
		}
		attached = true
	}
	if !attached {
		return "", nil
	}
	return "kprobe", nil
}

// How `syscall: true` kprobes attach, as InstalledHook.Mechanism says, in
// DESIGN.md's order of preference: on the syscall's wrapper function with
// kprobe.multi, single kprobes or fentry, else on the raw syscall
// tracepoints, dispatched by syscall number.
const (
	SyscallKprobeMulti = "kprobe.multi " + syscallPrefix + "*"
	SyscallKprobe      = "kprobe " + syscallPrefix + "*"
	SyscallFentry      = "fentry " + syscallPrefix + "*"
	SyscallTracepoints = "raw syscall tracepoints"
	// SyscallFmodRet serves hooks with Override: fmod_ret on the wrapper
	// skips the syscall and returns argError. Syscall wrappers are on the
	// kernel's error injection list, as security_* functions are.
	SyscallFmodRet = "fmod_ret " + syscallPrefix + "*"
)

// syscallPrefix names the syscall wrappers of x86-64
// (CONFIG_ARCH_HAS_SYSCALL_WRAPPER), the functions Tetragon hooks too:
// __x64_sys_openat(const struct pt_regs *regs) is what the syscall table
// calls, regs holding the syscall's arguments.
const syscallPrefix = "__x64_sys_"

// syscallEntries are the syscalls of syscall_64.tbl whose entry point is
// not sys_<name>. The functions of their own names serve the 32-bit ABI: a
// probe there would never see the 64-bit call.
var syscallEntries = map[string]string{
	"stat": "newstat", "fstat": "newfstat", "lstat": "newlstat",
	"uname": "newuname", "umount2": "umount", "sendfile": "sendfile64",
}

// syscallWrapper is the function that serves the 64-bit syscall name.
func syscallWrapper(name string) string {
	if entry, ok := syscallEntries[name]; ok {
		return syscallPrefix + entry
	}
	return syscallPrefix + name
}

// syscallWrappers are the syscall wrappers of the running kernel, read once
// from /proc/kallsyms: a syscall the kernel lacks (not built, or removed)
// has none.
var syscallWrappers = sync.OnceValues(func() (map[string]bool, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("listing the kernel's syscall functions: %w", err)
	}
	defer f.Close()
	have := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "ffffffff816b7900 T __x64_sys_openat"
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && strings.HasPrefix(fields[2], syscallPrefix) {
			have[fields[2]] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("listing the kernel's syscall functions: %w", err)
	}
	return have, nil
})

// syscallSupport is what the kernel offers syscall hooks besides the raw
// syscall tracepoints, which every kernel Vigil loads on has.
type syscallSupport struct {
	kprobe, kprobeMulti, fentry bool
	// fmodRet is nil where fmod_ret loads on syscall wrappers (Override).
	fmodRet error
}

// syscallSupport probes, on first use, what this sensor can attach syscall
// hooks with. The caller holds s.hooks.mu.
func (s *Sensor) syscallSupport() syscallSupport {
	if s.syscalls != nil {
		return *s.syscalls
	}
	var k syscallSupport
	if !s.syscallTracepoints {
		k.kprobe = probePMU("kprobe") == nil
		// As probeCollection decides whether to load the programs.
		k.kprobeMulti = k.kprobe && features.HaveBPFLinkKprobeMulti() == nil
		if !k.kprobe || s.preferFentry {
			k.fentry = probeTracing(ebpf.AttachTraceFEntry, syscallWrapper("openat")) == nil
		}
		k.fmodRet = probeTracing(ebpf.AttachModifyReturn, syscallWrapper("openat"))
	} else {
		k.fmodRet = errors.New("the sensor was told to use the raw syscall tracepoints, which cannot change a return value")
	}
	s.syscalls = &k
	return k
}

// syscallMechanism picks how a syscall hook attaches: kprobe.multi, else
// single kprobes, else fentry, else the raw syscall tracepoints; fentry
// first with preferFentry. fentry serves hooks that report at entry only
// (Vigil has no fexit program).
func syscallMechanism(k syscallSupport, preferFentry, atReturn bool) string {
	switch {
	case k.fentry && !atReturn && (preferFentry || !k.kprobe):
		return SyscallFentry
	case k.kprobe && k.kprobeMulti:
		return SyscallKprobeMulti
	case k.kprobe:
		return SyscallKprobe
	}
	return SyscallTracepoints
}

// syscallSymbols resolves a syscall hook's calls to the wrapper functions
// it attaches to. A syscall this kernel has no wrapper for is refused,
// naming it, unless the hook ignores missing calls (ignore.callNotFound).
func syscallSymbols(h *policy.Hook) ([]string, error) {
	have, err := syscallWrappers()
	if err != nil {
		return nil, fmt.Errorf("%s.call: %w", h.Path, err)
	}
	var syms []string
	for _, name := range h.Calls {
		sym := syscallWrapper(name)
		if slices.Contains(syms, sym) {
			continue
		}
		if !have[sym] {
			if h.IgnoreNotFound {
				continue
			}
			return nil, fmt.Errorf("%s.call: %q: this kernel has no %s, it does not implement the syscall: %w", h.Path, name, sym, ErrMissingFeature)
		}
		syms = append(syms, sym)
	}
	return syms, nil
}

// attachSyscallWrappers attaches a syscall hook to the wrapper functions
// of its calls (ih.symbols) with the mechanism chosen at install
// (ih.Mechanism). On error nothing stays attached.
func (s *Sensor) attachSyscallWrappers(ih *InstalledHook, coll *ebpf.Collection) error {
	if len(ih.symbols) == 0 {
		ih.Mechanism = MechanismNotFound // every call missing and ignored
		return nil
	}
	switch ih.Mechanism {
	case SyscallFentry:
		for _, sym := range ih.symbols {
			if err := s.attachFentry(ih, sym); err != nil {
				return err
			}
		}
		return nil
	case SyscallFmodRet:
		for _, sym := range ih.symbols {
			if err := s.attachFmodRet(ih, sym); err != nil {
				return err
			}
		}
		return nil
	}
	got, err := attachKprobeLinks(ih, coll, ih.symbols)
	switch got {
	case "kprobe.multi":
		ih.Mechanism = SyscallKprobeMulti
	case "kprobe":
		ih.Mechanism = SyscallKprobe
	}
	return err
}
