package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cilium/ebpf"

	"github.com/vigilsec/vigil/internal/policy"
)

// The openat table: what Vigil's policy engine costs a syscall it hooks.
// Modes, in the order of a round.
const (
	openatNone    = "none"          // no agent
	openatFloor   = "floor"         // an empty BPF program on sys_enter
	openatNoMatch = "vigil-nomatch" // a policy on openat that matches nothing
	openatCount   = "vigil-count"   // a policy that matches and counts every call, posting none
	openatMatch   = "vigil-match"   // a policy that matches and posts every call
	// The same, its events to the debug exporter, which logs one line per
	// batch: what reaches an exporter, without the file exporter's
	// encoding and writing.
	openatMatchDebug = "vigil-match-debug"
)

var allOpenatModes = []string{openatNone, openatFloor, openatNoMatch, openatCount, openatMatch, openatMatchDebug}

// posts reports whether the mode's policy posts every call.
func posts(mode string) bool { return mode == openatMatch || mode == openatMatchDebug }

// Vigil's programs on the raw syscall tracepoints, by kernel name (15 bytes).
const (
	vigilSysEnter = "vigil_sys_enter"
	vigilSysExit  = "vigil_sys_exit"
)

// openatOptions configures the openat table.
type openatOptions struct {
	n, rounds    int
	modes        []string
	config       string
	policies     string // the directory of the modes' policy files
	drainTimeout time.Duration
	ringMiB      int

	// Filled in by check.
	policyFile map[string]string // mode -> absolute path
	policyName map[string]string
}

// policyFiles are the modes' policies, in openatOptions.policies.
var policyFiles = map[string]string{
	openatNoMatch:    "openat-nomatch.yaml",
	openatCount:      "openat-count.yaml",
	openatMatch:      "openat-match.yaml",
	openatMatchDebug: "openat-match.yaml",
}

func (oo *openatOptions) check(o *options) error {
	if oo.n < 1 || oo.rounds < 1 {
		return errors.New("-openat-n and -openat-rounds must be at least 1")
	}
	if n := oo.ringMiB; n < 1 || n > 1024 || n&(n-1) != 0 {
		return fmt.Errorf("-openat-ring-buffer-mib: a power of two from 1 to 1024, got %d", n)
	}
	oo.policyFile, oo.policyName = map[string]string{}, map[string]string{}
	for _, m := range oo.modes {
		switch m {
		case openatNone, openatFloor:
		case openatNoMatch, openatCount, openatMatch, openatMatchDebug:
			if _, err := os.Stat(o.agentBin); err != nil {
				return fmt.Errorf("%s not found: run `make dist` first (or pass -agent)", o.agentBin)
			}
			if _, err := os.Stat(oo.config); err != nil {
				return fmt.Errorf("-openat-config: %w", err)
			}
			file, err := filepath.Abs(filepath.Join(oo.policies, policyFiles[m]))
			if err != nil {
				return err
			}
			// Refused here with the reason rather than by the collector.
			ps, err := policy.ParseFile(file)
			if err == nil && len(ps) != 1 {
				err = fmt.Errorf("%d policies, want one", len(ps))
			}
			if err == nil {
				_, err = policy.Load(ps[0])
			}
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			oo.policyFile[m], oo.policyName[m] = file, ps[0].Metadata.Name
		default:
			return fmt.Errorf("-openat-modes: unknown mode %q (want %s)", m, strings.Join(allOpenatModes, ", "))
		}
	}
	if _, err := os.Lstat(filepath.Dir(openatPath)); err == nil {
		return fmt.Errorf("%s exists: the openat loop opens a path in it that must not exist (remove it)", filepath.Dir(openatPath))
	}
	return nil
}

// openatResult is one mode's measurements in one round.
type openatResult struct {
	wall time.Duration // the loop, as the loop's process measured it
	// loopCPU is the CPU time of the loop's process during the loop: less
	// than wall when it waited for a CPU.
	loopCPU time.Duration
	// irqWork is how many IRQ work interrupts the host took during the
	// loop (a ring buffer's forced wakeup of its reader is one).
	irqWork uint64
	// enter and exit are the run time and count of the sys_enter and
	// sys_exit programs (floor: its one program) during the loop.
	enter, exit runs
	bpf         bool // enter and exit were measured
	agent       bool
	// received is how many of the loop's calls reached the exporter as
	// events; span is from the loop's start until the last of them did.
	received int
	span     time.Duration
	emitted  int64            // vigil_events_total{process.kprobe}; -1 unknown
	counted  int64            // vigil_policy_counts_total of the mode's policy; -1 unknown
	lost     map[string]int64 // vigil_events_lost_total by reason; nil unknown
	cpu      time.Duration    // the collector's, from the loop's start until drained
	mem      memory           // the collector's, after the drain
}

func (r openatResult) eventsPerSecond() float64 {
	if r.span <= 0 {
		return 0
	}
	return float64(r.received) / r.span.Seconds()
}

func (r openatResult) lostTotal() int64 {
	if r.lost == nil {
		return -1
	}
	var n int64
	for _, v := range r.lost {
		n += v
	}
	return n
}

