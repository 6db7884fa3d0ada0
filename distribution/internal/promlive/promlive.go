// Package promlive runs what Vigil's dashboards and alert rules are written
// against: bin/otelcol-vigil with a few policies, scraped every second by
// Debian's prometheus, and a workload that makes the policies match. The
// live test of the dashboards and alerts (distribution/dashboards_e2e_test.go)
// and `make dashboards-preview` share it.
//
// The collector is set up so that every series the dashboards read exists,
// and as many alerts as can be are really triggered:
//   - policies: one posts events, one counts in the kernel (Count), one
//     kills cat (Sigkill), one is refused (an unknown operator);
//   - the enforcement processor, with two rules on execs of /usr/bin/true:
//     one in monitor mode (skipped), one that drops the record (taken);
//   - an OTLP exporter pointed at a port nothing listens on, retrying
//     briefly, so sends fail;
//   - a second logs pipeline whose memory_limiter refuses everything, as
//     one does under memory pressure, so events are lost (consumer_refused);
//   - the kernel's BPF statistics on (BPF_ENABLE_STATS, until Close), so
//     the run time series exist;
//   - two cgroups named as a container runtime names a container's
//     (docker-<id>.scope), so that what the workload runs in them is
//     counted by container;
//   - besides the collector's two endpoints, Prometheus scrapes a port
//     nothing listens on, in a job named like Vigil's: up == 0.
//
// Running it needs root (BPF) and the prometheus binary.
package promlive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/kernel"
)

// Names of what the lab sets up, as the series' labels carry them.
const (
	// Job is the scrape job of the collector's two endpoints.
	Job = "vigil"
	// DownJob is the job of the target nothing answers on.
	DownJob = "vigil-down"
	// The policies.
	PolicyPost    = "lab-opens-posted"
	PolicyCount   = "lab-opens-counted"
	PolicyKill    = "lab-cat-killed"
	PolicyRefused = "lab-refused"
	// EnforcementRules prefixes the enforcement processor's rules.
	EnforcementRules = "lab-true"
	// DeadExporter is the OTLP exporter whose endpoint is closed.
	DeadExporter = "otlp_grpc/dead"
)

// Config says where the binaries are and where the lab lives.
type Config struct {
	// Collector is bin/otelcol-vigil.
	Collector string
	// Prometheus is the prometheus binary; RuleFile a rule file it loads,
	// if any (the alerts then show pending and firing in its API).
	Prometheus string
	RuleFile   string
	// Dir is an empty directory for the configurations, the policies, the
	// workload's files, Prometheus's data and the logs.
	Dir string
	// PinPath is the collector's bpffs directory for its pinned maps;
	// empty for the receiver's default. A test gives its own
	// (testenv.PinPath): a collector may be running on the machine.
	PinPath string
}

// Lab is a running collector and Prometheus.
type Lab struct {
	// PrometheusURL is the base URL of Prometheus's HTTP API.
	PrometheusURL string
	// WorkDir is where the workload opens files the policies match.
	WorkDir string

	dir        string
	stats      io.Closer
	procs      []*process
	client     *http.Client
	metrics    string // host:port of the collector's vigil.* metrics
	containers []*container
}

// container is a cgroup named as a container runtime names a container's:
// the receiver counts what runs in it under its container id.
type container struct {
	name, path string
	dir        *os.File // what a child is started into (CLONE_INTO_CGROUP)
}

// newContainer creates the cgroup of a made-up container under slice, its
// id derived from its name.
func newContainer(slice, name string) (*container, error) {
	id := sha256.Sum256([]byte("vigil-lab-" + name))
	path := filepath.Join(slice, "docker-"+hex.EncodeToString(id[:])+".scope")
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("creating the cgroup of container %s: %w", name, err)
	}
	dir, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &container{name: name, path: path, dir: dir}, nil
}

// process is a child the lab started and stops.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	// done is closed once the child has exited, with err its status.
	done chan struct{}
	err  error
}

