package distribution_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vigilsec/vigil/exporter/eventstreamexporter/eventstreampb"
	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/testenv"
)

// streamSetup is a collector whose logs pipeline ends in compact (a file),
// file (OTLP JSON) and event_stream, side by side as in the default
// configuration, and the paths they write to.
type streamSetup struct {
	*testenv.Collector
	dir, socket, compactOut, fileOut string
}

func startStreamCollector(t *testing.T, socket string, bufferSize int) *streamSetup {
	t.Helper()
	dir := t.TempDir()
	s := &streamSetup{
		dir:        dir,
		socket:     socket,
		compactOut: filepath.Join(dir, "compact.log"),
		fileOut:    filepath.Join(dir, "events.jsonl"),
	}
	if s.socket == "" {
		// In a directory that does not exist yet: the exporter makes it.
		s.socket = filepath.Join(dir, "run", "vigil", "events.sock")
	}
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `
receivers:
  ebpf:
processors:
  batch:
    timeout: 100ms
exporters:
  compact:
    output: %s
    color: never
  file:
    path: %s
    format: json
  event_stream:
    socket: %s
    buffer_size: %d
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [ebpf]
      processors: [batch]
      exporters: [compact, file, event_stream]
`, s.compactOut, s.fileOut, s.socket, bufferSize), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Collector = startCollector(t, nil, "--config", config)
	return s
}

// vigilCLI builds cmd/vigil, the command an operator runs.
func vigilCLI(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		testenv.Unavailable(t, "building cmd/vigil needs the go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "vigil")
	out, err := exec.Command(goTool, "build", "-o", bin, "../cmd/vigil").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ../cmd/vigil: %v\n%s", err, out)
	}
	return bin
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// completeLines are the lines of s up to its last newline.
func completeLines(s string) []string {
	i := strings.LastIndexByte(s, '\n')
	if i < 0 {
		return nil
	}
	return strings.Split(s[:i], "\n")
}

// followEvents runs `vigil events` with args until the test ends.
func followEvents(t *testing.T, cli string, args ...string) (stdout, stderr *lockedBuffer) {
	t.Helper()
	stdout, stderr = &lockedBuffer{}, &lockedBuffer{}
	cmd := exec.Command(cli, append([]string{"events"}, args...)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			t.Errorf("vigil events %s: %v; stderr:\n%s", strings.Join(args, " "), err, stderr)
		}
	})
	return stdout, stderr
}

