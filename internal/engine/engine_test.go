package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap/zaptest"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// sink keeps what the engine hands over; refuse makes it refuse batches.
type sink struct {
	mu      sync.Mutex
	records []plog.LogRecord
	refuse  bool
}

func (s *sink) consume(_ context.Context, logs plog.Logs) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse {
		return errors.New("refused by the test")
	}
	for _, rl := range logs.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				s.records = append(s.records, lr)
			}
		}
	}
	return nil
}

// wait returns the first record match accepts, failing the test after ten
// seconds.
func (s *sink) wait(t *testing.T, what string, match func(plog.LogRecord) bool) plog.LogRecord {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		s.mu.Lock()
		for _, lr := range s.records {
			if match(lr) {
				s.mu.Unlock()
				return lr
			}
		}
		s.mu.Unlock()
	}
	t.Fatalf("no %s within 10s", what)
	return plog.LogRecord{}
}

func startEngine(t *testing.T, opts Options) *Engine {
	t.Helper()
	testenv.RequireBPF(t)
	opts.Logger = zaptest.NewLogger(t)
	opts.PinPath = testenv.PinPath(t)
	opts.ProcFS, opts.CacheSize = "/proc", 4096
	if opts.ReloadInterval == 0 {
		opts.ReloadInterval = 100 * time.Millisecond
	}
	e, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func str(lr plog.LogRecord, key string) string {
	v, _ := lr.Attributes().Get(key)
	return v.AsString()
}

// TestEngineRunsWithoutTheCollector: the engine alone reports a process's
// exec and a policy's hook event to whoever consumes its batches, and
// counts both.
func TestEngineRunsWithoutTheCollector(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "watched")
	os.WriteFile(target, []byte("x\n"), 0o644)
	name := fmt.Sprintf("engine-%d", time.Now().UnixNano())
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(fmt.Sprintf(`apiVersion: cilium.io/v1alpha1
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
        operator: Equal
        values: [%q]
`, name, target)), 0o644)
	var s sink
	e := startEngine(t, Options{Consume: s.consume, Policies: []string{dir}})
	if st := e.Statuses(); len(st) != 1 || !st[0].Running {
		t.Fatalf("policy statuses after Start: %+v", st)
	}

	cmd := exec.Command("/bin/cat", target)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cat: %v: %s", err, out)
	}
	pid := int64(cmd.ProcessState.Pid())
	exe := s.wait(t, "process.exec of cat", func(lr plog.LogRecord) bool {
		v, _ := lr.Attributes().Get(event.AttrProcessPID)
		return lr.EventName() == event.NameProcessExec && v.Int() == pid
	})
	if got := str(exe, event.AttrProcessCommandLine); got != "/bin/cat "+target {
		t.Errorf("command line %q", got)
	}
	hook := s.wait(t, "the policy's event", func(lr plog.LogRecord) bool {
		return lr.EventName() == event.NameProcessKprobe && str(lr, event.AttrSecurityRuleName) == name
	})
	if args, _ := hook.Attributes().Get(event.AttrArgs); !strings.Contains(args.AsString(), target) {
		t.Errorf("the hook event's arguments %s do not name %s", args.AsString(), target)
	}

	c := e.Counters()
	if bin := str(exe, event.AttrProcessExecutablePath); c.Exec < 1 || c.PolicyEvents[PolicyEventKey{event.NameProcessKprobe, name, bin}] < 1 {
		t.Errorf("counters: exec %d, policy events %v (want %s's open)", c.Exec, c.PolicyEvents, bin)
	}
	var matched uint64
	for _, v := range c.Versions {
		for _, h := range v.Hooks {
			if h.Policy == name && h.Hook == "sys_openat" {
				matched += h.Matched
			}
		}
	}
	if matched < 1 || c.PoliciesRunning != 1 {
		t.Errorf("the policy's hook matched %d calls (want its open), %d policies run", matched, c.PoliciesRunning)
	}
}

// TestEngineCountsBatchesTheConsumerRefused: events the consumer refuses
// are counted as lost for that reason, not dropped unseen.
func TestEngineCountsBatchesTheConsumerRefused(t *testing.T) {
	s := sink{refuse: true}
	e := startEngine(t, Options{Consume: s.consume})
	for deadline := time.Now().Add(10 * time.Second); e.Counters().Lost.ConsumerRefused == 0; time.Sleep(20 * time.Millisecond) {
		if err := exec.Command("/bin/true").Run(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no refused batch counted in 10s")
		}
	}
}

