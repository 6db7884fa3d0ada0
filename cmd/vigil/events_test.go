package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vigilsec/vigil/exporter/compactexporter"
	"github.com/vigilsec/vigil/exporter/eventstreamexporter"
	"github.com/vigilsec/vigil/exporter/eventstreamexporter/eventstreampb"
	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/testenv"
)

func TestDefaultSocketIsTheExportersDefault(t *testing.T) {
	assert.Equal(t, eventstreamexporter.DefaultSocket, defaultEventsSocket)
}

func TestEventsIsRegistered(t *testing.T) {
	var stderr bytes.Buffer
	usage(&stderr)
	assert.Contains(t, stderr.String(), "  events     follow the live events of the collector on this node\n")
}

func TestEventsFlags(t *testing.T) {
	o, err := parseEventsArgs([]string{
		"-o", "json",
		"--namespace", "default", "--namespace", "prod,staging",
		"--pods", "^xwing", "--pods", "tie,fighter",
		"--container-id", "3f1a",
		"--process", "curl$",
		"--event", "process.exec,process.exit",
		"--policy", "block-shadow",
		"--condition", `attributes["process.user.id"] == 0`,
		"--color", "never",
		"--timestamps",
		"--socket", "/run/vigil.sock",
	})
	require.NoError(t, err)
	assert.Equal(t, "json", o.output)
	assert.Equal(t, "never", o.color)
	assert.True(t, o.timestamps)
	assert.Equal(t, "/run/vigil.sock", o.socket)
	assert.Equal(t, []string{"default", "prod", "staging"}, o.filter.GetNamespaces())
	assert.Equal(t, []string{"^xwing", "tie,fighter"}, o.filter.GetPodRegex(), "a regex is never split at commas")
	assert.Equal(t, []string{"3f1a"}, o.filter.GetContainerIds())
	assert.Equal(t, []string{"curl$"}, o.filter.GetProcessRegex())
	assert.Equal(t, []string{"process.exec", "process.exit"}, o.filter.GetEventNames())
	assert.Equal(t, []string{"block-shadow"}, o.filter.GetPolicyNames())
	assert.Equal(t, `attributes["process.user.id"] == 0`, o.filter.GetCondition())
}

func TestEventsFlagDefaults(t *testing.T) {
	o, err := parseEventsArgs(nil)
	require.NoError(t, err)
	assert.Equal(t, "compact", o.output)
	assert.Equal(t, "auto", o.color)
	assert.False(t, o.timestamps)
	assert.Equal(t, "/var/run/vigil/events.sock", o.socket)
	assert.Empty(t, o.address)
	assert.Equal(t, &eventstreampb.Filter{}, o.filter)

	o, err = parseEventsArgs([]string{"--output", "json"})
	require.NoError(t, err)
	assert.Equal(t, "json", o.output, "--output is -o")
}

// Command lines that cannot run fail before connecting, with exit code 2
// and these words.
func TestEventsFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-o", "yaml"}, `vigil events: -o: must be compact or json, got "yaml"`},
		{[]string{"--color", "blue"}, `vigil events: --color: must be auto, always or never, got "blue"`},
		{[]string{"--pods", "x("}, "vigil events: --pods \"x(\": error parsing regexp: missing closing ): `x(`"},
		{[]string{"--process", "[z-a]"}, "vigil events: --process \"[z-a]\": error parsing regexp: invalid character class range: `z-a`"},
		{[]string{"--event", "process.exce"}, `vigil events: --event "process.exce": unknown event; known events: ` +
			`enforcement.action, process.exec, process.exit, process.kprobe, process.lsm, process.loader, process.tracepoint, process.uprobe, process.usdt`},
		{[]string{"--namespace", "a,,b"}, "vigil events: --namespace: must not be empty"},
		{[]string{"--socket", "/a", "--address", "127.0.0.1:4320"}, "vigil events: --socket and --address exclude each other: give one"},
		{[]string{"--address", "127.0.0.1"}, `vigil events: --address: must be HOST:PORT, got "127.0.0.1"`},
		{[]string{"--address", "127.0.0.1:4320", "--ca-file", "ca.crt"},
			"vigil events: --address needs --ca-file, --cert-file and --key-file: the collector's TCP endpoint only admits clients with a certificate"},
		{[]string{"--cert-file", "me.crt"}, "vigil events: --ca-file, --cert-file and --key-file apply to --address only"},
		{[]string{"xwing"}, `vigil events: unexpected argument "xwing": filters are flags, such as --pods xwing`},
		{[]string{"--nope"}, "vigil events: flag provided but not defined: -nope"},
		{[]string{"--pods"}, "vigil events: flag needs an argument: -pods"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runEvents(context.Background(), tt.args, &stdout, &stderr)
			assert.Equal(t, 2, code)
			assert.Equal(t, tt.want+"\nrun 'vigil events -h' for usage\n", stderr.String())
			assert.Empty(t, stdout.String())
		})
	}
}

func TestEventsHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 0, runEvents(context.Background(), []string{"-h"}, &stdout, &stderr))
	assert.Equal(t, eventsUsage, stderr.String())
	// The same through the command table.
	stderr.Reset()
	assert.Equal(t, 0, run([]string{"events", "--help"}, &stdout, &stderr))
	assert.Equal(t, eventsUsage, stderr.String())
}

func TestEventsMissingSocket(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "events.sock")
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 1, runEvents(context.Background(), []string{"--socket", socket}, &stdout, &stderr))
	assert.Equal(t, "vigil events: no event stream at "+socket+": the socket does not exist; "+
		"is the collector running, with the event_stream exporter in a logs pipeline?\n", stderr.String())
}

func TestEventsNobodyListening(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "events.sock")
	// A socket file whose collector is gone.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	require.NoError(t, err)
	l.SetUnlinkOnClose(false)
	require.NoError(t, l.Close())

	var stdout, stderr bytes.Buffer
	assert.Equal(t, 1, runEvents(context.Background(), []string{"--socket", socket}, &stdout, &stderr))
	assert.Equal(t, "vigil events: nothing listens on "+socket+" (connection refused); is the collector running?\n", stderr.String())
}

// TestEventsPermissionDenied runs this test binary again as nobody against
// a collector's socket.
func TestEventsPermissionDenied(t *testing.T) {
	if socket := os.Getenv("VIGIL_EVENTS_UNPRIVILEGED_SOCKET"); socket != "" {
		code := runEvents(context.Background(), []string{"--socket", socket}, io.Discard, os.Stdout)
		fmt.Printf("exit %d\n", code)
		return
	}
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "switching to an unprivileged user needs root")
	}
	dir, err := os.MkdirTemp("", "vigil-events-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "vigil.test")
	self, err := os.ReadFile("/proc/self/exe")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, self, 0o755))
	socket := filepath.Join(dir, "events.sock")
	startStream(t, socket, nil)

	cmd := exec.Command(bin, "-test.run=^TestEventsPermissionDenied$")
	cmd.Env = append(os.Environ(), "VIGIL_EVENTS_UNPRIVILEGED_SOCKET="+socket)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.CombinedOutput()
	got, _, _ := strings.Cut(string(out), "PASS")
	assert.Equal(t, "vigil events: "+socket+": permission denied: the event stream is for root; "+
		"run vigil events as root, or in the collector's pod (kubectl exec ds/vigil -- vigil events)\nexit 1\n", got)
}

// stream is a real event_stream exporter, created by its factory.
type stream struct {
	exporter.Logs
	logs *observer.ObservedLogs
}

