package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Goals for this stage, for the policy engine.
const (
	goalFilteredNs     = 60      // BPF time per filtered-out hit, sys_enter
	goalEventsPerSec   = 250_000 // end to end, with nothing lost
	openatGoalsHeading = "Goals for this stage (policy engine):"
)

// openatSummary is one mode's rounds reduced to what the table shows.
type openatSummary struct {
	mode          string
	agent, bpf    bool
	wall          time.Duration // median
	onCPU         float64       // the loop's CPU time over its wall time, median
	enter, exit   float64       // ns per run, median; -1 unknown
	runsPerOpenat float64       // sys_enter runs per call of the loop, median
	rate          float64       // events/s, median
	minReceived   int
	maxReceived   int
	maxMissing    int
	maxLost       int64 // vigil-reported, every reason; -1 unknown
	maxRingFull   int64 // of which ring_buffer_full; -1 unknown
	cpu           time.Duration
	cpuPerEvent   float64 // µs, median; NaN without events
	maxPeak       uint64
	minCounted    int64 // vigil_policy_counts_total; -1 unknown
}

func summarizeOpenat(mode string, n int, rs []openatResult) openatSummary {
	s := openatSummary{mode: mode, agent: rs[0].agent, bpf: rs[0].bpf, minReceived: n, minCounted: math.MaxInt64}
	var walls, cpus []time.Duration
	var enters, exits, rates, perRuns, perEvent, onCPU []float64
	for _, r := range rs {
		walls = append(walls, r.wall)
		onCPU = append(onCPU, float64(r.loopCPU)/float64(r.wall))
		if r.bpf {
			enters = append(enters, r.enter.perRun())
			exits = append(exits, r.exit.perRun())
			perRuns = append(perRuns, float64(r.enter.count)/float64(n))
		}
		if !r.agent {
			continue
		}
		cpus = append(cpus, r.cpu)
		rates = append(rates, r.eventsPerSecond())
		if r.received > 0 {
			perEvent = append(perEvent, float64(r.cpu.Nanoseconds())/1e3/float64(r.received))
		}
		s.minReceived = min(s.minReceived, r.received)
		s.maxReceived = max(s.maxReceived, r.received)
		s.maxMissing = max(s.maxMissing, n-r.received)
		lost, ring := r.lostTotal(), int64(-1)
		if r.lost != nil {
			ring = r.lost["ring_buffer_full"]
		}
		if lost < 0 || s.maxLost < 0 {
			s.maxLost, s.maxRingFull = -1, -1
		} else {
			s.maxLost, s.maxRingFull = max(s.maxLost, lost), max(s.maxRingFull, ring)
		}
		s.maxPeak = max(s.maxPeak, r.mem.peak)
		s.minCounted = min(s.minCounted, r.counted)
	}
	s.wall, s.onCPU = median(walls), median(onCPU)
	s.enter, s.exit = -1, -1
	if len(enters) > 0 {
		s.enter, s.exit, s.runsPerOpenat = median(enters), median(exits), median(perRuns)
	}
	s.cpuPerEvent = math.NaN()
	if s.agent {
		s.cpu, s.rate = median(cpus), median(rates)
		if len(perEvent) > 0 {
			s.cpuPerEvent = median(perEvent)
		}
	}
	return s
}

