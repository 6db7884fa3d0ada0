package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Goals for this stage, for the vigil mode.
const (
	goalSlowdownPct = 2.0
	goalRSSBytes    = 80e6
)

// summary is one mode's rounds reduced to what the table shows.
type summary struct {
	mode        string
	agent       bool
	wall        time.Duration // median
	cpuPerEvent float64       // µs, median over rounds; NaN when no event
	bpf         time.Duration // median; -1 unknown
	events      int           // median
	minSeen     int           // the worst round
	maxMissing  int           // n - seen, the worst round
	maxLost     int64         // agent-reported, the worst round; -1 unknown
	peak, now   uint64        // median RSS
	maxPeak     uint64
}

func summarize(mode string, n int, rs []roundResult) summary {
	s := summary{mode: mode, agent: rs[0].agent, minSeen: n}
	var walls []time.Duration
	var cpus []float64
	var events []int
	var peaks, nows []uint64
	var bpfs []time.Duration
	for _, r := range rs {
		walls = append(walls, r.wall)
		if !r.agent {
			continue
		}
		if r.counts.events > 0 {
			cpus = append(cpus, float64(r.cpu.Nanoseconds())/1e3/float64(r.counts.events))
		}
		events = append(events, r.counts.events)
		if r.bpf >= 0 {
			bpfs = append(bpfs, r.bpf)
		}
		s.minSeen = min(s.minSeen, r.counts.seen)
		s.maxMissing = max(s.maxMissing, n-r.counts.seen)
		if r.counts.lost < 0 || s.maxLost < 0 {
			s.maxLost = -1
		} else {
			s.maxLost = max(s.maxLost, r.counts.lost)
		}
		peaks = append(peaks, r.mem.peak)
		nows = append(nows, r.mem.now)
		s.maxPeak = max(s.maxPeak, r.mem.peak)
	}
	s.wall = median(walls)
	s.cpuPerEvent = math.NaN()
	if len(cpus) > 0 {
		s.cpuPerEvent = median(cpus)
	}
	s.bpf = -1
	if len(bpfs) > 0 {
		s.bpf = median(bpfs)
	}
	if s.agent {
		s.events = median(events)
		s.peak, s.now = median(peaks), median(nows)
	}
	return s
}

// median is the middle value, or the lower middle one for an even count.
func median[T int | uint64 | float64 | time.Duration](v []T) T {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[(len(v)-1)/2]
}

func printReport(w io.Writer, o options, host string, results map[string][]roundResult) {
	var base *summary
	var rows []summary
	for _, m := range o.modes {
		s := summarize(m, o.n, results[m])
		rows = append(rows, s)
		if m == "none" {
			base = &rows[len(rows)-1]
		}
	}
	slowdown := func(s summary) float64 {
		if base == nil {
			return math.NaN()
		}
		return (float64(s.wall)/float64(base.wall) - 1) * 100
	}

	fmt.Fprintf(w, "\nfork+exec+wait of %s, N=%d per round, %d rounds of %s interleaved; medians.\n",
		o.workload, o.n, o.rounds, strings.Join(o.modes, " → "))
	fmt.Fprintf(w, "%s.\n\n", host)

	t := [][]string{{"mode", "wall ms", "ns/exec", "slowdown", "agent CPU µs/event", "agent events", "BPF µs/process", "execs seen", "lost: N−seen / agent", "RSS MB: peak / now"}}
	for _, s := range rows {
		row := []string{s.mode, fmt.Sprintf("%.0f", ms(s.wall)), fmt.Sprintf("%.0f", float64(s.wall.Nanoseconds())/float64(o.n))}
		switch {
		case s.mode == "none":
			row = append(row, "—")
		default:
			row = append(row, pct(slowdown(s)))
		}
		if !s.agent {
			row = append(row, "—", "—", "—", "—", "—", "—")
		} else {
			bpfColumn := "off"
			if o.bpfStats {
				bpfColumn = bpfString(s.bpf)
			}
			row = append(row,
				fmt.Sprintf("%.1f", s.cpuPerEvent),
				fmt.Sprint(s.events),
				bpfColumn,
				fmt.Sprintf("%d / %d", s.minSeen, o.n),
				fmt.Sprintf("%d / %s", s.maxMissing, lostString(s.maxLost)),
				fmt.Sprintf("%.1f / %.1f", mb(s.peak), mb(s.now)))
		}
		t = append(t, row)
	}
	printTable(w, t, 1)

	fmt.Fprintf(w, `
  wall, ns/exec: the loop alone; slowdown against the median of "none". The
    agents' BPF programs run in the workload's context: their cost is here.
  agent CPU: utime+stime of the agent from the loop's start until it drained
    (10ms ticks), per event it emitted in that time, of any process on the
    host. Vigil emits an exec and an exit per process, bpftrace only the exec.
  BPF µs/process: mean run time per run of each of the agent's BPF programs,
    summed: what one process (one fork, exec and exit) costs in the kernel,
    in the workload's time. Measured with BPF_ENABLE_STATS on for the run.
  execs seen: the loop's execs (by pid) in the agent's output, worst round.
  lost: N minus seen, and the agent's own count (vigil_events_lost_total;
    bpftrace's "Lost N events"), worst round.
  RSS: VmHWM / VmRSS of the agent after the drain; MB = 10^6 bytes.
`)

	for _, s := range rows {
		if s.mode != "vigil" {
			continue
		}
		fmt.Fprintf(w, "\nGoals for this stage (vigil):\n")
		g := [][]string{}
		sd := slowdown(s)
		g = append(g, []string{fmt.Sprintf("slowdown ≤ %.0f%% vs no agent", goalSlowdownPct), pct(sd),
			verdict(!math.IsNaN(sd) && sd <= goalSlowdownPct, math.IsNaN(sd))})
		g = append(g, []string{"0 events lost", fmt.Sprintf("%d missing, %s reported lost", s.maxMissing, lostString(s.maxLost)),
			verdict(s.maxMissing == 0 && s.maxLost == 0, false)})
		g = append(g, []string{fmt.Sprintf("RSS ≤ %.0f MB", goalRSSBytes/1e6), fmt.Sprintf("peak %.1f MB", mb(s.maxPeak)),
			verdict(float64(s.maxPeak) <= goalRSSBytes, false)})
		for i := range g {
			g[i] = append([]string{""}, g[i]...)
		}
		printTable(w, g, len(g[0]))
	}
}

func verdict(met, unknown bool) string {
	switch {
	case unknown:
		return "unknown (no \"none\" mode)"
	case met:
		return "met"
	}
	return "NOT MET"
}

// printTable prints rows in columns two spaces apart, the first left columns
// left-aligned and the others right-aligned.
func printTable(w io.Writer, rows [][]string, left int) {
	width := map[int]int{}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < left {
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mb(b uint64) float64        { return float64(b) / 1e6 }

func pct(p float64) string {
	if math.IsNaN(p) {
		return "—"
	}
	return fmt.Sprintf("%+.1f%%", p)
}

func bpfString(d time.Duration) string {
	if d < 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond))
}

func lostString(n int64) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}