// Start starts the collector and Prometheus and returns once Prometheus
// has scraped the collector's vigil.* metrics. Close stops them, also when
// Start fails halfway (Start closes what it started).
func Start(ctx context.Context, cfg Config) (_ *Lab, err error) {
	l := &Lab{
		dir:     cfg.Dir,
		WorkDir: filepath.Join(cfg.Dir, "work"),
		client:  &http.Client{Timeout: 10 * time.Second},
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	for _, d := range []string{l.WorkDir, filepath.Join(cfg.Dir, "policies"), filepath.Join(cfg.Dir, "prometheus")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	l.metrics = fmt.Sprintf("127.0.0.1:%d", ports[0])
	telemetry := fmt.Sprintf("127.0.0.1:%d", ports[1])
	dead := fmt.Sprintf("127.0.0.1:%d", ports[2])
	l.PrometheusURL = fmt.Sprintf("http://127.0.0.1:%d", ports[3])

	if l.stats, err = ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME)); err != nil {
		return nil, fmt.Errorf("turning on the kernel's BPF statistics: %w", err)
	}
	root, err := kernel.Cgroup2Mount()
	if err != nil {
		return nil, err
	}
	slice := filepath.Join(root, fmt.Sprintf("vigil-lab-%d.slice", os.Getpid()))
	for _, name := range []string{"web", "batch"} {
		c, err := newContainer(slice, name)
		if err != nil {
			return nil, err
		}
		l.containers = append(l.containers, c)
	}
	if err := l.writePolicies(); err != nil {
		return nil, err
	}
	collectorConfig := filepath.Join(cfg.Dir, "collector.yaml")
	if err := os.WriteFile(collectorConfig, []byte(l.collectorConfig(telemetry, dead)), 0o600); err != nil {
		return nil, err
	}
	args := []string{"--config", collectorConfig,
		"--set", "receivers::ebpf::status_file=" + filepath.Join(cfg.Dir, "policies.json")}
	if cfg.PinPath != "" {
		args = append(args, "--set", "receivers::ebpf::pin_path="+cfg.PinPath)
	}
	if err := l.start("otelcol-vigil", cfg.Collector, args...); err != nil {
		return nil, err
	}
	promConfig := filepath.Join(cfg.Dir, "prometheus.yaml")
	if err := os.WriteFile(promConfig, []byte(prometheusConfig(cfg.RuleFile, []string{l.metrics, telemetry}, dead)), 0o600); err != nil {
		return nil, err
	}
	if err := l.start("prometheus", cfg.Prometheus,
		"--config.file="+promConfig,
		"--storage.tsdb.path="+filepath.Join(cfg.Dir, "prometheus"),
		"--web.listen-address="+strings.TrimPrefix(l.PrometheusURL, "http://"),
	); err != nil {
		return nil, err
	}
	// Loading the BPF programs takes seconds; the first scrape with the
	// receiver's metrics in it says both are up. A child that exits
	// meanwhile (a configuration refused) ends the wait.
	wait, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	for _, p := range l.procs {
		go func() {
			select {
			case <-p.done:
				cancel(fmt.Errorf("%s exited: %v", p.name, p.err))
			case <-wait.Done():
			}
		}()
	}
	if _, err := l.WaitFor(wait, `vigil_policies_loaded{job="`+Job+`"}`); err != nil {
		return nil, fmt.Errorf("waiting for Prometheus to scrape the collector: %w\n%s", err, l.Logs())
	}
	return l, nil
}

// start runs a child whose output goes to a log file in the lab; it dies
// with the process that started it (Pdeathsig), should Close not run.
func (l *Lab) start(name, bin string, args ...string) error {
	log := filepath.Join(l.dir, name+".log")
	out, err := os.Create(log)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	return nil
}

// Close stops Prometheus and the collector (SIGTERM, then SIGKILL after
// 20s) and turns the BPF statistics off again. It reports a child that
// died before it was asked to.
func (l *Lab) Close() error {
	var errs []error
	for i := len(l.procs) - 1; i >= 0; i-- {
		p := l.procs[i]
		select {
		case <-p.done:
			errs = append(errs, fmt.Errorf("%s exited on its own: %v; its log:\n%s", p.name, p.err, tail(p.log)))
			continue
		default:
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			if p.err != nil {
				errs = append(errs, fmt.Errorf("%s stopped with %v; its log:\n%s", p.name, p.err, tail(p.log)))
			}
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
			errs = append(errs, fmt.Errorf("%s did not stop within 20s of SIGTERM", p.name))
		}
	}
	l.procs = nil
	// The workload's processes are gone: the cgroups can go too.
	for _, c := range l.containers {
		c.dir.Close()
		errs = append(errs, os.Remove(c.path))
	}
	if len(l.containers) > 0 {
		errs = append(errs, os.Remove(filepath.Dir(l.containers[0].path)))
	}
	l.containers = nil
	if l.stats != nil {
		errs = append(errs, l.stats.Close())
		l.stats = nil
	}
	return errors.Join(errs...)
}