// TestStartThatFailsHalfWayClosesWhatItOpened: a Start that fails after
// the sensor loaded (here, at the /proc scan) returns the error, naming
// the field, and closes the half-started engine without touching what it
// never opened.
func TestStartThatFailsHalfWayClosesWhatItOpened(t *testing.T) {
	testenv.RequireBPF(t)
	_, err := Start(context.Background(), Options{Logger: zaptest.NewLogger(t), PinPath: testenv.PinPath(t),
		ProcFS: filepath.Join(t.TempDir(), "no-proc"), CacheSize: 4096})
	if err == nil || !strings.Contains(err.Error(), "process.procfs") {
		t.Fatalf("Start with a missing procfs: %v", err)
	}
}

// TestPolicyModeSetAtRunTime: `vigil policy mode` switches a running
// policy between monitor and enforce through the modes file, without
// touching the policy's own file; clearing the mode returns to the file's.
func TestPolicyModeSetAtRunTime(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "forbidden")
	os.WriteFile(target, []byte("x\n"), 0o644)
	name := fmt.Sprintf("mode-%d", time.Now().UnixNano())
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(fmt.Sprintf(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: %s
spec:
  options: [{name: policy-mode, value: monitor}]
  kprobes:
  - call: sys_openat
    syscall: true
    args: [{index: 1, type: string}]
    selectors:
    - matchArgs: [{index: 1, operator: Equal, values: [%q]}]
      matchActions: [{action: Sigkill}]
`, name, target)), 0o644)
	statusFile := filepath.Join(t.TempDir(), "policies.json")
	var s sink
	e := startEngine(t, Options{Consume: s.consume, Policies: []string{dir}, StatusFile: statusFile})
	modeIs := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			st := e.Statuses()
			if len(st) == 1 && st[0].Running && st[0].Mode == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("policy statuses %+v, want it running in %s", st, want)
			}
		}
	}
	killed := func() bool {
		t.Helper()
		err := exec.Command("/bin/cat", target).Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return ee != nil && ee.ProcessState.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
	}
	modeIs(policy.ModeMonitor)
	if killed() {
		t.Fatal("killed under policy-mode monitor")
	}
	modes := policy.ModesFile(statusFile)
	if err := policy.WriteModes(modes, policy.Modes{name: policy.ModeEnforce}); err != nil {
		t.Fatal(err)
	}
	modeIs(policy.ModeEnforce)
	if !killed() {
		t.Fatal("not killed once the mode was set to enforce")
	}
	// A broken modes file keeps the modes read before it.
	os.WriteFile(modes, []byte("{"), 0o600)
	before := e.Syncs()
	for deadline := time.Now().Add(10 * time.Second); e.Syncs() < before+2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
	}
	modeIs(policy.ModeEnforce)
	if err := policy.WriteModes(modes, policy.Modes{}); err != nil {
		t.Fatal(err)
	}
	modeIs(policy.ModeMonitor)
	if killed() {
		t.Fatal("killed once the mode set at run time was cleared")
	}
}

// TestLoaderEvents: a policy with loader: true reports each shared object
// a program's dynamic loader maps executable, with the file's GNU build id
// (checked against readelf's), as Tetragon's loader events do.
func TestLoaderEvents(t *testing.T) {
	readelf, err := exec.LookPath("llvm-readelf-19")
	if err != nil {
		if readelf, err = exec.LookPath("readelf"); err != nil {
			testenv.Unavailable(t, "no readelf to check build ids with: %v", err)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "loader.yaml"), []byte(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: loader}
spec:
  loader: true
`), 0o644)
	var s sink
	startEngine(t, Options{Consume: s.consume, Policies: []string{dir}})
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := int64(cmd.ProcessState.Pid())
	lr := s.wait(t, "a loader event of true's libc", func(lr plog.LogRecord) bool {
		v, _ := lr.Attributes().Get(event.AttrProcessPID)
		return lr.EventName() == event.NameProcessLoader && v.Int() == pid && strings.Contains(str(lr, event.AttrFilePath), "/libc.so")
	})
	lib := str(lr, event.AttrFilePath)
	out, err := exec.Command(readelf, "-n", lib).CombinedOutput()
	if err != nil {
		t.Fatalf("readelf -n %s: %v %s", lib, err, out)
	}
	_, want, _ := strings.Cut(string(out), "Build ID: ")
	want, _, _ = strings.Cut(want, "\n")
	if got := str(lr, event.AttrLoaderBuildID); got == "" || got != strings.TrimSpace(want) {
		t.Errorf("%s: build id %q, readelf says %q", lib, got, want)
	}
}
