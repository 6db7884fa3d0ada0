package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// openatQuiet is how long the events file may stop growing before the drain
// ends: longer than the batch processor's timeout (200ms) plus the file
// exporter's flush interval (100ms in bench/config-openat.yaml).
const openatQuiet = 2 * time.Second

// openatVigil runs bin/otelcol-vigil on bench/config-openat.yaml with one
// policy, its events going to a file of OTLP protobuf messages.
type openatVigil struct {
	bin, config, policyFile, policyName string
	ringBuffer                          int // bytes
	readyTimeout                        time.Duration
	// exporter is where the logs pipeline ends: file (the events file) or
	// debug (a line per batch in the collector's log). want is how many
	// events the loop posts.
	exporter string
	want     int
	// counts: the policy counts its matches (Count); read them.
	counts bool

	debug debugCount

	p                        *proc
	log, events, metricsAddr string
	// sizes are the events file's sizes, each with when the drain first
	// saw it.
	sizes []sizeSample
}

type sizeSample struct {
	at   time.Time
	size int64
}

func (a *openatVigil) pid() int { return a.p.cmd.Process.Pid }
func (a *openatVigil) kill()    { a.p.kill() }

func (a *openatVigil) start(ctx context.Context, dir, mode string, round int) error {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	a.metricsAddr = addr
	a.log = filepath.Join(dir, fmt.Sprintf("openat-%s-%d.log", mode, round))
	a.events = filepath.Join(dir, fmt.Sprintf("openat-%s-%d.otlp", mode, round))
	cmd := exec.Command(a.bin, "--config", a.config)
	cmd.Env = append(os.Environ(),
		"VIGIL_BENCH_POLICY="+a.policyFile,
		"VIGIL_BENCH_RING_BUFFER_SIZE="+strconv.Itoa(a.ringBuffer),
		"VIGIL_BENCH_EVENTS_FILE="+a.events,
		"VIGIL_BENCH_EXPORTER="+a.exporter,
		"VIGIL_BENCH_METRICS_ENDPOINT="+addr)
	if a.p, err = startProc(cmd, a.log); err != nil {
		return fmt.Errorf("vigil: %w", err)
	}
	// The receiver installs its policies before it reports itself attached.
	if err := waitForText(ctx, a.p, a.log, vigilReady, a.readyTimeout); err != nil {
		a.p.kill()
		return fmt.Errorf("vigil: %w; its log (%s):%s", err, a.log, tail(a.log, 15))
	}
	if !a.policyLoaded() {
		a.p.kill()
		return fmt.Errorf("vigil: policy %s (%s) not loaded; its log (%s):%s", a.policyName, a.policyFile, a.log, tail(a.log, 15))
	}
	return nil
}

func (a *openatVigil) policyLoaded() bool {
	b, err := os.ReadFile(a.log)
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(line, "policy loaded") && strings.Contains(line, `"`+a.policyName+`"`) {
			return true
		}
	}
	return false
}

// progress is how far the export has come: the events file's size, or the
// records the debug exporter has logged.
func (a *openatVigil) progress() (int64, error) {
	if a.exporter == "debug" {
		err := a.debug.update(a.log, a.want)
		return int64(a.debug.total), err
	}
	if st, err := os.Stat(a.events); err == nil {
		return st.Size(), nil
	}
	return 0, nil
}

