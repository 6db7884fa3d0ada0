package kernel

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/vigilsec/vigil/internal/policy"
	"golang.org/x/sys/unix"
)

func hasOverride(h *policy.Hook) bool {
	for _, sel := range h.Selectors {
		if sel.Override {
			return true
		}
	}
	return false
}

// attachKprobes attaches a kprobe hook: with kprobe.multi (Linux 5.18, and
// a kernel with fprobe) where the kernel has it, else one kprobe per
// function. Mechanism says which.
func (s *Sensor) attachKprobes(ih *InstalledHook, progs *probePrograms) error {
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
				if err := s.attachFmodRet(ih, "vigil_fmod_ret", h.Calls[0]); err != nil {
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
	fns := h.Calls
	if len(fns) > 1 && h.IgnoreNotFound {
		// kprobe.multi refuses a list with one missing function; the
		// others are attached without it.
		have, err := kernelFunctions(fns)
		if err != nil {
			return fmt.Errorf("%s.call: %w", h.Path, err)
		}
		fns = slices.DeleteFunc(slices.Clone(fns), func(fn string) bool { return !have[fn] })
		if len(fns) == 0 {
			ih.Mechanism = MechanismNotFound
			return nil
		}
	}
	mechanism, err := attachKprobeLinks(ih, progs, fns)
	if err == nil {
		ih.Mechanism = cmp.Or(mechanism, MechanismNotFound)
	}
	return err
}

// kernelFunctions reports which of fns the running kernel has, from
// /proc/kallsyms.
func kernelFunctions(fns []string) (map[string]bool, error) {
	want := map[string]bool{}
	for _, fn := range fns {
		want[fn] = true
	}
	have, err := kallsyms(func(name string) bool { return want[name] })
	if err != nil {
		return nil, fmt.Errorf("listing the kernel's functions: %w", err)
	}
	return have, nil
}

// ftraceFunctions returns the kernel functions that kprobes can attach to
// (tracefs's available_filter_functions) whose names pattern matches, as
// Tetragon fills a generated_ftrace list. A module's functions carry its
// name after theirs, which is dropped; a name listed twice (a static
// function of two files) is kept once.
func ftraceFunctions(pattern string) ([]string, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	if err := ensureMounted("tracefs", unix.TRACEFS_MAGIC, tracefsRoot); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(tracefsRoot, "available_filter_functions"))
	if err != nil {
		return nil, fmt.Errorf("listing the functions kprobes can attach to: %w", err)
	}
	defer f.Close()
	seen := map[string]bool{}
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "vfs_read", or "nf_conntrack_in [nf_conntrack]"
		name, _, _ := strings.Cut(sc.Text(), " ")
		if re.MatchString(name) && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("listing the functions kprobes can attach to: %w", err)
	}
	return out, nil
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
func attachKprobeLinks(ih *InstalledHook, progs *probePrograms, fns []string) (string, error) {
	h := ih.Hook
	// The cookie's upper half is the function's index among the hook's
	// calls, which the record reports (bpf/probes.h); syscall wrappers
	// are not among them and read the syscall's number instead.
	cookieOf := func(fn string) uint64 {
		return uint64(ih.slot) | uint64(max(slices.Index(h.Calls, fn), 0))<<32
	}
	if multi := progs.multi; multi != nil && !h.NoKprobeMulti {
		cookies := make([]uint64, len(fns))
		for i, fn := range fns {
			cookies[i] = cookieOf(fn)
		}
		opts := link.KprobeMultiOptions{Symbols: fns, Cookies: cookies}
		l, err := link.KprobeMulti(multi.KprobeMulti, opts)
		if err == nil && h.Return {
			ih.links = append(ih.links, l)
			l, err = link.KretprobeMulti(multi.KretprobeMulti, opts)
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
		cookie := cookieOf(fn)
		l, err := link.Kprobe(fn, progs.Kprobe, &link.KprobeOptions{Cookie: cookie})
		if err == nil {
			ih.links = append(ih.links, l)
			if h.Return {
				l, err = link.Kretprobe(fn, progs.Kretprobe, &link.KprobeOptions{Cookie: cookie})
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

// kprobeKind attaches kprobes on kernel functions: fentry for a single
// function at entry where kprobes are missing (or preferred), fmod_ret for
// Override on a security_* function, else kprobe.multi or single kprobes.
type kprobeKind struct{}

func (kprobeKind) ownProbes() bool { return true }

func (kprobeKind) attachable(_ *Sensor, h *policy.Hook) error {
	if h.Fentry {
		if !Probe().Has(FeatureFentry) {
			return fmt.Errorf("%s: fentries need fentry and fexit programs, which this kernel refuses or lacks: %w", h.Path, ErrMissingFeature)
		}
		return needFuncArgs(h, "fentry and fexit programs")
	}
	if hasOverride(h) {
		// Override on a kernel function is fmod_ret, a trampoline.
		if err := needFuncArgs(h, "fmod_ret programs (Override)"); err != nil {
			return err
		}
	}
	kprobes := probePMU("kprobe")
	if kprobes == nil {
		kprobes = haveCookie()
	}
	fentry := !h.Return && !hasOverride(h) && len(h.Calls) == 1 && Probe().Has(FeatureFentry) && probeFuncArgs() == nil
	if kprobes != nil && !fentry {
		return fmt.Errorf("%s.call: kprobes are not available on this kernel (they need the kprobe perf event source and bpf_get_attach_cookie, Linux 5.15): %w: %w", h.Path, ErrMissingFeature, kprobes)
	}
	return nil
}

func (kprobeKind) attach(s *Sensor, ih *InstalledHook) error {
	if ih.Hook.Fentry {
		return s.attachFentries(ih)
	}
	progs, err := s.probeCollection()
	if err != nil {
		return err
	}
	return s.attachKprobes(ih, progs)
}

func (kprobeKind) mechanisms(fs Features) []HookMechanism {
	const hook = "kprobes (kernel functions)"
	kprobes := HookMechanism{Hook: hook, Mechanism: "kprobe"}
	if fs.Has(FeatureKprobeMulti) {
		kprobes.Mechanism = "kprobe.multi"
	}
	if !fs.Has(FeatureKprobe) {
		kprobes = missing(hook, FeatureKprobe)
	} else if !fs.Has(FeatureAttachCookie) {
		kprobes = missing(hook, FeatureAttachCookie)
	}
	override := HookMechanism{Hook: "Override (security_*)", Mechanism: "fmod_ret"}
	if !fs.Has(FeatureFentry) {
		override = HookMechanism{Hook: override.Hook, Err: errors.New("needs fmod_ret (a trampoline program), which this kernel refuses or lacks")}
	} else if !fs.Has(FeatureFuncArgs) {
		override = missing(override.Hook, FeatureFuncArgs)
	}
	return []HookMechanism{kprobes, override}
}
