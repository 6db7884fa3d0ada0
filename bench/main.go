// Command bench measures what Vigil costs, in two tables. exec: a
// fork+exec+wait loop of /bin/true with no agent, under otelcol-vigil and
// under bpftrace. openat: an openat loop with no agent, under an empty BPF
// program on the same hook, and under otelcol-vigil with a policy that
// matches nothing and with one that posts every call. Each table interleaves
// its modes over several rounds and shows medians, with the stage's goals
// beneath it. It is a benchmark, not a test: it exits 0 whether or not the
// goals are met, and non-zero only when something could not run. Run it as
// root from the repository root (`make bench`); see bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
)

type options struct {
	n, rounds    int
	modes        []string
	agentBin     string
	config       string
	bpftraceBin  string
	workload     string
	settle       time.Duration
	readyTimeout time.Duration
	drainTimeout time.Duration
	keep         bool
	bpfStats     bool
	workloadName string
	bpftracePath string

	tables []string
	openat openatOptions
	noise  noiseOptions
}

var (
	allModes  = []string{"none", "vigil", "bpftrace"}
	allTables = []string{"exec", "openat", "noise"}
)

func (o *options) table(name string) bool { return slices.Contains(o.tables, name) }

func main() {
	if len(os.Args) > 1 && os.Args[1] == withTracefs {
		err := execWithTracefs(os.Args[2:])
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	if len(os.Args) > 1 && os.Args[1] == openatLoopCmd {
		if err := openatLoopMain(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	var o options
	var modes, tables, openatModes string
	flag.StringVar(&tables, "tables", "exec,openat", "tables to run, in this order: exec (fork+exec loop), openat (policy engine), noise (the detection library's alerts, idle and busy)")
	flag.IntVar(&o.n, "n", 5000, "fork+exec+wait iterations per round")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of every mode, interleaved; the table shows medians")
	flag.StringVar(&modes, "modes", strings.Join(allModes, ","), "modes to run, in this order within a round: none, vigil, bpftrace")
	flag.StringVar(&o.agentBin, "agent", "bin/otelcol-vigil", "the otelcol-vigil binary (`make dist` builds it)")
	flag.StringVar(&o.config, "config", "bench/config.yaml", "the collector configuration for the vigil mode")
	flag.StringVar(&o.bpftraceBin, "bpftrace", "bpftrace", "the bpftrace binary")
	flag.StringVar(&o.workload, "workload", "/bin/true", "the binary the loop runs")
	flag.DurationVar(&o.settle, "settle", time.Second, "pause before each timed loop, once the agent is ready")
	flag.DurationVar(&o.readyTimeout, "ready-timeout", time.Minute, "how long an agent may take to attach")
	flag.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "how long an agent may take to handle the loop's events")
	flag.BoolVar(&o.bpfStats, "bpf-stats", true, "measure the agents' BPF programs' run time (BPF_ENABLE_STATS, for the whole run)")
	flag.BoolVar(&o.keep, "keep", false, "keep the agents' output and logs (the directory is printed)")
	flag.IntVar(&o.openat.n, "openat-n", 1_000_000, "openat table: openat calls per round")
	flag.IntVar(&o.openat.rounds, "openat-rounds", 3, "openat table: rounds of every mode, interleaved; the table shows medians")
	flag.StringVar(&openatModes, "openat-modes", strings.Join(allOpenatModes, ","), "openat table: modes to run, in this order within a round: "+strings.Join(allOpenatModes, ", "))
	flag.StringVar(&o.openat.config, "openat-config", "bench/config-openat.yaml", "openat table: the collector configuration of the vigil modes")
	flag.StringVar(&o.openat.policies, "openat-policies", "bench/policies", "openat table: the directory of the vigil modes' policies ("+policyFiles[openatNoMatch]+", "+policyFiles[openatMatch]+")")
	flag.IntVar(&o.openat.ringMiB, "openat-ring-buffer-mib", 128, "openat table: the receiver's ring_buffer_size in MiB (its default is 8)")
	flag.DurationVar(&o.openat.drainTimeout, "openat-drain-timeout", 2*time.Minute, "openat table: how long the collector may take to export the loop's events")
	flag.StringVar(&o.noise.config, "noise-config", "bench/config-noise.yaml", "noise table: the collector configuration (the detection library on)")
	flag.DurationVar(&o.noise.idle, "noise-idle", 10*time.Minute, "noise table: how long the machine stays idle before the benign workload")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./bench [flags]\n\n"+
			"Prints two tables of medians. exec: a fork+exec+wait loop with no agent,\n"+
			"under otelcol-vigil and under bpftrace. openat: an openat loop with no\n"+
			"agent, under an empty BPF program on sys_enter, and under otelcol-vigil\n"+
			"with a policy that matches nothing and one that posts every call.\n"+
			"Needs root.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	o.modes = strings.Split(modes, ",")
	o.tables = strings.Split(tables, ",")
	o.openat.modes = strings.Split(openatModes, ",")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func (o *options) check() error {
	for _, t := range o.tables {
		if !slices.Contains(allTables, t) {
			return fmt.Errorf("-tables: unknown table %q (want %s)", t, strings.Join(allTables, ", "))
		}
	}
	if o.table("openat") {
		if err := o.openat.check(o); err != nil {
			return err
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("loading BPF programs needs root: run `sudo make bench`")
	}
	if !o.table("exec") {
		return nil
	}
	if o.n < 1 || o.rounds < 1 {
		return errors.New("-n and -rounds must be at least 1")
	}
	for _, m := range o.modes {
		switch m {
		case "none":
		case "vigil":
			if _, err := os.Stat(o.agentBin); err != nil {
				return fmt.Errorf("%s not found: run `make dist` first (or pass -agent)", o.agentBin)
			}
			if _, err := os.Stat(o.config); err != nil {
				return fmt.Errorf("collector config: %w", err)
			}
		case "bpftrace":
			p, err := exec.LookPath(o.bpftraceBin)
			if err != nil {
				return fmt.Errorf("%s not found: run `scripts/install-deps.sh bench` (or pass -bpftrace, or leave bpftrace out of -modes)", o.bpftraceBin)
			}
			o.bpftracePath = p
		default:
			return fmt.Errorf("-modes: unknown mode %q (want %s)", m, strings.Join(allModes, ", "))
		}
	}
	// The agents match the workload's execs by pid and by the base name of
	// the binary, which is the same whichever symlink the kernel resolved.
	resolved, err := filepath.EvalSymlinks(o.workload)
	if err != nil {
		return fmt.Errorf("-workload: %w", err)
	}
	o.workloadName = filepath.Base(resolved)
	if filepath.Base(o.workload) != o.workloadName {
		return fmt.Errorf("-workload: %s resolves to %s: pass a binary whose name is its own", o.workload, resolved)
	}
	return nil
}

func (o *options) newAgent(mode string) agent {
	switch mode {
	case "vigil":
		return &vigilAgent{bin: o.agentBin, config: o.config, workloadName: o.workloadName, readyTimeout: o.readyTimeout}
	case "bpftrace":
		return &bpftraceAgent{bin: o.bpftracePath, workloadName: o.workloadName, readyTimeout: o.readyTimeout}
	}
	return nil
}

func run(ctx context.Context, o options) error {
	if err := o.check(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vigil-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintf(os.Stderr, "bench: agents' output and logs in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	if o.bpfStats {
		stats, err := enableBPFStats()
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: no BPF run time column: enabling BPF stats: %v\n", err)
			o.bpfStats = false
		} else {
			defer stats.Close()
		}
	}

	for _, t := range o.tables {
		host := fmt.Sprintf("kernel %s, %d CPUs, load average %s at start", kernelRelease(), runtime.NumCPU(), loadAverage())
		switch t {
		case "exec":
			err = runExecTable(ctx, o, host, dir)
		case "openat":
			err = runOpenatTable(ctx, o, host, dir)
		case "noise":
			err = runNoiseTable(ctx, o, host, dir)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// runExecTable runs every round of the exec table and prints it.
func runExecTable(ctx context.Context, o options, host, dir string) error {
	w, err := newWorkload(o.workload)
	if err != nil {
		return err
	}
	// Page cache, dentries and the allocator warm up before the first round,
	// so that round 1 of the first mode does not pay for them.
	warm := make([]int, max(o.n/10, 100))
	if _, err := w.run(warm); err != nil {
		return err
	}

	results := map[string][]roundResult{}
	pids := make([]int, o.n)
	for round := 1; round <= o.rounds; round++ {
		for _, mode := range o.modes {
			if err := ctx.Err(); err != nil {
				return err
			}
			r, err := runRound(ctx, o, w, mode, round, dir, pids)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round, mode, err)
			}
			fmt.Fprintf(os.Stderr, "bench: round %d/%d %-8s %s\n", round, o.rounds, mode, r.summary(o.n))
			results[mode] = append(results[mode], r)
		}
	}
	printReport(os.Stdout, o, host, results)
	return nil
}

// roundResult is one mode's measurements in one round.
type roundResult struct {
	wall   time.Duration // the loop
	agent  bool
	cpu    time.Duration // the agent's, from the loop's start until drained
	bpf    time.Duration // the agent's BPF programs per process; -1 unknown
	counts counts
	mem    memory // after the drain
}

func (r roundResult) summary(n int) string {
	s := fmt.Sprintf("%6.0f ms", ms(r.wall))
	if r.agent {
		s += fmt.Sprintf(", agent CPU %v for %d events, BPF %s/process, %d/%d execs seen, agent-reported lost %s, RSS %.1f MB",
			r.cpu, r.counts.events, bpfString(r.bpf), r.counts.seen, n, lostString(r.counts.lost), mb(r.mem.peak))
	}
	return s
}

func runRound(ctx context.Context, o options, w *workload, mode string, round int, dir string, pids []int) (roundResult, error) {
	a := o.newAgent(mode)
	if a == nil {
		time.Sleep(o.settle)
		wall, err := w.run(pids)
		return roundResult{wall: wall}, err
	}
	if err := a.start(ctx, dir, round); err != nil {
		return roundResult{}, err
	}
	defer a.kill()
	time.Sleep(o.settle)

	var (
		progs []ebpf.ProgramID
		bpf0  bpfSnapshot
		err   error
	)
	if o.bpfStats {
		// After the settle: bpftrace says "Attaching" before it loads.
		if progs, err = programsOf(a.pid()); err != nil {
			return roundResult{}, err
		}
		if bpf0, err = snapshotPrograms(progs); err != nil {
			return roundResult{}, err
		}
	}
	cpu0, err := cpuTime(a.pid())
	if err != nil {
		return roundResult{}, err
	}
	win := window{wallFrom: time.Now().UnixNano(), monoFrom: monotonicNow()}
	wall, err := w.run(pids)
	if err != nil {
		return roundResult{}, err
	}
	set := newPIDSet(pids)
	if err := a.drain(ctx, set, o.drainTimeout); err != nil {
		return roundResult{}, err
	}
	win.wallTo, win.monoTo = time.Now().UnixNano(), monotonicNow()
	cpu1, err := cpuTime(a.pid())
	if err != nil {
		return roundResult{}, err
	}
	mem, err := memoryOf(a.pid())
	if err != nil {
		return roundResult{}, err
	}
	bpf := time.Duration(-1)
	if len(progs) > 0 {
		bpf1, err := snapshotPrograms(progs)
		if err != nil {
			return roundResult{}, err
		}
		bpf = perProcess(bpf0, bpf1)
	}
	c, err := a.finish(ctx, set, win)
	if err != nil {
		return roundResult{}, err
	}
	return roundResult{wall: wall, agent: true, cpu: cpu1 - cpu0, bpf: bpf, counts: c, mem: mem}, nil
}