func startStream(t *testing.T, socket string, mutate func(*eventstreamexporter.Config)) *stream {
	t.Helper()
	f := eventstreamexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*eventstreamexporter.Config)
	cfg.Socket = socket
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	core, logs := observer.New(zap.InfoLevel)
	set := exportertest.NewNopSettings(f.Type())
	set.Logger = zap.New(core)
	exp, err := f.CreateLogs(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	s := &stream{Logs: exp, logs: logs}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

// syncBuffer is a bytes.Buffer the command writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cli is `vigil events` running in the background.
type cli struct {
	stderr     *syncBuffer
	subscribed chan struct{}
	code       chan int
	cancel     context.CancelFunc
}

// startCLI runs the command with args, writing to stdout, and waits until
// its first subscription is live.
func startCLI(t *testing.T, stdout io.Writer, args ...string) *cli {
	t.Helper()
	o, err := parseEventsArgs(args)
	require.NoError(t, err)
	c := &cli{stderr: &syncBuffer{}, subscribed: make(chan struct{}, 16), code: make(chan int, 1)}
	f, err := newFollower(o, stdout, c.stderr)
	require.NoError(t, err)
	f.subscribed = func() { c.subscribed <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { c.code <- f.run(ctx) }()
	t.Cleanup(func() { c.stop(t) })
	c.waitSubscribed(t)
	return c
}

func (c *cli) waitSubscribed(t *testing.T) {
	t.Helper()
	select {
	case <-c.subscribed:
	case code := <-c.code:
		t.Fatalf("vigil events exited with %d before subscribing:\n%s", code, c.stderr)
	}
}

// stop interrupts the command as Ctrl-C does and returns its exit code.
func (c *cli) stop(t *testing.T) int {
	c.cancel()
	code, ok := <-c.code
	if ok {
		close(c.code)
		return code
	}
	return 0
}

// execs builds one resource with an exec and an exit for each argv, the
// way the receiver and k8s_workload emit them.
func execs(pod string, argvs ...[]string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr(event.AttrHostName, "node-1")
	res.PutStr(event.AttrK8sNamespace, "default")
	res.PutStr(event.AttrK8sPodName, pod)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(event.ScopeName)
	for i, argv := range argvs {
		for _, name := range []string{event.NameProcessExec, event.NameProcessExit} {
			lr := sl.LogRecords().AppendEmpty()
			lr.SetEventName(name)
			lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Date(2026, 11, 27, 10, 0, i, 5, time.UTC)))
			attrs := lr.Attributes()
			attrs.PutStr(event.AttrProcessExecutablePath, "/usr/bin/"+argv[0])
			args := attrs.PutEmptySlice(event.AttrProcessCommandArgs)
			for _, a := range argv {
				args.AppendEmpty().SetStr(a)
			}
			if name == event.NameProcessExit {
				attrs.PutInt(event.AttrProcessExitCode, int64(i))
			}
			lr.Body().SetStr(name + " " + strings.Join(argv, " "))
		}
	}
	return ld
}

// lines waits until out holds n complete lines and returns them.
func lines(t *testing.T, out *syncBuffer, n int) []string {
	t.Helper()
	var got []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		got = strings.SplitAfter(out.String(), "\n")
		got = got[:len(got)-1] // what follows the last newline
		if len(got) >= n {
			for i := range got {
				got[i] = strings.TrimSuffix(got[i], "\n")
			}
			return got
		}
	}
	t.Fatalf("wanted %d lines, got:\n%s", n, out)
	return nil
}

func TestEventsCompactIsTheCompactExportersOutput(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "events.sock")
	exp := startStream(t, socket, nil)

	// The compact exporter, writing the same records to a file.
	cf := compactexporter.NewFactory()
	ccfg := cf.CreateDefaultConfig().(*compactexporter.Config)
	ccfg.Output = filepath.Join(dir, "compact.log")
	ccfg.Color = compactexporter.ColorNever
	compact, err := cf.CreateLogs(context.Background(), exportertest.NewNopSettings(cf.Type()), ccfg)
	require.NoError(t, err)
	require.NoError(t, compact.Start(context.Background(), componenttest.NewNopHost()))

	out := &syncBuffer{}
	startCLI(t, out, "--socket", socket, "--color", "never")
	ld := execs("xwing", []string{"curl", "https://ebpf.io"}, []string{"sh", "-c", "x\n🚀 forged\x1b[2J"})
	require.NoError(t, exp.ConsumeLogs(context.Background(), ld))
	require.NoError(t, compact.ConsumeLogs(context.Background(), ld))
	require.NoError(t, compact.Shutdown(context.Background()))

	want, err := os.ReadFile(ccfg.Output)
	require.NoError(t, err)
	got := lines(t, out, 4)
	assert.Equal(t, string(want), strings.Join(got, "\n")+"\n")
	assert.Equal(t, "💥 exit    default/xwing /usr/bin/curl https://ebpf.io 0", got[1])
}

