package kernel

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/vigilsec/vigil/internal/policy"
)

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
	have, err := kallsyms(func(name string) bool { return strings.HasPrefix(name, syscallPrefix) })
	if err != nil {
		return nil, fmt.Errorf("listing the kernel's syscall functions: %w", err)
	}
	return have, nil
})

// kallsyms returns the symbols of /proc/kallsyms that keep accepts.
func kallsyms(keep func(name string) bool) (map[string]bool, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	have := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "ffffffff816b7900 T __x64_sys_openat", and a module's name
		// after a module's symbol
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && keep(fields[2]) {
			have[fields[2]] = true
		}
	}
	return have, sc.Err()
}

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
		// The kprobe programs find their hook by the attach cookie, the
		// trampoline ones read arguments with bpf_get_func_arg: before
		// 5.15 and 5.17 syscall hooks take the raw tracepoints.
		k.kprobe = probePMU("kprobe") == nil && haveCookie() == nil
		// As probeCollection decides whether to load the programs.
		k.kprobeMulti = k.kprobe && features.HaveBPFLinkKprobeMulti() == nil
		if !k.kprobe || s.preferFentry {
			k.fentry = probeTracing(ebpf.AttachTraceFEntry, syscallWrapper("openat")) == nil && probeFuncArgs() == nil
		}
		k.fmodRet = probeTracing(ebpf.AttachModifyReturn, syscallWrapper("openat"))
		if k.fmodRet == nil {
			k.fmodRet = probeFuncArgs()
		}
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
func (s *Sensor) attachSyscallWrappers(ih *InstalledHook, progs *probePrograms) error {
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
		program := "vigil_fmod_ret"
		if ih.Hook.Enforcer {
			program = "vigil_enforcer"
		}
		for _, sym := range ih.symbols {
			if err := s.attachFmodRet(ih, program, sym); err != nil {
				return err
			}
		}
		return nil
	}
	got, err := attachKprobeLinks(ih, progs, ih.symbols)
	switch got {
	case "kprobe.multi":
		ih.Mechanism = SyscallKprobeMulti
	case "kprobe":
		ih.Mechanism = SyscallKprobe
	}
	return err
}

// syscallKind attaches kprobes with syscall: true: on the syscall's wrapper
// function where the kernel has kprobes or fentry, else through
// syscall_hooks on the raw syscall tracepoints (syscallMechanism).
type syscallKind struct{}

func (syscallKind) ownProbes() bool { return false }

func (syscallKind) attachable(s *Sensor, h *policy.Hook) error {
	if err := s.syscallSupport().fmodRet; h.Enforcer && err != nil {
		return fmt.Errorf("%s: an enforcer fails calls with fmod_ret on their functions (%s*), which needs the kernel's error injection list (CONFIG_FUNCTION_ERROR_INJECTION): %w: %w", h.Path, syscallPrefix, ErrMissingFeature, err)
	}
	if err := s.syscallSupport().fmodRet; hasOverride(h) && err != nil {
		return fmt.Errorf("%s: Override on a syscall needs fmod_ret on its function (%s*), which needs the kernel's error injection list (CONFIG_FUNCTION_ERROR_INJECTION): %w: %w", h.Path, syscallPrefix, ErrMissingFeature, err)
	}
	return nil
}

func (syscallKind) attach(s *Sensor, ih *InstalledHook) error {
	progs, err := s.probeCollection()
	if err != nil {
		return err
	}
	return s.attachSyscallWrappers(ih, progs)
}

func (syscallKind) mechanisms(fs Features) []HookMechanism {
	// As a sensor picks it at install (syscallMechanism); the raw
	// tracepoints with the process sensor's mechanism.
	sysTP := fs.tracepointMechanism() + " sys_enter/sys_exit, by syscall number"
	syscalls := HookMechanism{Hook: "kprobes (syscall: true)", Mechanism: sysTP}
	switch m := syscallMechanism(syscallSupport{
		kprobe:      fs.Has(FeatureKprobe) && fs.Has(FeatureAttachCookie),
		kprobeMulti: fs.Has(FeatureKprobeMulti),
		fentry:      fs.Has(FeatureFentry) && fs.Has(FeatureFuncArgs),
	}, false, false); m {
	case SyscallFentry:
		syscalls.Mechanism = m + " (at return: " + sysTP + ")"
	case SyscallKprobeMulti, SyscallKprobe:
		syscalls.Mechanism = m
	}
	override := HookMechanism{Hook: "Override (syscall: true)", Mechanism: SyscallFmodRet}
	if !fs.Has(FeatureSyscallFmodRet) {
		override = HookMechanism{Hook: override.Hook, Err: errors.New("needs fmod_ret on syscall functions: trampolines, and the kernel's error injection list (CONFIG_FUNCTION_ERROR_INJECTION)")}
	}
	return []HookMechanism{syscalls, override}
}
