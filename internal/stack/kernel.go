// Package stack names the frames of the stack traces policy hooks capture
// (Post kernelStackTrace and userStackTrace): kernel addresses with
// /proc/kallsyms, user addresses with the process's mappings and the ELF
// symbol tables of the files mapped.
package stack

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Frame is one return address of a stack, named as far as it can be.
type Frame struct {
	Address uint64
	// Symbol is the function the address is in; "" when none is known.
	Symbol string
	// Offset is the address's offset from Symbol.
	Offset uint64
	// Module is a kernel module ("" for the kernel itself, "bpf" for BPF
	// programs), or the file a user address is mapped from ("" when the
	// address is in no file: the process is gone, or the memory is
	// anonymous, as JIT code is).
	Module string
	// ModuleOffset is a user address's offset in Module's file: what
	// addr2line and tetra take.
	ModuleOffset uint64
}

type ksym struct {
	addr   uint64
	name   string
	module string
}

// kernelRefresh is how old the kernel's table may be when a stack comes
// before it is read again, in the background: modules loaded since then
// get their names, and until then their frames may take the name of the
// symbol before them.
const kernelRefresh = time.Minute

// Kernel names kernel addresses from a kallsyms file, read on first use and
// again in the background when older than a minute. It is safe for
// concurrent use.
type Kernel struct {
	path string

	mu        sync.Mutex
	syms      []ksym
	err       error
	read      time.Time
	reloading bool
}

// NewKernel returns a symbolizer reading path, normally /proc/kallsyms.
// Addresses in it are only real for a reader with CAP_SYSLOG (else all
// are 0, and frames keep their address alone).
func NewKernel(path string) *Kernel { return &Kernel{path: path} }

// table returns the symbols, reading them the first time and starting a
// reread when they are old.
func (k *Kernel) table() ([]ksym, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.read.IsZero() {
		k.syms, k.err = loadKallsyms(k.path)
		k.read = time.Now()
	} else if time.Since(k.read) > kernelRefresh && !k.reloading {
		k.reloading = true
		go func() {
			syms, err := loadKallsyms(k.path)
			k.mu.Lock()
			defer k.mu.Unlock()
			if err == nil {
				k.syms, k.err = syms, nil
			}
			k.read, k.reloading = time.Now(), false
		}()
	}
	return k.syms, k.err
}

func loadKallsyms(path string) ([]ksym, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kernel symbols: %w", err)
	}
	defer f.Close()
	syms, err := readKallsyms(f)
	if err != nil {
		return nil, fmt.Errorf("kernel symbols: %s: %w", path, err)
	}
	return syms, nil
}

// readKallsyms keeps the text symbols ("ffffffff81000000 T _text", with
// "\t[module]" after a module's), sorted by address.
func readKallsyms(r io.Reader) ([]ksym, error) {
	var syms []ksym
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || len(f[1]) != 1 || !strings.ContainsAny(f[1], "tTwW") {
			continue
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", f[0], err)
		}
		if addr == 0 {
			// Hidden by kptr_restrict: no address can be named.
			continue
		}
		s := ksym{addr: addr, name: f[2]}
		if len(f) > 3 {
			s.module = strings.Trim(f[3], "[]")
		}
		syms = append(syms, s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	slices.SortStableFunc(syms, func(a, b ksym) int {
		switch {
		case a.addr < b.addr:
			return -1
		case a.addr > b.addr:
			return 1
		}
		return 0
	})
	return syms, nil
}

// Frames names the addresses of a kernel stack, innermost first. Without
// a symbol table (unreadable, or addresses hidden) the frames keep their
// addresses alone; Err says why.
//
// A stack taken by a BPF program starts in that program: the frames of
// the machinery that ran it (the program, its trampoline, the tracepoint's
// BPF glue) are dropped, so the stack starts where the hook is, as a
// kprobe's does.
func (k *Kernel) Frames(addrs []uint64) []Frame {
	syms, _ := k.table()
	frames := make([]Frame, len(addrs))
	for i, a := range addrs {
		frames[i] = Frame{Address: a}
		s, ok := lookupKernel(syms, lookupAddr(i, a))
		if ok {
			frames[i].Symbol, frames[i].Offset, frames[i].Module = s.name, a-s.addr, s.module
		}
	}
	for len(frames) > 1 && bpfMachinery(frames[0]) {
		frames = frames[1:]
	}
	return frames
}

// bpfMachinery reports whether a frame is BPF's own: a program or
// trampoline (module "bpf" in kallsyms), the ftrace trampoline that calls
// an fentry program's, or the code that calls programs from tracepoints
// (raw ones, and the perf handlers of classic ones).
func bpfMachinery(f Frame) bool {
	if f.Module == "bpf" {
		return true
	}
	for _, p := range []string{"bpf_prog_", "bpf_trace_run", "__bpf_trace_", "__traceiter_", "trace_call_bpf",
		"perf_trace_", "perf_syscall_enter", "perf_syscall_exit", "ftrace_trampoline"} {
		if strings.HasPrefix(f.Symbol, p) {
			return true
		}
	}
	return false
}

// Err is why kernel addresses cannot be named, nil when they can.
func (k *Kernel) Err() error {
	syms, err := k.table()
	if err == nil && len(syms) == 0 {
		return fmt.Errorf("kernel symbols: %s has no addresses (kptr_restrict)", k.path)
	}
	return err
}

func lookupKernel(syms []ksym, addr uint64) (ksym, bool) {
	i, found := slices.BinarySearchFunc(syms, addr, func(s ksym, a uint64) int {
		switch {
		case s.addr < a:
			return -1
		case s.addr > a:
			return 1
		}
		return 0
	})
	if !found {
		i--
	}
	if i < 0 {
		return ksym{}, false
	}
	// Several names can share an address (_text, _stext): any is right.
	return syms[i], true
}

// lookupAddr is the address to name frame i by. Every frame but the
// innermost is a return address, the instruction after a call: a call that
// ends its function (one that never returns) returns to the next
// function's first byte, so such frames are named one byte earlier.
func lookupAddr(i int, addr uint64) uint64 {
	if i > 0 && addr > 0 {
		return addr - 1
	}
	return addr
}
