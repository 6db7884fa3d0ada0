package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

const (
	// vigilReady is the receiver's log line once its programs are attached.
	vigilReady = "process sensor attached"
	// vigilQuiet is how long the events file may stop growing before the
	// drain gives up on events still missing: longer than the batch
	// processor's timeout (200ms) plus the file exporter's flush interval (1s).
	vigilQuiet = 3 * time.Second
	// vigilMetricsSettle is how long to wait after the drain for a metrics
	// export (metrics_interval: 1s in bench/config.yaml) to reach Prometheus.
	vigilMetricsSettle = 1500 * time.Millisecond
)

// vigilAgent runs bin/otelcol-vigil on bench/config.yaml, with the events
// going to a file the bench reads and the receiver's metrics to a
// Prometheus endpoint it scrapes.
type vigilAgent struct {
	bin, config, workloadName string

	p            *proc
	log, events  string
	metricsAddr  string
	out          *otlpTail
	readyTimeout time.Duration
}

func (a *vigilAgent) pid() int { return a.p.cmd.Process.Pid }
func (a *vigilAgent) kill()    { a.p.kill() }

func (a *vigilAgent) start(ctx context.Context, dir string, round int) error {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	a.metricsAddr = addr
	a.log = filepath.Join(dir, fmt.Sprintf("vigil-%d.log", round))
	a.events = filepath.Join(dir, fmt.Sprintf("vigil-%d.jsonl", round))
	a.out = &otlpTail{path: a.events, workloadName: a.workloadName}
	cmd := exec.Command(a.bin, "--config", a.config)
	cmd.Env = append(os.Environ(),
		"VIGIL_BENCH_EVENTS_FILE="+a.events,
		"VIGIL_BENCH_METRICS_ENDPOINT="+addr)
	if a.p, err = startProc(cmd, a.log); err != nil {
		return fmt.Errorf("vigil: %w", err)
	}
	if err := waitForText(ctx, a.p, a.log, vigilReady, a.readyTimeout); err != nil {
		a.p.kill()
		return fmt.Errorf("vigil: %w; its log (%s):%s", err, a.log, tail(a.log, 15))
	}
	return nil
}

// drain waits until the events file holds the exec and the exit of every
// pid of the loop, or stops growing for vigilQuiet.
func (a *vigilAgent) drain(ctx context.Context, pids pidSet, timeout time.Duration) error {
	a.out.pids = pids
	deadline := time.Now().Add(timeout)
	lastGrowth := time.Now()
	for {
		grew, err := a.out.poll()
		if err != nil {
			return fmt.Errorf("vigil: %w", err)
		}
		now := time.Now()
		if grew {
			lastGrowth = now
		}
		if len(a.out.execs) == len(pids) && len(a.out.exits) == len(pids) ||
			now.Sub(lastGrowth) > vigilQuiet || now.After(deadline) {
			return nil
		}
		if a.p.exited() {
			return fmt.Errorf("vigil ended during the round: %v; its log:%s", a.p.err, tail(a.log, 15))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (a *vigilAgent) finish(ctx context.Context, pids pidSet, w window) (counts, error) {
	select {
	case <-ctx.Done():
		return counts{}, ctx.Err()
	case <-time.After(vigilMetricsSettle):
	}
	lost, err := scrapeLost(a.metricsAddr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: vigil: reading vigil_events_lost_total: %v\n", err)
		lost = -1
	}
	// SIGTERM: the collector shuts down in order and the file exporter
	// writes what it still buffers.
	if err := a.p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
		return counts{}, fmt.Errorf("vigil: %w; its log:%s", err, tail(a.log, 15))
	}
	if _, err := a.out.poll(); err != nil {
		return counts{}, fmt.Errorf("vigil: %w", err)
	}
	events := 0
	for _, t := range a.out.times {
		if w.hasWall(t) {
			events++
		}
	}
	return counts{seen: len(a.out.execs), events: events, lost: lost}, nil
}

// otlpTail reads the file exporter's output as it grows: one OTLP JSON
// ExportLogsServiceRequest per line.
type otlpTail struct {
	path         string
	workloadName string // base name of the workload's binary
	pids         pidSet

	off     int64
	partial []byte
	// execs and exits hold the loop's pids the file has an event for.
	execs, exits map[int32]struct{}
	// times holds the event time of every record, of any process.
	times []int64
}

// poll reads what was appended since the last call and says whether there
// was anything.
func (t *otlpTail) poll() (bool, error) {
	f, err := os.Open(t.path)
	if os.IsNotExist(err) {
		return false, nil // nothing exported yet
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if _, err := f.Seek(t.off, io.SeekStart); err != nil {
		return false, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return false, err
	}
	if len(b) == 0 {
		return false, nil
	}
	t.off += int64(len(b))
	b = append(t.partial, b...)
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		t.partial = b
		return true, nil
	}
	t.partial = append([]byte(nil), b[end+1:]...)
	var u plog.JSONUnmarshaler
	for line := range bytes.SplitSeq(b[:end], []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		logs, err := u.UnmarshalLogs(line)
		if err != nil {
			return true, fmt.Errorf("%s: %w", t.path, err)
		}
		t.add(logs)
	}
	return true, nil
}

func (t *otlpTail) add(logs plog.Logs) {
	if t.execs == nil {
		t.execs, t.exits = map[int32]struct{}{}, map[int32]struct{}{}
	}
	for _, rl := range logs.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				t.times = append(t.times, int64(lr.Timestamp()))
				pid, ok := lr.Attributes().Get("process.pid")
				if !ok || !t.pids.has(pid.Int()) {
					continue
				}
				switch lr.EventName() {
				case "process.exec":
					if path, ok := lr.Attributes().Get("process.executable.path"); ok &&
						filepath.Base(path.Str()) == t.workloadName {
						t.execs[int32(pid.Int())] = struct{}{}
					}
				case "process.exit":
					t.exits[int32(pid.Int())] = struct{}{}
				}
			}
		}
	}
}

// scrapeLost sums vigil_events_lost_total over its reasons.
func scrapeLost(addr string) (int64, error) {
	byReason, err := scrapeCounter(addr, "vigil_events_lost_total", "reason")
	if err != nil {
		return 0, err
	}
	var total int64
	for _, v := range byReason {
		total += v
	}
	return total, nil
}

// scrapeCounter reads one metric from the Prometheus endpoint at addr, by
// the value of one of its labels.
func scrapeCounter(addr, metric, label string) (map[string]int64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	values := map[string]int64{}
	found := false
	labelRE := regexp.MustCompile(`[{,]` + regexp.QuoteMeta(label) + `="([^"]*)"`)
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		key := ""
		if m := labelRE.FindStringSubmatch(line); m != nil {
			key = m[1]
		}
		values[key] += int64(v)
		found = true
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("no %s in the scrape of %s", metric, addr)
	}
	return values, nil
}

// freeLoopbackAddr returns a loopback TCP address nothing listens on now.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