func (r openatResult) summary(mode string, n int) string {
	s := fmt.Sprintf("%6.0f ms, %4.0f ns/openat (on CPU %.0f%%, %.2f irq_work/openat)", ms(r.wall), float64(r.wall)/float64(n),
		100*float64(r.loopCPU)/float64(r.wall), float64(r.irqWork)/float64(n))
	if r.bpf {
		s += fmt.Sprintf(", BPF sys_enter %s ns/run over %.2f runs/openat", nsString(r.enter.perRun()), float64(r.enter.count)/float64(n))
		if mode != openatFloor {
			s += fmt.Sprintf(", sys_exit %s ns/run", exitString(r.exit.perRun()))
		}
	}
	if r.agent {
		s += fmt.Sprintf(", %d/%d events received", r.received, n)
		if r.received > 0 {
			s += fmt.Sprintf(" in %v (%.0f/s)", r.span.Round(time.Millisecond), r.eventsPerSecond())
		}
		s += fmt.Sprintf(", receiver emitted %d, counted %d, lost %v, collector CPU %v, RSS %.1f MB",
			r.emitted, r.counted, r.lost, r.cpu, mb(r.mem.peak))
	}
	return s
}

// runOpenatTable runs every round of the openat table and prints it.
func runOpenatTable(ctx context.Context, o options, host string, dir string) error {
	oo := o.openat
	// Warm up the path lookup and the loop's binary.
	if l, err := startOpenatLoop(max(oo.n/10, 1000)); err != nil {
		return err
	} else if _, _, err := l.run(); err != nil {
		return err
	}
	results := map[string][]openatResult{}
	for round := 1; round <= oo.rounds; round++ {
		for _, mode := range oo.modes {
			if err := ctx.Err(); err != nil {
				return err
			}
			r, err := runOpenatRound(ctx, o, mode, round, dir)
			if err != nil {
				return fmt.Errorf("openat round %d, %s: %w", round, mode, err)
			}
			fmt.Fprintf(os.Stderr, "bench: openat round %d/%d %-13s %s\n", round, oo.rounds, mode, r.summary(mode, oo.n))
			results[mode] = append(results[mode], r)
		}
	}
	printOpenatReport(os.Stdout, o, host, results)
	return nil
}

func runOpenatRound(ctx context.Context, o options, mode string, round int, dir string) (openatResult, error) {
	oo := o.openat
	var (
		a           *openatVigil
		enter, exit []ebpf.ProgramID
	)
	switch mode {
	case openatFloor:
		f, err := attachFloor()
		if err != nil {
			return openatResult{}, err
		}
		defer f.Close()
		id, err := f.id()
		if err != nil {
			return openatResult{}, err
		}
		enter = []ebpf.ProgramID{id}
	case openatNoMatch, openatCount, openatMatch, openatMatchDebug:
		a = &openatVigil{bin: o.agentBin, config: oo.config, policyFile: oo.policyFile[mode],
			policyName: oo.policyName[mode], ringBuffer: oo.ringMiB << 20, readyTimeout: o.readyTimeout,
			exporter: "file", want: oo.n, counts: mode == openatCount}
		if mode == openatMatchDebug {
			a.exporter = "debug"
		}
		if err := a.start(ctx, dir, mode, round); err != nil {
			return openatResult{}, err
		}
		defer a.kill()
		var err error
		if enter, err = programsNamed(a.pid(), vigilSysEnter); err == nil {
			exit, err = programsNamed(a.pid(), vigilSysExit)
		}
		if err != nil {
			return openatResult{}, err
		}
		if len(enter) == 0 {
			return openatResult{}, fmt.Errorf("vigil holds no %s program: the policy's syscall hook is not attached; its log:%s", vigilSysEnter, tail(a.log, 15))
		}
	}
	if n := otherAttached(vigilSysEnter, enter); n > 0 {
		fmt.Fprintf(os.Stderr, "bench: warning: %d other %s program(s) attached on this host (another Vigil?): every mode pays for them\n", n, vigilSysEnter)
	}
	time.Sleep(o.settle)

	// The loop's process starts before the measurements: only the loop
	// is in them.
	loop, err := startOpenatLoop(oo.n)
	if err != nil {
		return openatResult{}, err
	}
	defer loop.kill()
	measure := o.bpfStats && len(enter) > 0
	var e0, x0 bpfSnapshot
	if measure {
		if e0, err = snapshotPrograms(enter); err == nil {
			x0, err = snapshotPrograms(exit)
		}
		if err != nil {
			return openatResult{}, err
		}
	}
	var cpu0 time.Duration
	if a != nil {
		if cpu0, err = cpuTime(a.pid()); err != nil {
			return openatResult{}, err
		}
	}
	iwi0 := irqWorkInterrupts()
	start := time.Now()
	wall, loopCPU, err := loop.run()
	if err != nil {
		return openatResult{}, err
	}
	r := openatResult{wall: wall, loopCPU: loopCPU, irqWork: irqWorkInterrupts() - iwi0, bpf: measure}
	if measure {
		e1, err := snapshotPrograms(enter)
		if err != nil {
			return openatResult{}, err
		}
		x1, err := snapshotPrograms(exit)
		if err != nil {
			return openatResult{}, err
		}
		r.enter, r.exit = runsBetween(e0, e1), runsBetween(x0, x1)
	}
	if a == nil {
		return r, nil
	}
	r.agent = true
	if err := a.drain(ctx, posts(mode), oo.drainTimeout); err != nil {
		return openatResult{}, err
	}
	cpu1, err := cpuTime(a.pid())
	if err != nil {
		return openatResult{}, err
	}
	r.cpu = cpu1 - cpu0
	if r.mem, err = memoryOf(a.pid()); err != nil {
		return openatResult{}, err
	}
	if err := a.finish(ctx, loop.pid(), start, &r); err != nil {
		return openatResult{}, err
	}
	if !o.keep {
		os.Remove(a.events)
	}
	return r, nil
}