// drain returns once the export has not progressed for openatQuiet, or at
// once when no event is expected.
func (a *openatVigil) drain(ctx context.Context, expectEvents bool, timeout time.Duration) error {
	a.sizes = nil
	if !expectEvents {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		now := time.Now()
		size, err := a.progress()
		if err != nil {
			return err
		}
		if len(a.sizes) == 0 || size != a.sizes[len(a.sizes)-1].size {
			a.sizes = append(a.sizes, sizeSample{now, size})
		}
		if now.Sub(a.sizes[len(a.sizes)-1].at) > openatQuiet || now.After(deadline) {
			return nil
		}
		if a.p.exited() {
			return fmt.Errorf("vigil ended during the round: %v; its log:%s", a.p.err, tail(a.log, 15))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// finish reads the receiver's counters, stops the collector and counts the
// loop's events in its output.
func (a *openatVigil) finish(ctx context.Context, loopPID int, start time.Time, r *openatResult) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(vigilMetricsSettle):
	}
	var err error
	if r.lost, err = scrapeCounter(a.metricsAddr, "vigil_events_lost_total", "reason"); err != nil {
		fmt.Fprintf(os.Stderr, "bench: vigil: reading vigil_events_lost_total: %v\n", err)
		r.lost = nil
	}
	r.emitted = -1
	if events, err := scrapeCounter(a.metricsAddr, "vigil_events_total", "event_name"); err != nil {
		fmt.Fprintf(os.Stderr, "bench: vigil: reading vigil_events_total: %v\n", err)
	} else {
		r.emitted = events["process.kprobe"]
	}
	r.counted = -1
	if a.counts {
		if counts, err := scrapeCounter(a.metricsAddr, "vigil_policy_counts_total", "security_rule_name"); err != nil {
			fmt.Fprintf(os.Stderr, "bench: vigil: reading vigil_policy_counts_total: %v\n", err)
		} else {
			r.counted = counts[a.policyName]
		}
	}
	stopped := time.Now()
	if err := a.p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
		return fmt.Errorf("vigil: %w; its log:%s", err, tail(a.log, 15))
	}
	if a.exporter == "debug" {
		if err := a.debug.update(a.log, a.want); err != nil {
			return fmt.Errorf("vigil: %w", err)
		}
		r.received, r.span = min(a.debug.total, a.want), stopped.Sub(start)
		if !a.debug.reached.IsZero() {
			r.span = a.debug.reached.Sub(start)
		}
		return nil
	}
	received, end, err := countLoopEvents(a.events, loopPID)
	if err != nil {
		return fmt.Errorf("vigil: %w", err)
	}
	r.received = received
	if received > 0 {
		// When the file reached the end of the last message holding one
		// of the loop's events; events only written at shutdown count as
		// exported when the collector was told to stop.
		last := stopped
		for _, s := range a.sizes {
			if s.size >= end {
				last = s.at
				break
			}
		}
		r.span = last.Sub(start)
	}
	return nil
}

// countLoopEvents reads a file of length-prefixed OTLP protobuf messages
// (the file exporter's proto format) and counts the policy hook events of
// pid. It returns the offset at which the last message holding one ends.
func countLoopEvents(path string, pid int) (n int, end int64, err error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return 0, 0, nil // nothing exported
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var (
		u   plog.ProtoUnmarshaler
		off int64
		buf []byte
		hdr [4]byte
	)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return n, end, nil
			}
			return 0, 0, fmt.Errorf("%s at %d: %w", path, off, err)
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if cap(buf) < int(size) {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		if _, err := io.ReadFull(br, buf); err != nil {
			return 0, 0, fmt.Errorf("%s at %d: %w", path, off, err)
		}
		off += 4 + int64(size)
		logs, err := u.UnmarshalLogs(buf)
		if err != nil {
			return 0, 0, fmt.Errorf("%s at %d: %w", path, off, err)
		}
		found := 0
		for _, rl := range logs.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if lr.EventName() != "process.kprobe" {
						continue
					}
					if p, ok := lr.Attributes().Get("process.pid"); ok && p.Int() == int64(pid) {
						found++
					}
				}
			}
		}
		if found > 0 {
			n += found
			end = off
		}
	}
}

// debugCount adds up the records of the debug exporter's lines in the
// collector's log ("Logs ... "log records": N}", one a batch), reading on
// from where it stopped.
type debugCount struct {
	off   int64
	total int
	// reached is the time the line that brought total to want was logged.
	reached time.Time
}

const debugRecords = `"log records": `

func (d *debugCount) update(path string, want int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(d.off, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil // at the end, or in a line still being written
		}
		d.off += int64(len(line))
		i := strings.Index(line, debugRecords)
		if i < 0 || !strings.Contains(line, `"otelcol.component.id": "debug"`) {
			continue
		}
		digits := line[i+len(debugRecords):]
		digits = digits[:len(digits)-len(strings.TrimLeft(digits, "0123456789"))]
		n, err := strconv.Atoi(digits)
		if err != nil {
			return fmt.Errorf("%s: a debug exporter line without a record count: %q", path, line)
		}
		d.total += n
		if d.reached.IsZero() && d.total >= want {
			stamp, _, _ := strings.Cut(line, "\t")
			if d.reached, err = time.Parse(time.RFC3339Nano, stamp); err != nil {
				return fmt.Errorf("%s: the time of a debug exporter line: %w", path, err)
			}
		}
	}
}