func printOpenatReport(w io.Writer, o options, host string, results map[string][]openatResult) {
	oo := o.openat
	var base *openatSummary
	var rows []openatSummary
	for _, m := range oo.modes {
		s := summarizeOpenat(m, oo.n, results[m])
		rows = append(rows, s)
		if m == openatNone {
			base = &rows[len(rows)-1]
		}
	}
	slowdown := func(s openatSummary) float64 {
		if base == nil {
			return math.NaN()
		}
		return (float64(s.wall)/float64(base.wall) - 1) * 100
	}

	fmt.Fprintf(w, "\nopenat(AT_FDCWD, %q) → ENOENT, N=%d per round, %d rounds of %s interleaved; medians.\n",
		openatPath, oo.n, oo.rounds, strings.Join(oo.modes, " → "))
	if slices.ContainsFunc(oo.modes, func(m string) bool { return m == openatNoMatch || posts(m) }) {
		rb := fmt.Sprintf("%d MiB, raised from the receiver's default of 8 MiB to hold the burst (-openat-ring-buffer-mib)", oo.ringMiB)
		if oo.ringMiB == 8 {
			rb = "8 MiB, the receiver's default"
		}
		fmt.Fprintf(w, "vigil: %s with %s, %s or %s; ring_buffer_size %s.\n",
			oo.config, policyFiles[openatNoMatch], policyFiles[openatCount], policyFiles[openatMatch], rb)
	}
	fmt.Fprintf(w, "%s.\n\n", host)

	t := [][]string{{"mode", "wall ms", "ns/openat", "on CPU", "slowdown", "BPF ns/hit: sys_enter", "sys_exit",
		"events/s", "received", "lost: N−received / vigil", "collector CPU ms", "µs/event", "RSS MB peak"}}
	for _, s := range rows {
		row := []string{s.mode, fmt.Sprintf("%.0f", ms(s.wall)), fmt.Sprintf("%.0f", float64(s.wall)/float64(oo.n)),
			fmt.Sprintf("%.0f%%", 100*min(s.onCPU, 1))}
		if s.mode == openatNone {
			row = append(row, "—")
		} else {
			row = append(row, pct(slowdown(s)))
		}
		switch {
		case s.mode == openatNone:
			row = append(row, "—", "—")
		case !s.bpf:
			row = append(row, "off", "off")
		case s.mode == openatFloor:
			row = append(row, nsString(s.enter), "—")
		default:
			row = append(row, nsString(s.enter), exitString(s.exit))
		}
		switch {
		case !s.agent:
			row = append(row, "—", "—", "—", "—", "—", "—")
		case posts(s.mode):
			row = append(row,
				fmt.Sprintf("%.0fK", s.rate/1e3),
				fmt.Sprintf("%d / %d", s.minReceived, oo.n),
				fmt.Sprintf("%d / %s", s.maxMissing, lostString(s.maxLost)),
				fmt.Sprintf("%.0f", ms(s.cpu)),
				fmt.Sprintf("%.2f", s.cpuPerEvent),
				fmt.Sprintf("%.1f", mb(s.maxPeak)))
		case s.mode == openatCount:
			// No event is expected, every call is counted: received
			// shows the most events that came, and the fewest counts.
			row = append(row, fmt.Sprintf("%.0f", s.rate), fmt.Sprintf("%d, counted %s", s.maxReceived, countedString(s.minCounted, oo.n)),
				"— / "+lostString(s.maxLost), fmt.Sprintf("%.0f", ms(s.cpu)), "—", fmt.Sprintf("%.1f", mb(s.maxPeak)))
		default:
			// No event is expected: received shows the most that came.
			row = append(row, "—", fmt.Sprint(s.maxReceived), "— / "+lostString(s.maxLost),
				fmt.Sprintf("%.0f", ms(s.cpu)), "—", fmt.Sprintf("%.1f", mb(s.maxPeak)))
		}
		t = append(t, row)
	}
	printTable(w, t, 1)

	fmt.Fprintf(w, `
  wall, ns/openat: the loop alone, in a process of its own, one openat per
    iteration; slowdown against the median of "none". BPF programs run in the
    loop's own context: their cost is here, and so is the cost of measuring
    them (BPF_ENABLE_STATS is on for the whole run; -bpf-stats=false).
  on CPU: the loop's CPU time over its wall time. Below 100%% it waited for a
    CPU: the collector's (2 CPUs here), or a neighbour's.
  floor: an empty BPF program (r0 = 0; exit) on raw tracepoint sys_enter,
    the least any program on the hook Vigil's syscall hooks use can cost.
  BPF ns/hit: mean run time per run of the program(s) on sys_enter (and of
    Vigil's on sys_exit; — where it did not run: Vigil attaches it only for
    policies that report returns), during the loop. They run on every
    syscall of the host: the loop's openat calls made %.2f runs per call (vigil-match,
    where the collector works alongside; 1.00 would be the loop alone).
  vigil-count: the vigil-match policy with Count and NoPost: each call is
    counted in the kernel and none posted. received is the most events any
    round wrote (0 expected), counted the fewest calls vigil_policy_counts_total
    reported (N expected).
  events/s: the loop's events in the file exporter's output, divided by the
    time from the loop's start until the last of them was written. In
    vigil-match-debug the debug exporter logs a line per batch with its
    record count and nothing else (no encoding, no file): the time runs
    until the lines add up to N, and received counts the records of every
    process up to N (the loop's, and the few exec and exit events of others).
  lost: N minus received, and the receiver's vigil_events_lost_total (every
    reason), worst round. collector CPU: utime+stime of otelcol-vigil from
    the loop's start until drained (10ms ticks); µs/event divides it by the
    events received. RSS: VmHWM after the drain; MB = 10^6 bytes.
`, runsPerOpenat(rows))

	if d := disturbed(oo, results); len(d) > 0 {
		fmt.Fprintf(w, "\n  Disturbed rounds (another process ran syscalls or held a CPU; the medians\n  soften this, a quieter rerun removes it): %s.\n", strings.Join(d, "; "))
	}

	g := [][]string{}
	for _, s := range rows {
		switch s.mode {
		case openatNoMatch:
			value, met, unknown := "BPF stats off", false, true
			if s.bpf {
				// Judged on Vigil's own time: the floor's is the
				// kernel timing each run, a clock read (README).
				own := s.enter
				value = fmt.Sprintf("sys_enter %s ns, no floor measured to take off", nsString(s.enter))
				if floor := floorNs(rows); floor >= 0 && s.enter >= 0 {
					own = s.enter - floor
					value = fmt.Sprintf("%.1f ns: sys_enter %s less the floor's %.1f", own, nsString(s.enter), floor)
				}
				if s.exit >= 0 {
					value += fmt.Sprintf(" (sys_exit adds %s)", nsString(s.exit))
				}
				met, unknown = s.enter >= 0 && own <= goalFilteredNs, s.enter < 0
			}
			g = append(g, []string{fmt.Sprintf("≤ %d ns BPF time per filtered-out hit (%s)", goalFilteredNs, s.mode), value, verdictOf(met, unknown)})
		case openatMatch, openatMatchDebug:
			how := "written as OTLP protobuf by the file exporter"
			if s.mode == openatMatchDebug {
				how = "reaching the exporter"
			}
			g = append(g, []string{fmt.Sprintf("≥ %.0fK events/s end to end, %s (%s)", goalEventsPerSec/1e3, how, s.mode),
				fmt.Sprintf("%.0fK/s", s.rate/1e3), verdictOf(s.rate >= goalEventsPerSec, false)})
			ring := ""
			if s.maxRingFull >= 0 {
				ring = fmt.Sprintf(" (ring_buffer_full %d)", s.maxRingFull)
			}
			g = append(g, []string{fmt.Sprintf("0 events lost (%s)", s.mode),
				fmt.Sprintf("%d missing, %s reported lost%s", s.maxMissing, lostString(s.maxLost), ring),
				verdictOf(s.maxMissing == 0 && s.maxLost == 0, false)})
		}
	}
	if len(g) > 0 {
		fmt.Fprintf(w, "\n%s\n", openatGoalsHeading)
		for i := range g {
			g[i] = append([]string{""}, g[i]...)
		}
		printTable(w, g, len(g[0]))
	}
}