// copyBinary copies /bin/echo to dir/name: a binary path no other process
// on the machine runs, for filters to select exactly this test's processes.
func copyBinary(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile("/bin/echo")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func runProcess(t *testing.T, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdout = io.Discard
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
}

// Two operators follow the same collector with different filters, one by
// binary (compact), one by event name and an OTTL condition (json); each
// sees exactly the events of real processes its filter selects, in the
// order they happened, and the compact lines are the compact exporter's.
func TestEventStreamClientsSeeTheirEventsInOrder(t *testing.T) {
	s := startStreamCollector(t, "", 4096)
	cli := vigilCLI(t)
	bins := t.TempDir()
	binA := copyBinary(t, bins, "vigil-stream-a")
	binB := copyBinary(t, bins, "vigil-stream-b")
	marker := fmt.Sprintf("vigil-stream-%d", time.Now().UnixNano())

	byBinary, byBinaryErr := followEvents(t, cli, "--socket", s.socket, "--color", "never",
		"--process", "^"+regexp.QuoteMeta(binA)+"$")
	byEvent, byEventErr := followEvents(t, cli, "--socket", s.socket, "-o", "json",
		"--event", event.NameProcessExit,
		"--condition", fmt.Sprintf(`IsMatch(attributes["process.command_line"], "%s")`, marker))

	// Both are subscribed once each has seen a warm-up process.
	eventually(t, "both clients subscribed", func() (bool, string) {
		runProcess(t, binA, marker, "warmup")
		ok := strings.Contains(byBinary.String(), " warmup\n") && strings.Contains(byEvent.String(), " warmup")
		return ok, "binary:\n" + byBinary.String() + byBinaryErr.String() + "\nevent:\n" + byEvent.String() + byEventErr.String()
	})

	const n = 10
	for i := range n {
		runProcess(t, binA, marker, fmt.Sprint(i))
		runProcess(t, binB, marker, fmt.Sprint(i))
	}
	runProcess(t, binA, marker, "end")

	hostname, _ := os.Hostname()
	var wantBinary, wantExits []string
	for _, i := range append(slicesOf(n), "end") {
		wantBinary = append(wantBinary,
			fmt.Sprintf("🚀 process %s %s %s %s", hostname, binA, marker, i),
			fmt.Sprintf("💥 exit    %s %s %s %s 0", hostname, binA, marker, i))
		wantExits = append(wantExits, fmt.Sprintf("%s %s %s", binA, marker, i))
		if i != "end" {
			wantExits = append(wantExits, fmt.Sprintf("%s %s %s", binB, marker, i))
		}
	}

	notWarmup := func(lines []string) []string {
		return slices.DeleteFunc(lines, func(l string) bool { return strings.Contains(l, " warmup") })
	}
	eventually(t, "the binary filter's lines", func() (bool, string) {
		got := notWarmup(completeLines(byBinary.String()))
		return len(got) >= len(wantBinary), byBinary.String()
	})
	if got := notWarmup(completeLines(byBinary.String())); !slices.Equal(got, wantBinary) {
		t.Errorf("--process %s printed\n%s\nwant\n%s", binA, strings.Join(got, "\n"), strings.Join(wantBinary, "\n"))
	}
	// The same lines as the compact exporter's, for the same events.
	eventually(t, "the compact exporter's lines", func() (bool, string) {
		b, _ := os.ReadFile(s.compactOut)
		var ours []string
		for _, l := range notWarmup(completeLines(string(b))) {
			if strings.Contains(l, " "+binA+" ") {
				ours = append(ours, l)
			}
		}
		return slices.Equal(ours, wantBinary), strings.Join(ours, "\n")
	})

	eventually(t, "the event filter's records", func() (bool, string) {
		got := notWarmup(completeLines(byEvent.String()))
		return len(got) >= len(wantExits), byEvent.String()
	})
	var gotExits []string
	for _, line := range notWarmup(completeLines(byEvent.String())) {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs([]byte(line))
		if err != nil || ld.LogRecordCount() != 1 {
			t.Fatalf("-o json printed a line that is not one OTLP JSON record (%v):\n%s", err, line)
		}
		rl := ld.ResourceLogs().At(0)
		if host, _ := rl.Resource().Attributes().Get(event.AttrHostName); host.Str() != hostname {
			t.Errorf("record without its resource's host.name: %s", line)
		}
		lr := rl.ScopeLogs().At(0).LogRecords().At(0)
		if lr.EventName() != event.NameProcessExit {
			t.Errorf("--event process.exit printed a %s record: %s", lr.EventName(), line)
		}
		cmdline, _ := lr.Attributes().Get(event.AttrProcessCommandLine)
		path, _ := lr.Attributes().Get(event.AttrProcessExecutablePath)
		// command_line starts with argv[0], which is the binary's path
		// here; compare with the path spelled out.
		_, args, _ := strings.Cut(cmdline.Str(), " ")
		gotExits = append(gotExits, path.Str()+" "+args)
	}
	if !slices.Equal(gotExits, wantExits) {
		t.Errorf("--event process.exit --condition ... printed exits of\n%s\nwant\n%s", strings.Join(gotExits, "\n"), strings.Join(wantExits, "\n"))
	}
	for _, stderr := range []*lockedBuffer{byBinaryErr, byEventErr} {
		if stderr.String() != "" {
			t.Errorf("vigil events wrote to stderr:\n%s", stderr)
		}
	}
}

func slicesOf(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprint(i)
	}
	return s
}

