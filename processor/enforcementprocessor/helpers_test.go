package enforcementprocessor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/testenv"
	"github.com/vigilsec/vigil/receiver/ebpfreceiver"
)

// record is a log record found in the sink with its resource.
type record struct {
	resource pcommon.Map
	lr       plog.LogRecord
}

func (r record) str(k string) string { return strAttr(r.lr.Attributes(), k) }
func (r record) int(k string) int64  { return intAttr(r.lr.Attributes(), k) }

func records(sink *consumertest.LogsSink, match func(record) bool) []record {
	var out []record
	for _, l := range sink.AllLogs() {
		for _, rl := range l.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if r := (record{rl.Resource().Attributes(), lr}); match(r) {
						out = append(out, r)
					}
				}
			}
		}
	}
	return out
}

// waitRecords waits up to 10 s for n matching records and returns them.
func waitRecords(t *testing.T, sink *consumertest.LogsSink, what string, n int, match func(record) bool) []record {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got := records(sink, match); len(got) >= n {
			return got
		} else if time.Now().After(deadline) {
			t.Fatalf("%d %s records within 10s, want %d", len(got), what, n)
		}
	}
}

func audits(rule string) func(record) bool {
	return func(r record) bool {
		return r.lr.EventName() == event.NameEnforcementAction && r.str(event.AttrSecurityRuleName) == rule
	}
}

func execOf(commandLine string) func(record) bool {
	return func(r record) bool {
		return r.lr.EventName() == event.NameProcessExec && r.str(event.AttrProcessCommandLine) == commandLine
	}
}

var seq atomic.Int64

// unique is a number no other test run on this machine uses at the same
// time, for markers in command lines and names.
func unique() string {
	return fmt.Sprintf("%d%03d", os.Getpid(), seq.Add(1))
}

// newProcessor builds the processor with a sink after it, outside a
// pipeline, for tests that feed it records themselves.
func newTestProcessor(t *testing.T, cfg *Config) (*enforcementProcessor, *consumertest.LogsSink) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sink := new(consumertest.LogsSink)
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(typ), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	return p.(*enforcementProcessor), sink
}

// startPipeline runs the ebpf receiver -> enforcement -> sink. Both pin the
// deny lists, and the receiver writes its policy status, in directories of
// the test's own: a collector may be running on the machine.
func startPipeline(t *testing.T, cfg *Config) *consumertest.LogsSink {
	t.Helper()
	testenv.RequireBPF(t)
	if cfg.PinPath == kernel.DefaultPinPath {
		cfg.PinPath = testenv.PinPath(t)
	}
	p, sink := newTestProcessor(t, cfg)
	rf := ebpfreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig().(*ebpfreceiver.Config)
	rcfg.PinPath = cfg.PinPath
	rcfg.StatusFile = filepath.Join(t.TempDir(), "policies.json")
	r, err := rf.CreateLogs(context.Background(), receivertest.NewNopSettings(rf.Type()), rcfg, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return sink
}

// testConfig is a processor config with rules, its deny lists pinned at pin.
func testConfig(pin string, rules ...RuleConfig) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Rules = rules
	if pin != "" {
		cfg.PinPath = pin
	}
	return cfg
}

// denySensor loads a sensor pinning its deny lists in a directory of the
// test's own, as the receiver does at the default path: the processor is
// pointed there (pin_path), so the test changes no other collector's lists.
func denySensor(t *testing.T) (string, *kernel.Sensor) {
	t.Helper()
	testenv.RequireBPF(t)
	pin := testenv.PinPath(t)
	s, err := kernel.LoadSensor(kernel.SensorOptions{PinPath: pin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return pin, s
}

// startSleep starts /usr/bin/sleep seconds (a unique number: the marker),
// killed at the end of the test if still running. done is closed with the
// wait status stored in *status.
func startSleep(t *testing.T, seconds string) (cmd *exec.Cmd, status *syscall.WaitStatus, done chan struct{}) {
	t.Helper()
	cmd = exec.Command("/usr/bin/sleep", seconds)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	status, done = new(syscall.WaitStatus), make(chan struct{})
	go func() {
		cmd.Wait()
		*status = cmd.ProcessState.Sys().(syscall.WaitStatus)
		close(done)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	return cmd, status, done
}

// startBootNs is the start time of a running process from /proc, at tick
// granularity: what the receiver reports for processes it found there.
func startBootNs(t *testing.T, pid int) int64 {
	t.Helper()
	_, ticks, err := procStart("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	return int64(ticks) * clockTicksNs
}

// processRecord is a process.exec record for a real process, as the
// receiver would make it, with the given start time.
func processRecord(pid int, start int64, commandLine string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(event.AttrHostName, "test-host")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(event.NameProcessExec)
	a := lr.Attributes()
	a.PutInt(event.AttrProcessPID, int64(pid))
	a.PutInt(event.AttrProcessStartBootNs, start)
	a.PutStr(event.AttrProcessExecutablePath, "/usr/bin/sleep")
	a.PutStr(event.AttrProcessCommandLine, commandLine)
	a.PutStr(event.AttrExecID, "exec-"+strconv.Itoa(pid))
	return ld
}

func running(pid int) bool {
	state, _, err := procStart("/proc", pid)
	return err == nil && state != "Z"
}

// signalled reports whether pid has been sent SIGKILL: it is gone, or the
// signal is pending (ShdPnd for a signal to the process, SigPnd to the
// thread). A signal is pending from the moment the system call that sent
// it returns, so this needs no wait: the processor signals within
// ConsumeLogs.
func signalled(t *testing.T, pid int) bool {
	t.Helper()
	if !running(pid) {
		return true
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return true // gone since
	}
	for _, line := range strings.Split(string(status), "\n") {
		key, val, _ := strings.Cut(line, ":")
		if key != "ShdPnd" && key != "SigPnd" {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if err != nil {
			t.Fatalf("/proc/%d/status %s: %v", pid, key, err)
		}
		if mask&(1<<(syscall.SIGKILL-1)) != 0 {
			return true
		}
	}
	return false
}

// passMarker runs a process of its own and waits until its exec reaches
// sink: records of what ran before it are through the pipeline by then,
// audits included, since the receiver delivers them in order and the
// processor acts within ConsumeLogs.
func passMarker(t *testing.T, sink *consumertest.LogsSink) {
	t.Helper()
	marker := "pass-" + unique()
	if err := exec.Command("/bin/echo", marker).Run(); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, sink, "process.exec of the marker", 1, execOf("/bin/echo "+marker))
}
