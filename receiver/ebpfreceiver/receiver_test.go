package ebpfreceiver

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// record is a log record found in the sink with its resource.
type record struct {
	resource pcommon.Map
	lr       plog.LogRecord
}

func (r record) str(k string) string {
	v, ok := r.lr.Attributes().Get(k)
	if !ok {
		return ""
	}
	return v.AsString()
}

func (r record) int(k string) int64 {
	v, ok := r.lr.Attributes().Get(k)
	if !ok {
		return -1
	}
	return v.Int()
}

func (r record) args() []string {
	v, _ := r.lr.Attributes().Get(event.AttrProcessCommandArgs)
	var out []string
	for _, a := range v.Slice().All() {
		out = append(out, a.Str())
	}
	return out
}

// startReceiver runs the receiver in a logs and a metrics pipeline ending in sinks.
func startReceiver(t *testing.T, cfg *Config) (*ebpfReceiver, *consumertest.LogsSink, *consumertest.MetricsSink) {
	t.Helper()
	return startReceiverOn(t, cfg, componenttest.NewNopHost())
}

// startReceiverOn is startReceiver with the extensions host provides.
func startReceiverOn(t *testing.T, cfg *Config, host component.Host) (*ebpfReceiver, *consumertest.LogsSink, *consumertest.MetricsSink) {
	t.Helper()
	return startReceiverWith(t, cfg, host, receivertest.NewNopSettings(typ))
}

// startReceiverLogged is startReceiver, with the receiver's log observed.
func startReceiverLogged(t *testing.T, cfg *Config) (*ebpfReceiver, *consumertest.LogsSink, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	set := receivertest.NewNopSettings(typ)
	set.Logger = zap.New(core)
	r, sink, _ := startReceiverWith(t, cfg, componenttest.NewNopHost(), set)
	return r, sink, logs
}

func startReceiverWith(t *testing.T, cfg *Config, host component.Host, set receiver.Settings) (*ebpfReceiver, *consumertest.LogsSink, *consumertest.MetricsSink) {
	t.Helper()
	if cfg.StatusFile == policy.DefaultStatusFile {
		// Not the machine's: a collector may be running there.
		cfg.StatusFile = filepath.Join(t.TempDir(), "policies.json")
	}
	testenv.RequireBPF(t)
	if cfg.PinPath == kernel.DefaultPinPath {
		// Nor its deny lists.
		cfg.PinPath = testenv.PinPath(t)
	}
	logs, metrics := new(consumertest.LogsSink), new(consumertest.MetricsSink)
	f := NewFactory()
	lr, err := f.CreateLogs(context.Background(), set, cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	mr, err := f.CreateMetrics(context.Background(), set, cfg, metrics)
	if err != nil {
		t.Fatal(err)
	}
	if lr != mr {
		t.Fatal("the logs and metrics pipelines got two receivers for one config")
	}
	if err := lr.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	if err := mr.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lr.Shutdown(context.Background())
		mr.Shutdown(context.Background())
	})
	return lr.(*ebpfReceiver), logs, metrics
}

// findRecord returns the first record in the sink that match accepts.
func findRecord(sink *consumertest.LogsSink, match func(record) bool) (record, bool) {
	for _, l := range sink.AllLogs() {
		for _, rl := range l.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if r := (record{rl.Resource().Attributes(), lr}); match(r) {
						return r, true
					}
				}
			}
		}
	}
	return record{}, false
}

// passMarker runs a process and waits for its exec event. The kernel's
// records reach the sink in the order they were written, so once the
// marker's exec is there, every event of what the test did before it is
// there too: what is still missing will not come, without guessing how
// long to wait for it.
func passMarker(t *testing.T, sink *consumertest.LogsSink) {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sink, "the marker's process.exec", isEvent(event.NameProcessExec, cmd.ProcessState.Pid()))
}

// appearsWithin reports whether a matching record arrives within d.
func appearsWithin(d time.Duration, sink *consumertest.LogsSink, match func(record) bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, ok := findRecord(sink, match); ok {
			return true
		}
	}
	return false
}

// waitFor returns the first record that match accepts, failing after 5 s.
func waitFor(t *testing.T, sink *consumertest.LogsSink, what string, match func(record) bool) record {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r, ok := findRecord(sink, match); ok {
			return r
		}
	}
	t.Fatalf("no %s event within 5s", what)
	return record{}
}

func isEvent(name string, pid int) func(record) bool {
	return func(r record) bool {
		return r.lr.EventName() == name && r.int(event.AttrProcessPID) == int64(pid)
	}
}

// procExecID builds the exec id of a process from /proc, as the cache does
// for processes that started before the receiver.
func procExecID(t *testing.T, node string, pid int) string {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	ticks, _ := strconv.ParseUint(fields[19], 10, 64)
	raw := fmt.Sprintf("%s:%d:%d", node, ticks*1e7, pid)
	return base64.StdEncoding.EncodeToString([]byte(raw))
}