// A client that subscribes and then stops reading: the collector goes on
// writing every event to the file exporter on the same pipeline, and when
// the client reads again it is told exactly how many events it missed.
func TestEventStreamStuckClientDoesNotDelayThePipeline(t *testing.T) {
	// Larger than a batch (100ms of the processes below), so that events
	// are missed only because the client stopped reading, once its buffer
	// and the transport behind it are full.
	const bufferSize = 512
	s := startStreamCollector(t, "", bufferSize)
	bin := copyBinary(t, t.TempDir(), "vigil-stream-stuck")

	// Small HTTP/2 windows (which also turns off their growth), so that
	// a few hundred events fill the transport in front of the client.
	conn, err := grpc.NewClient("unix://"+s.socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := eventstreampb.NewEventStreamClient(conn).Subscribe(ctx, &eventstreampb.SubscribeRequest{
		Filter: &eventstreampb.Filter{ProcessRegex: []string{"^" + regexp.QuoteMeta(bin) + "$"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if md, err := stream.Header(); err != nil || md == nil {
		_, err = stream.Recv()
		t.Fatalf("subscription refused: %v", err)
	}

	// The client reads nothing now. Run processes until the collector
	// says the client misses events.
	processes := 0
	for !strings.Contains(s.Stderr(), "is not keeping up") {
		if processes >= 20000 {
			t.Fatalf("%d processes and the stuck client misses nothing; collector stderr:\n%s", processes, s.Stderr())
		}
		for range 50 {
			runProcess(t, bin, "stuck", fmt.Sprint(processes))
			processes++
		}
	}

	// The pipeline is not waiting for the client: a process run now
	// reaches the file exporter while the client still reads nothing.
	runProcess(t, bin, "stuck", "last")
	processes++
	eventually(t, "the last process's exit in the file exporter's output", func() (bool, string) {
		b, _ := os.ReadFile(s.fileOut)
		return strings.Contains(string(b), bin+" stuck last") && exitsIn(b, bin+" stuck last") == 1, fmt.Sprintf("%d bytes", len(b))
	})

	// Read again: every event of the test's processes (an exec and an exit
	// each) is either received or counted as missed.
	var received, missed int
	for received+missed < 2*processes {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("after %d received and %d missed of %d: %v", received, missed, 2*processes, status.Convert(err).Message())
		}
		missed += int(resp.GetMissed())
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(resp.GetLogs())
		if err != nil {
			t.Fatal(err)
		}
		received += ld.LogRecordCount()
	}
	t.Logf("%d events of %d processes: %d received, %d missed", 2*processes, processes, received, missed)
	if received+missed != 2*processes {
		t.Errorf("received %d and missed %d events of %d", received, missed, 2*processes)
	}
	if missed == 0 || received <= bufferSize {
		t.Errorf("want events missed, and more received than the buffer of %d holds; received %d, missed %d", bufferSize, received, missed)
	}

	// Caught up, the client gets what happens next, and misses nothing.
	runProcess(t, bin, "stuck", "after")
	var after []string
	for len(after) < 2 {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetMissed() != 0 {
			t.Fatalf("missed %d more events after catching up", resp.GetMissed())
		}
		ld, _ := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(resp.GetLogs())
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					after = append(after, lr.Body().Str())
				}
			}
		}
	}
	if want := []string{"process " + bin + " stuck after", "exit " + bin + " stuck after 0"}; !slices.Equal(after, want) {
		t.Errorf("after catching up the client got\n%s\nwant\n%s", strings.Join(after, "\n"), strings.Join(want, "\n"))
	}
}

// exitsIn counts the process.exit records in OTLP JSON lines whose body
// contains what.
func exitsIn(jsonl []byte, what string) int {
	n := 0
	for _, line := range completeLines(string(jsonl)) {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs([]byte(line))
		if err != nil {
			continue
		}
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if lr.EventName() == event.NameProcessExit && strings.Contains(lr.Body().Str(), what) {
						n++
					}
				}
			}
		}
	}
	return n
}

// The collector creates the socket 0600 and owned by root, in a directory
// it creates 0700; a client that is not root is refused (this test binary,
// run again as nobody).
func TestEventStreamSocketIsForRootOnly(t *testing.T) {
	if socket := os.Getenv("VIGIL_E2E_UNPRIVILEGED_SOCKET"); socket != "" {
		conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err == nil {
			defer conn.Close()
			var stream grpc.ServerStreamingClient[eventstreampb.SubscribeResponse]
			stream, err = eventstreampb.NewEventStreamClient(conn).Subscribe(context.Background(), &eventstreampb.SubscribeRequest{})
			if err == nil {
				_, err = stream.Recv()
			}
		}
		fmt.Print(status.Convert(err).Message())
		return
	}
	testenv.RequireBPF(t)
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "checking root-only access needs the collector to run as root")
	}

	s := startStreamCollector(t, "", 4096)
	fi, err := os.Lstat(s.socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("socket %s: mode %v, uid %d; want a socket, 0600, uid 0", s.socket, fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
	}
	if di, err := os.Stat(filepath.Dir(s.socket)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("the directory the exporter created: %v, %v; want 0700", di.Mode(), err)
	}

	// Another collector, on a socket in a directory anyone may traverse,
	// so that only the socket's own mode keeps nobody out.
	dir, err := os.MkdirTemp("", "vigil-e2e-stream-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	open := startStreamCollector(t, filepath.Join(dir, "events.sock"), 4096)
	bin := filepath.Join(dir, "distribution.test")
	self, _ := os.ReadFile("/proc/self/exe")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestEventStreamSocketIsForRootOnly$")
	cmd.Env = append(os.Environ(), "VIGIL_E2E_UNPRIVILEGED_SOCKET="+open.socket)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatal(err)
	}
	if got, _, _ := strings.Cut(string(out), "PASS"); !strings.Contains(got, "connect: permission denied") {
		t.Errorf("a client running as nobody got:\n%s\nwant a refused connection (permission denied)", out)
	}
}