// disturbed lists the rounds in which something else on the host competed
// with the loop: more than 1.05 runs of the sys_enter program(s) per call
// of the loop, or, without a collector working alongside, the loop on CPU
// less than 90% of its wall time.
func disturbed(oo openatOptions, results map[string][]openatResult) []string {
	var out []string
	for _, m := range oo.modes {
		for i, r := range results[m] {
			var why []string
			if runs := float64(r.enter.count) / float64(oo.n); r.bpf && runs > 1.05 {
				why = append(why, fmt.Sprintf("%.2f runs per call", runs))
			}
			if cpu := float64(r.loopCPU) / float64(r.wall); !posts(m) && cpu < 0.9 {
				why = append(why, fmt.Sprintf("on CPU %.0f%%", 100*cpu))
			}
			if len(why) > 0 {
				out = append(out, fmt.Sprintf("%s round %d (%s)", m, i+1, strings.Join(why, ", ")))
			}
		}
	}
	return out
}

// floorNs is the floor's run time per run, or -1.
func floorNs(rows []openatSummary) float64 {
	for _, s := range rows {
		if s.mode == openatFloor && s.bpf {
			return s.enter
		}
	}
	return -1
}

// runsPerOpenat is the vigil-match row's sys_enter runs per call, or the
// highest of any row without it.
func runsPerOpenat(rows []openatSummary) float64 {
	v := math.NaN()
	for _, s := range rows {
		if s.enter < 0 {
			continue
		}
		if s.mode == openatMatch {
			return s.runsPerOpenat
		}
		if math.IsNaN(v) || s.runsPerOpenat > v {
			v = s.runsPerOpenat
		}
	}
	return v
}

func verdictOf(met, unknown bool) string {
	switch {
	case unknown:
		return "unknown"
	case met:
		return "met"
	}
	return "NOT MET"
}

// exitString is nsString for the sys_exit program, which does not run
// (ns < 0) unless a policy reports returns.
func exitString(ns float64) string {
	if ns < 0 {
		return "—"
	}
	return nsString(ns)
}

func nsString(ns float64) string {
	if ns < 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f", ns)
}

// countedString is the fewest calls a round counted, out of n.
func countedString(counted int64, n int) string {
	if counted < 0 {
		return "unknown"
	}
	return fmt.Sprintf("%d/%d", counted, n)
}