func TestExecAndExitEventsDescribeTheProcess(t *testing.T) {
	for _, mechanism := range []string{"", "raw_tp"} {
		t.Run("mechanism="+mechanism, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.mechanism = mechanism
			_, sink, _ := startReceiver(t, cfg)
			hostname, _ := os.Hostname()

			dir := t.TempDir()
			marker := fmt.Sprintf("vigil-test-%d", time.Now().UnixNano())
			cmd := exec.Command("/bin/sh", "-c", "exit 3", marker)
			cmd.Dir = dir
			if err := cmd.Run(); err == nil || cmd.ProcessState.ExitCode() != 3 {
				t.Fatalf("helper: %v", err)
			}
			pid := cmd.ProcessState.Pid()

			ex := waitFor(t, sink, "process.exec", isEvent(event.NameProcessExec, pid))
			realDir, _ := filepath.EvalSymlinks(dir)
			for k, want := range map[string]string{
				event.AttrProcessExecutablePath: "/bin/sh",
				event.AttrProcessExecutableName: "sh",
				event.AttrProcessWorkingDir:     realDir,
				event.AttrProcessCommandLine:    "/bin/sh -c exit 3 " + marker,
				event.AttrParentExecID:          procExecID(t, hostname, os.Getpid()),
			} {
				if got := ex.str(k); got != want {
					t.Errorf("exec %s = %q, want %q", k, got, want)
				}
			}
			if got := ex.args(); !slices.Equal(got, []string{"/bin/sh", "-c", "exit 3", marker}) {
				t.Errorf("exec args %q", got)
			}
			if ex.int(event.AttrProcessParentPID) != int64(os.Getpid()) || ex.int(event.AttrProcessUserID) != int64(os.Geteuid()) {
				t.Errorf("exec ids: ppid %d uid %d", ex.int(event.AttrProcessParentPID), ex.int(event.AttrProcessUserID))
			}
			execID, _ := base64.StdEncoding.DecodeString(ex.str(event.AttrExecID))
			if parts := strings.Split(string(execID), ":"); len(parts) != 3 || parts[0] != hostname || parts[2] != strconv.Itoa(pid) {
				t.Errorf("exec id %q is not node:ktime:pid", execID)
			}
			if ex.lr.Body().Str() != "process /bin/sh -c exit 3 "+marker {
				t.Errorf("body %q", ex.lr.Body().Str())
			}
			// The event time is the kernel's, mapped to the wall clock.
			if d := time.Since(ex.lr.Timestamp().AsTime()); d < 0 || d > 5*time.Second {
				t.Errorf("timestamp %v is %v from now", ex.lr.Timestamp().AsTime(), d)
			}
			if v, _ := ex.resource.Get(event.AttrHostName); v.Str() != hostname {
				t.Errorf("resource host.name %q", v.Str())
			}

			exit := waitFor(t, sink, "process.exit", isEvent(event.NameProcessExit, pid))
			if exit.int(event.AttrProcessExitCode) != 3 || exit.str(event.AttrExecID) != ex.str(event.AttrExecID) {
				t.Errorf("exit: code %d exec id %q", exit.int(event.AttrProcessExitCode), exit.str(event.AttrExecID))
			}
		})
	}
}