func TestEventsCompactWithColorAndTimestamps(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "events.sock")
	exp := startStream(t, socket, nil)
	out := &syncBuffer{}
	startCLI(t, out, "--socket", socket, "--color", "always", "--timestamps")
	ld := execs("xwing", []string{"curl", "https://ebpf.io"})
	require.NoError(t, exp.ConsumeLogs(context.Background(), ld))

	rl := ld.ResourceLogs().At(0)
	first := rl.ScopeLogs().At(0).LogRecords().At(0)
	assert.Equal(t, "2026-11-27T10:00:00.000000005Z "+event.Compact(rl.Resource().Attributes(), first, true), lines(t, out, 2)[0])
}

func TestEventsJSONIsOneOTLPRecordPerLine(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "events.sock")
	exp := startStream(t, socket, nil)
	out := &syncBuffer{}
	startCLI(t, out, "--socket", socket, "-o", "json", "--event", "process.exit")
	require.NoError(t, exp.ConsumeLogs(context.Background(), execs("xwing", []string{"curl", "https://ebpf.io"}, []string{"ls", "/"})))

	got := lines(t, out, 2)
	for i, line := range got {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs([]byte(line))
		require.NoError(t, err, line)
		require.Equal(t, 1, ld.LogRecordCount(), "one record per line")
		rl := ld.ResourceLogs().At(0)
		pod, _ := rl.Resource().Attributes().Get(event.AttrK8sPodName)
		assert.Equal(t, "xwing", pod.Str(), "with its resource attributes")
		assert.Equal(t, event.ScopeName, rl.ScopeLogs().At(0).Scope().Name(), "and its scope")
		lr := rl.ScopeLogs().At(0).LogRecords().At(0)
		assert.Equal(t, event.NameProcessExit, lr.EventName())
		code, _ := lr.Attributes().Get(event.AttrProcessExitCode)
		assert.Equal(t, int64(i), code.Int())
	}
}

func TestEventsFiltersReachTheCollector(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "events.sock")
	exp := startStream(t, socket, nil)
	out := &syncBuffer{}
	startCLI(t, out, "--socket", socket, "--color", "never", "--pods", "^x", "--process", "/ls$", "--event", "process.exec")
	require.NoError(t, exp.ConsumeLogs(context.Background(), execs("tiefighter", []string{"ls", "/empire"})))
	require.NoError(t, exp.ConsumeLogs(context.Background(), execs("xwing", []string{"curl", "https://ebpf.io"}, []string{"ls", "/rebels"})))
	require.NoError(t, exp.ConsumeLogs(context.Background(), execs("xwing", []string{"ls", "/last"})))
	assert.Equal(t, []string{
		"🚀 process default/xwing /usr/bin/ls /rebels",
		"🚀 process default/xwing /usr/bin/ls /last",
	}, lines(t, out, 2))
}

func TestEventsBadConditionNamesTheFlag(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "events.sock")
	startStream(t, socket, nil)
	var stdout, stderr bytes.Buffer
	code := runEvents(context.Background(), []string{"--socket", socket, "--condition", `attributes["a"] ==`}, &stdout, &stderr)
	assert.Equal(t, 2, code)
	assert.Equal(t, `vigil events: --condition: 1:19: condition has invalid syntax: (expected Field ("." Field)*)`+"\n", stderr.String())

	stderr.Reset()
	code = runEvents(context.Background(), []string{"--socket", socket, "--condition", `IsSomething(attributes["a"])`}, &stdout, &stderr)
	assert.Equal(t, 2, code)
	assert.Equal(t, "vigil events: --condition: 1:1: condition failed to parse near `IsSomethin`: "+
		`undefined function "IsSomething"`+"\n", stderr.String())
}