// Logs returns the end of each child's log, for a failure message.
func (l *Lab) Logs() string {
	var b strings.Builder
	for _, p := range l.procs {
		fmt.Fprintf(&b, "--- %s (%s)\n%s\n", p.name, p.log, tail(p.log))
	}
	return b.String()
}

// tail is the last 4 KiB of a file.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(data) > 4096 {
		data = data[len(data)-4096:]
	}
	return string(data)
}

// freePorts returns n loopback ports nothing listens on at the moment.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writePolicies writes the lab's TracingPolicies, each matching opens of
// files under WorkDir only.
func (l *Lab) writePolicies() error {
	open := func(name, prefix, extra, actions string) string {
		return fmt.Sprintf(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: %s
spec:
  kprobes:
  - call: sys_openat
    syscall: true
    args:
    - index: 1
      type: string
    selectors:
    - matchArgs:
      - index: 1
        operator: Prefix
        values: [%s]
%s      matchActions:
%s`, name, filepath.Join(l.WorkDir, prefix), extra, actions)
	}
	policies := map[string]string{
		PolicyPost: open(PolicyPost, "post-", "", "      - action: Post\n"),
		// Counted in the kernel, never posted.
		PolicyCount: open(PolicyCount, "count-", "", "      - action: Count\n      - action: NoPost\n"),
		// Only cat, only under WorkDir: nothing else on the machine dies.
		PolicyKill: open(PolicyKill, "kill-", "      matchBinaries:\n      - operator: In\n        values: [/usr/bin/cat]\n",
			"      - action: Sigkill\n"),
		// No such operator: Vigil refuses the policy, naming the field.
		PolicyRefused: strings.Replace(open(PolicyRefused, "refused-", "", "      - action: Post\n"),
			"operator: Prefix", "operator: NoSuchOperator", 1),
	}
	for name, text := range policies {
		if err := os.WriteFile(filepath.Join(l.dir, "policies", name+".yaml"), []byte(text), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) collectorConfig(telemetry, dead string) string {
	host, port, _ := net.SplitHostPort(telemetry)
	return fmt.Sprintf(`receivers:
  ebpf:
    metrics_interval: 1s
    policies: [%[1]s]
processors:
  batch:
    timeout: 200ms
  # Two rules on the workload's execs of /usr/bin/true: every one is a
  # kill skipped (monitor mode); those with the argument drop are dropped
  # from the pipeline (taken; nothing else happens to them).
  enforcement:
    mode: enforce
    rules:
      - name: %[2]s-kill
        condition: event_name == "process.exec" and attributes["process.executable.path"] == "/usr/bin/true"
        action: kill
        mode: monitor
      - name: %[2]s-drop
        condition: event_name == "process.exec" and attributes["process.command_line"] == "/usr/bin/true drop"
        action: drop
  # Refuses whatever it is given, as a memory_limiter over its limit does.
  memory_limiter/exhausted:
    check_interval: 100ms
    limit_mib: 1
exporters:
  compact:
    output: %[3]s
    color: never
  %[4]s:
    endpoint: %[5]s
    tls:
      insecure: true
    timeout: 500ms
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 200ms
      max_elapsed_time: 1s
  prometheus:
    endpoint: %[6]s
service:
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: %[7]s
                port: %[8]s
  pipelines:
    logs:
      receivers: [ebpf]
      processors: [enforcement, batch]
      exporters: [compact, %[4]s]
    logs/exhausted:
      receivers: [ebpf]
      processors: [memory_limiter/exhausted]
      exporters: [compact]
    metrics:
      receivers: [ebpf]
      processors: [batch]
      exporters: [prometheus, %[4]s]
`, filepath.Join(l.dir, "policies"), EnforcementRules, filepath.Join(l.dir, "compact.log"),
		DeadExporter, dead, l.metrics, host, port)
}

// prometheusConfig scrapes the collector's endpoints every second in job
// Job, and a dead endpoint in DownJob.
func prometheusConfig(ruleFile string, targets []string, dead string) string {
	rules := ""
	if ruleFile != "" {
		rules = fmt.Sprintf("rule_files: [%q]\n", ruleFile)
	}
	return fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
%sscrape_configs:
  - job_name: %s
    static_configs:
      - targets: [%s]
  - job_name: %s
    static_configs:
      - targets: [%s]
`, rules, Job, strings.Join(targets, ", "), DownJob, dead)
}