func TestExitBySignalReportsTheSignal(t *testing.T) {
	_, sink, _ := startReceiver(t, createDefaultConfig().(*Config))
	cmd := exec.Command("/bin/sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sink, "process.exec", isEvent(event.NameProcessExec, cmd.Process.Pid))
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	exit := waitFor(t, sink, "process.exit", isEvent(event.NameProcessExit, cmd.Process.Pid))
	if got := exit.str(event.AttrExitSignal); got != "SIGKILL" {
		t.Errorf("signal %q", got)
	}
	if _, ok := exit.lr.Attributes().Get(event.AttrProcessExitCode); ok {
		t.Errorf("a killed process has no exit code")
	}
}

func TestProcessesStartedBeforeTheReceiverAreAncestors(t *testing.T) {
	// The shell starts first and waits; once the receiver runs, it starts a
	// child whose parent and grandparent are known only from /proc.
	shell := exec.Command("/bin/sh", "-c", "read line; /bin/true vigil-child; echo done")
	stdin, err := shell.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	shell.Stdout = io.Discard
	if err := shell.Start(); err != nil {
		t.Fatal(err)
	}
	// However the test ends, the shell must not wait for its line forever.
	defer func() { stdin.Close(); shell.Process.Kill(); shell.Wait() }()
	hostname, _ := os.Hostname()
	shellID := procExecID(t, hostname, shell.Process.Pid)

	cfg := createDefaultConfig().(*Config)
	cfg.Process.Ancestors = 2
	_, sink, _ := startReceiver(t, cfg)
	io.WriteString(stdin, "go\n")
	stdin.Close()

	child := waitFor(t, sink, "process.exec of the child", func(r record) bool {
		return r.lr.EventName() == event.NameProcessExec && slices.Equal(r.args(), []string{"/bin/true", "vigil-child"})
	})
	if got := child.str(event.AttrParentExecID); got != shellID {
		t.Errorf("parent exec id %q, want the shell's %q", got, shellID)
	}
	if got := child.str(event.AttrParentExecutablePath); got != "/usr/bin/dash" && got != "/usr/bin/bash" {
		t.Errorf("parent binary %q", got)
	}
	v, ok := child.lr.Attributes().Get(event.AttrAncestors)
	if !ok || v.Slice().Len() != 2 {
		t.Fatalf("ancestors: %v", v.AsRaw())
	}
	grand := v.Slice().At(0).Map()
	if id, _ := grand.Get(event.AttrExecID); id.Str() != procExecID(t, hostname, os.Getpid()) {
		t.Errorf("grandparent exec id %q, want this test's", id.Str())
	}
	// The shell's own exit resolves to its /proc entry.
	exit := waitFor(t, sink, "process.exit of the shell", isEvent(event.NameProcessExit, shell.Process.Pid))
	if exit.str(event.AttrExecID) != shellID {
		t.Errorf("shell exit exec id %q, want %q", exit.str(event.AttrExecID), shellID)
	}
	if v, _ := exit.lr.Attributes().Get(event.AttrProcFS); !v.Bool() {
		t.Errorf("the shell's exit is not marked as known from /proc")
	}
}

func TestMetricsCountEventsAndCacheSize(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.MetricsInterval = 100 * time.Millisecond
	_, sink, metrics := startReceiver(t, cfg)
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sink, "process.exit", isEvent(event.NameProcessExit, cmd.ProcessState.Pid()))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		all := metrics.AllMetrics()
		if len(all) > 0 {
			got := map[string]int64{}
			for _, m := range all[len(all)-1].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().All() {
				switch m.Name() {
				case "vigil.events", "vigil.events.lost", "vigil.bpf.skipped_runs":
					for _, dp := range m.Sum().DataPoints().All() {
						for _, v := range dp.Attributes().All() {
							got[m.Name()+"/"+v.AsString()] = dp.IntValue()
						}
					}
				case "vigil.process_cache.size":
					got[m.Name()] = m.Gauge().DataPoints().At(0).IntValue()
				}
			}
			if got["vigil.events/process.exec"] >= 1 && got["vigil.events/process.exit"] >= 1 {
				if got["vigil.process_cache.size"] < 2 || got["vigil.events.lost/ring_buffer_full"] != 0 {
					t.Errorf("metrics %v", got)
				}
				// Every program of the sensor has its count of skipped
				// runs, the exec program among them.
				if !slices.ContainsFunc(slices.Collect(maps.Keys(got)), func(k string) bool {
					return strings.HasPrefix(k, "vigil.bpf.skipped_runs"+"/vigil_exec_")
				}) {
					t.Errorf("no %s for the exec program in %v", "vigil.bpf.skipped_runs", got)
				}
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no metrics counting the events within 5s")
}

func TestShutdownReleasesEveryKernelObject(t *testing.T) {
	r, _, _ := startReceiver(t, createDefaultConfig().(*Config))
	progs := r.engine.Sensor().ProgramIDs()
	if len(progs) == 0 {
		t.Fatal("no programs loaded")
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var alive []ebpf.ProgramID
		for id, err := ebpf.ProgramGetNextID(0); err == nil; id, err = ebpf.ProgramGetNextID(id) {
			if slices.Contains(progs, id) {
				alive = append(alive, id)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("programs %v still loaded after Shutdown", alive)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStartWithoutPrivilegeNamesWhatIsMissing runs this test binary again as
// nobody, without capabilities, and checks the error Start returns there.
func TestStartWithoutPrivilegeNamesWhatIsMissing(t *testing.T) {
	if os.Getenv("VIGIL_UNPRIVILEGED_HELPER") == "1" {
		r := newReceiver(createDefaultConfig().(*Config), receivertest.NewNopSettings(typ), func() {})
		fmt.Print(r.Start(context.Background(), componenttest.NewNopHost()))
		return
	}
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "switching to an unprivileged user needs root")
	}
	dir, err := os.MkdirTemp("", "vigil-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "receiver.test")
	self, _ := os.ReadFile("/proc/self/exe")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestStartWithoutPrivilegeNamesWhatIsMissing$")
	cmd.Env = append(os.Environ(), "VIGIL_UNPRIVILEGED_HELPER=1")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.CombinedOutput()
	const want = "ebpf receiver: loading BPF programs needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN; run as root or grant them"
	if got, _, _ := strings.Cut(string(out), "PASS"); got != want {
		t.Fatalf("unprivileged Start said:\n%s\nwant:\n%s", out, want)
	}
}