func TestEventsReconnectsWhenTheCollectorRestarts(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "events.sock")
	first := startStream(t, socket, nil)
	out := &syncBuffer{}
	c := startCLI(t, out, "--socket", socket, "--color", "never")
	require.NoError(t, first.ConsumeLogs(context.Background(), execs("xwing", []string{"before"})))
	lines(t, out, 2)

	require.NoError(t, first.Shutdown(context.Background()))
	second := startStream(t, socket, nil)
	c.waitSubscribed(t)
	require.NoError(t, second.ConsumeLogs(context.Background(), execs("xwing", []string{"after"})))
	assert.Equal(t, []string{
		"🚀 process default/xwing /usr/bin/before",
		"💥 exit    default/xwing /usr/bin/before 0",
		"🚀 process default/xwing /usr/bin/after",
		"💥 exit    default/xwing /usr/bin/after 0",
	}, lines(t, out, 4))
	assert.Equal(t, "vigil events: lost the event stream: event_stream exporter: the collector is shutting down; reconnecting\n"+
		"vigil events: reconnected to "+socket+"; events in between were not seen\n", c.stderr.String())
	assert.Equal(t, 0, c.stop(t), "Ctrl-C ends it cleanly")
}

// An output that stops moving (a terminal scrolled back, a pipe nobody
// reads) makes the command stop receiving, while the collector goes on; the
// exporter drops what does not fit the client's buffer, and when the output
// moves again the command says how many events it missed. Every event is
// either printed or counted.
func TestEventsReportsMissedEvents(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "events.sock")
	exp := startStream(t, socket, func(c *eventstreamexporter.Config) { c.BufferSize = 64 })
	pr, pw := io.Pipe()
	t.Cleanup(func() { pr.Close() })
	c := startCLI(t, pw, "--socket", socket, "--color", "never")

	total := 0
	for exp.logs.FilterMessageSnippet("is not keeping up").Len() == 0 {
		require.Less(t, total, 1_000_000, "the exporter never dropped anything for the stuck client")
		// Batches well under the buffer: records are dropped only
		// because the output stopped moving.
		argvs := make([][]string, 10)
		for i := range argvs {
			argvs[i] = []string{"true", strconv.Itoa(total/2 + i)}
		}
		require.NoError(t, exp.ConsumeLogs(context.Background(), execs("xwing", argvs...)))
		total += 2 * len(argvs)
	}

	// Read again, until every event is accounted for: the stream may end
	// with a missed count rather than a line.
	var printed atomic.Int64
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			printed.Add(1)
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); int(printed.Load())+missedIn(c.stderr.String()) < total; time.Sleep(10 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "printed %d and missed %d of %d events", printed.Load(), missedIn(c.stderr.String()), total)
	}
	missed := missedIn(c.stderr.String())
	t.Logf("%d events: %d printed, %d missed", total, printed.Load(), missed)
	assert.Positive(t, missed, "the command was told it missed events")
	assert.Positive(t, printed.Load(), "and printed those the buffers held")
	assert.Equal(t, total, int(printed.Load())+missed, "every event printed or counted, none twice")
	assert.Regexp(t, `^(vigil events: missed \d+ events? here: they came faster than this output was read\n)+$`, c.stderr.String())
}

var missedRe = regexp.MustCompile(`missed (\d+) event`)

// missedIn sums the missed counts the command reported.
func missedIn(stderr string) int {
	n := 0
	for _, m := range missedRe.FindAllStringSubmatch(stderr, -1) {
		k, _ := strconv.Atoi(m[1])
		n += k
	}
	return n
}
