package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/distribution/policies"
	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/policy"
)

// noiseOptions configure the noise table: alerts of the detection library
// while nothing happens, and during a busy, benign workload.
type noiseOptions struct {
	config string
	idle   time.Duration
}

// benignWorkload is what a developer's or a build node's day looks like:
// this repository's build, vet and unit tests (Go writes and runs test
// binaries in its build cache), package queries, a C program compiled and
// run in the build tree, git, curl to a loopback server, su and ip. Each command
// runs once, in order, in a clone of the repository.
func benignWorkload(work, url string) [][]string {
	cc := "cc"
	if _, err := exec.LookPath(cc); err != nil {
		cc = "clang-19"
	}
	src := filepath.Join(work, "hello.c")
	return [][]string{
		{"make", "--version"},
		{"go", "build", "-o", filepath.Join(work, "vigil"), "./cmd/vigil"},
		{"go", "vet", "./internal/policy/", "./internal/event/"},
		{"go", "test", "-count=1", "./internal/policy/", "./internal/event/", "./internal/tetragonjson/", "./internal/falcojson/"},
		{"dpkg", "-l"},
		{"dpkg", "-S", "/bin/ls"},
		{"apt-cache", "policy", "bash"},
		{"sh", "-c", "printf 'int main(void){return 0;}\\n' > " + src},
		{cc, "-O2", "-o", filepath.Join(work, "hello"), src},
		{filepath.Join(work, "hello")},
		{"git", "status", "--short"},
		{"git", "log", "-5", "--oneline"},
		{"git", "diff", "--stat", "HEAD~1"},
		{"curl", "-fsS", "-o", "/dev/null", url},
		{"sh", "-c", "ls -la /etc >/dev/null; cat /etc/os-release >/dev/null; ps aux >/dev/null"},
		// An administrator's commands: su (PAM, audit netlink), ip.
		{"su", "-s", "/bin/sh", "nobody", "-c", "id >/dev/null"},
		{"ip", "addr"},
	}
}

// runNoiseTable runs the collector with the library, waits idle, runs the
// benign workload, and prints the alerts of each policy in each phase.
func runNoiseTable(ctx context.Context, o options, host, dir string) error {
	events := filepath.Join(dir, "noise-events.jsonl")
	status := filepath.Join(dir, "noise-status.json")
	cmd := exec.CommandContext(ctx, o.agentBin, "--config", o.noise.config)
	cmd.Env = append(os.Environ(), "VIGIL_BENCH_EVENTS_FILE="+events, "VIGIL_BENCH_STATUS_FILE="+status)
	p, err := startProc(cmd, filepath.Join(dir, "noise-collector.log"))
	if err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		<-p.done
	}()
	if err := waitForLibrary(ctx, p, status, o.readyTimeout); err != nil {
		return err
	}

	idleFrom := time.Now()
	fmt.Fprintf(os.Stderr, "bench: noise: idle for %s\n", o.noise.idle)
	select {
	case <-time.After(o.noise.idle):
	case <-ctx.Done():
		return ctx.Err()
	}
	busyFrom := time.Now()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })}
	go srv.Serve(l)
	defer srv.Close()
	work, err := os.MkdirTemp("build", "noise-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	work, _ = filepath.Abs(work)
	// The workload builds a clone of the committed tree, so that edits
	// in progress in this one cannot break it.
	repo := filepath.Join(work, "repo")
	if out, err := exec.CommandContext(ctx, "git", "clone", "-q", "--local", ".", repo).CombinedOutput(); err != nil {
		return fmt.Errorf("cloning the repository for the benign workload: %v\n%s", err, out)
	}
	for _, argv := range benignWorkload(work, "http://"+l.Addr().String()+"/") {
		c := exec.CommandContext(ctx, argv[0], argv[1:]...)
		c.Dir = repo
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("benign workload %v: %v\n%s", argv, err, out)
		}
	}
	busyTo := time.Now()
	// The batch processor and the file exporter flush within a second.
	time.Sleep(3 * time.Second)

	alerts, err := readAlerts(events)
	if err != nil {
		return err
	}
	type row struct{ idle, busy int }
	rows := map[string]*row{}
	for _, n := range policies.Names() {
		rows[n] = &row{}
	}
	var listed []alert
	for _, a := range alerts {
		r := rows[a.policy]
		if r == nil {
			continue
		}
		switch {
		case !a.time.Before(idleFrom) && a.time.Before(busyFrom):
			r.idle++
			listed = append(listed, a)
		case !a.time.Before(busyFrom) && !a.time.After(busyTo):
			r.busy++
			listed = append(listed, a)
		}
	}
	fmt.Printf("\nnoise: alerts of the detection library, %s idle then the benign workload (%s)\n%s\n\n",
		o.noise.idle, busyTo.Sub(busyFrom).Round(time.Second), host)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tseverity\tidle\tbusy\t")
	for _, n := range policies.Names() {
		data, _ := policies.YAML(n)
		sev := ""
		if ps, err := policy.Parse(data, n); err == nil && len(ps) == 1 {
			sev = policy.RuleOf(ps[0]).Severity
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t\n", n, sev, rows[n].idle, rows[n].busy)
	}
	tw.Flush()
	if len(listed) > 0 {
		fmt.Println("\nalerts:")
		sort.Slice(listed, func(i, j int) bool { return listed[i].time.Before(listed[j].time) })
		for _, a := range listed {
			phase := "idle"
			if !a.time.Before(busyFrom) {
				phase = "busy"
			}
			fmt.Printf("  %s %s %s %s %s\n", phase, a.policy, a.hook, a.binary, a.detail)
		}
	}
	return nil
}

// waitForLibrary returns once the status file shows every library policy
// running.
func waitForLibrary(ctx context.Context, p *proc, status string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("the collector exited: %v", p.err)
		}
		if r, err := policy.ReadStatusFile(status); err == nil {
			running := 0
			for _, st := range r.Policies {
				if st.Error != "" {
					return fmt.Errorf("library policy %s refused: %s", st.Name, st.Error)
				}
				if st.Running && slices.Contains(policies.Names(), st.Name) {
					running++
				}
			}
			if running == len(policies.Names()) {
				return nil
			}
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.New("the library did not load within " + timeout.String())
}

// alert is one library event from the events file.
type alert struct {
	time                         time.Time
	policy, hook, binary, detail string
}

// readAlerts reads the records with a security_rule.name from an OTLP
// JSON file (one ExportLogsServiceRequest per line), as the other tables
// read theirs: with pdata's own decoder.
func readAlerts(path string) ([]alert, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var u plog.JSONUnmarshaler
	var out []alert
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		logs, err := u.UnmarshalLogs(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, rl := range logs.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					attrs := lr.Attributes()
					str := func(k string) string {
						if v, ok := attrs.Get(k); ok {
							return v.AsString()
						}
						return ""
					}
					if _, ok := attrs.Get(event.AttrSecurityRuleName); !ok {
						continue
					}
					detail := str(event.AttrFilePath)
					if detail == "" {
						detail = strings.TrimSpace(str(event.AttrProcessCommandLine))
					}
					out = append(out, alert{time: lr.Timestamp().AsTime(), policy: str(event.AttrSecurityRuleName),
						hook: str(event.AttrHook), binary: str(event.AttrProcessExecutablePath), detail: detail})
				}
			}
		}
	}
	return out, nil
}
