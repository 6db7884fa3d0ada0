package eventstreamexporter

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vigilsec/vigil/exporter/eventstreamexporter/eventstreampb"
	"github.com/vigilsec/vigil/exporter/eventstreamexporter/internal/metadatatest"
	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/privfile"
	"github.com/vigilsec/vigil/internal/testenv"
)

// rec describes one record of a test batch.
type rec struct {
	pod, namespace, container string // resource; empty pod means the host
	name                      string // event name
	binary                    string
	seq                       int // process.pid, to identify the record
	policy                    string
	uid                       int
}

// batch builds logs the way the receiver and k8s_workload shape them: one
// resource per container (or the host), one scope, records in order.
func batch(recs ...rec) plog.Logs {
	ld := plog.NewLogs()
	byResource := map[string]plog.LogRecordSlice{}
	for _, r := range recs {
		key := r.namespace + "/" + r.pod + "/" + r.container
		records, ok := byResource[key]
		if !ok {
			rl := ld.ResourceLogs().AppendEmpty()
			res := rl.Resource().Attributes()
			res.PutStr(event.AttrHostName, "node-1")
			if r.container != "" {
				res.PutStr(event.AttrContainerID, r.container)
			}
			if r.pod != "" {
				res.PutStr(event.AttrK8sNamespace, r.namespace)
				res.PutStr(event.AttrK8sPodName, r.pod)
			}
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(event.ScopeName)
			sl.Scope().SetVersion("test")
			records = sl.LogRecords()
			byResource[key] = records
		}
		lr := records.AppendEmpty()
		lr.SetEventName(r.name)
		attrs := lr.Attributes()
		attrs.PutInt(event.AttrProcessPID, int64(r.seq))
		attrs.PutStr(event.AttrProcessExecutablePath, r.binary)
		args := attrs.PutEmptySlice(event.AttrProcessCommandArgs)
		args.AppendEmpty().SetStr(filepath.Base(r.binary))
		args.AppendEmpty().SetStr(fmt.Sprint(r.seq))
		attrs.PutInt(event.AttrProcessUserID, int64(r.uid))
		if r.policy != "" {
			attrs.PutStr(event.AttrSecurityRuleName, r.policy)
		}
		if r.name == event.NameProcessExit {
			attrs.PutInt(event.AttrProcessExitCode, 0)
		}
	}
	return ld
}

// received is one record a client got, with what it needs to check it.
type received struct {
	seq       int
	name      string
	pod       string
	scopeName string
}

// startExporter creates and starts, through the factory, an exporter on a
// socket in a fresh directory.
func startExporter(t *testing.T, mutate func(*Config)) (exporter.Logs, string) {
	t.Helper()
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Socket = filepath.Join(t.TempDir(), "run", "events.sock")
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { assert.NoError(t, exp.Shutdown(context.Background())) })
	return exp, cfg.Socket
}

// subscription is a live Subscribe call.
type subscription struct {
	stream grpc.ServerStreamingClient[eventstreampb.SubscribeResponse]
	cancel context.CancelFunc
}

// subscribe dials the socket, subscribes with f and waits until the server
// has accepted the filter, so that every batch consumed afterwards reaches
// the client.
func subscribe(t *testing.T, socket string, f *eventstreampb.Filter, opts ...grpc.DialOption) (*subscription, error) {
	t.Helper()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	conn, err := grpc.NewClient("unix://"+socket, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := eventstreampb.NewEventStreamClient(conn).Subscribe(ctx, &eventstreampb.SubscribeRequest{Filter: f})
	if err != nil {
		return nil, err
	}
	if err := waitAccepted(stream); err != nil {
		return nil, err
	}
	return &subscription{stream: stream, cancel: cancel}, nil
}

// waitAccepted waits for the headers the server sends once it accepted
// the filter. A call that fails ends without headers; its status comes
// from Recv.
func waitAccepted(stream grpc.ServerStreamingClient[eventstreampb.SubscribeResponse]) error {
	md, err := stream.Header()
	if err == nil && md == nil {
		_, err = stream.Recv()
	}
	return err
}

func mustSubscribe(t *testing.T, socket string, f *eventstreampb.Filter, opts ...grpc.DialOption) *subscription {
	t.Helper()
	s, err := subscribe(t, socket, f, opts...)
	require.NoError(t, err)
	return s
}

// next receives one response and decodes its records.
func (s *subscription) next(t *testing.T) (recs []received, missed uint64) {
	t.Helper()
	resp, err := s.stream.Recv()
	require.NoError(t, err)
	ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(resp.GetLogs())
	require.NoError(t, err)
	for _, rl := range ld.ResourceLogs().All() {
		pod := str(rl.Resource().Attributes(), event.AttrK8sPodName)
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				pid, _ := lr.Attributes().Get(event.AttrProcessPID)
				recs = append(recs, received{int(pid.Int()), lr.EventName(), pod, sl.Scope().Name()})
			}
		}
	}
	return recs, resp.GetMissed()
}

// collect receives until it has n records, failing on a missed count.
func (s *subscription) collect(t *testing.T, n int) []received {
	t.Helper()
	var all []received
	for len(all) < n {
		recs, missed := s.next(t)
		require.Zero(t, missed)
		all = append(all, recs...)
	}
	return all
}

func seqs(recs []received) []int {
	out := make([]int, len(recs))
	for i, r := range recs {
		out[i] = r.seq
	}
	return out
}

func TestSocketIsPrivate(t *testing.T) {
	_, socket := startExporter(t, nil)
	fi, err := os.Lstat(socket)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSocket, fi.Mode().Type())
	assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
	assert.Equal(t, uint32(os.Geteuid()), fi.Sys().(*syscall.Stat_t).Uid, "owned by the collector's user")

	dir, err := os.Stat(filepath.Dir(socket))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o700), dir.Mode().Perm(), "a directory the exporter creates is private")

	leftovers, _ := filepath.Glob(socket + ".*")
	assert.Empty(t, leftovers, "no temporary socket is left behind")
}

func TestExistingSocketDirectoryKeepsItsMode(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	_, socket := startExporter(t, func(c *Config) { c.Socket = filepath.Join(dir, "events.sock") })
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o755), fi.Mode().Perm())
	fi, err = os.Lstat(socket)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
}

func TestShutdownRemovesTheSocket(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Socket = filepath.Join(t.TempDir(), "events.sock")
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	require.FileExists(t, cfg.Socket)
	require.NoError(t, exp.Shutdown(context.Background()))
	assert.NoFileExists(t, cfg.Socket)
}

func TestShutdownWithoutStart(t *testing.T) {
	f := NewFactory()
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), f.CreateDefaultConfig())
	require.NoError(t, err)
	assert.NoError(t, exp.Shutdown(context.Background()))
}

func TestStartReplacesAStaleSocket(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "events.sock")
	// A socket file nobody listens on, as a killed collector leaves it.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	require.NoError(t, err)
	l.SetUnlinkOnClose(false)
	require.NoError(t, l.Close())

	startExporter(t, func(c *Config) { c.Socket = socket })
	mustSubscribe(t, socket, nil)
}

func TestStartRefusesASocketInUse(t *testing.T) {
	_, socket := startExporter(t, nil)

	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Socket = socket
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	err = exp.Start(context.Background(), componenttest.NewNopHost())
	assert.EqualError(t, err, fmt.Sprintf("event_stream exporter: socket %s: %s is in use: another process listens on it", socket, socket))
	require.NoError(t, exp.Shutdown(context.Background()))
	mustSubscribe(t, socket, nil) // the first exporter still serves
}

func TestStartRefusesToReplaceAFile(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "events.sock")
	require.NoError(t, os.WriteFile(socket, []byte("not a socket"), 0o600))

	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Socket = socket
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	err = exp.Start(context.Background(), componenttest.NewNopHost())
	assert.EqualError(t, err, fmt.Sprintf("event_stream exporter: socket %s: %s exists and is not a socket; remove it or choose another path", socket, socket))
	require.NoError(t, exp.Shutdown(context.Background()))
	b, _ := os.ReadFile(socket)
	assert.Equal(t, "not a socket", string(b))
}

// A stale-looking socket another user left at the path is theirs, not a
// killed collector's: it is refused, not replaced.
func TestStartRefusesASocketOfAnotherUser(t *testing.T) {
	testenv.RequireRoot(t)
	socket := filepath.Join(t.TempDir(), "events.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	require.NoError(t, err)
	l.SetUnlinkOnClose(false)
	require.NoError(t, l.Close())
	require.NoError(t, os.Lchown(socket, 65534, 65534))
	before, err := os.Lstat(socket)
	require.NoError(t, err)

	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Socket = socket
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	err = exp.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorIs(t, err, privfile.ErrUnsafe)
	assert.ErrorContains(t, err, socket+": owned by nobody (uid 65534)")
	require.NoError(t, exp.Shutdown(context.Background()))
	after, err := os.Lstat(socket)
	require.NoError(t, err)
	assert.True(t, os.SameFile(before, after), "the other user's socket was replaced")
}

func TestClientsSeeExactlyTheirRecordsInOrder(t *testing.T) {
	exp, socket := startExporter(t, nil)
	ctx := context.Background()

	byBinary := mustSubscribe(t, socket, &eventstreampb.Filter{ProcessRegex: []string{"/curl$"}})
	byEvent := mustSubscribe(t, socket, &eventstreampb.Filter{EventNames: []string{event.NameProcessExit}})
	byPod := mustSubscribe(t, socket, &eventstreampb.Filter{Namespaces: []string{"default"}, PodRegex: []string{"^xwing"}})
	everything := mustSubscribe(t, socket, nil)

	require.NoError(t, exp.ConsumeLogs(ctx, batch(
		rec{seq: 1, name: event.NameProcessExec, binary: "/usr/bin/curl", pod: "xwing-1", namespace: "default", container: "c1"},
		rec{seq: 2, name: event.NameProcessExec, binary: "/usr/bin/ls", pod: "tiefighter", namespace: "default", container: "c2"},
		rec{seq: 3, name: event.NameProcessExit, binary: "/usr/bin/curl", pod: "xwing-1", namespace: "default", container: "c1"},
		rec{seq: 4, name: event.NameProcessExec, binary: "/usr/bin/curl"}, // the host
	)))
	require.NoError(t, exp.ConsumeLogs(ctx, batch(
		rec{seq: 5, name: event.NameProcessExit, binary: "/usr/bin/ls", pod: "tiefighter", namespace: "default", container: "c2"},
		rec{seq: 6, name: event.NameProcessExit, binary: "/usr/bin/curl"},
		rec{seq: 7, name: event.NameProcessExec, binary: "/usr/bin/curl", pod: "xwing-2", namespace: "prod", container: "c3"},
	)))

	// Resources keep records in the order the batch groups them: per
	// container, then per batch.
	assert.Equal(t, []int{1, 3, 4, 6, 7}, seqs(byBinary.collect(t, 5)))
	assert.Equal(t, []int{3, 5, 6}, seqs(byEvent.collect(t, 3)))
	got := byPod.collect(t, 2)
	assert.Equal(t, []int{1, 3}, seqs(got))
	assert.Equal(t, "xwing-1", got[0].pod, "records come with their resource")
	assert.Equal(t, event.ScopeName, got[0].scopeName, "and their scope")
	assert.Equal(t, []int{1, 3, 2, 4, 5, 6, 7}, seqs(everything.collect(t, 7)))
}

func TestFilterFieldsAreANDed(t *testing.T) {
	exp, socket := startExporter(t, nil)
	s := mustSubscribe(t, socket, &eventstreampb.Filter{
		Namespaces:   []string{"default"},
		ContainerIds: []string{"ABC"},
		EventNames:   []string{event.NameProcessExec, event.NameProcessKprobe},
		PolicyNames:  []string{"block-shadow"},
		Condition:    `attributes["process.user.id"] == 0`,
	})
	require.NoError(t, exp.ConsumeLogs(context.Background(), batch(
		rec{seq: 1, name: event.NameProcessKprobe, policy: "block-shadow", pod: "p", namespace: "default", container: "abcdef"},
		rec{seq: 2, name: event.NameProcessKprobe, policy: "other", pod: "p", namespace: "default", container: "abcdef"},
		rec{seq: 3, name: event.NameProcessKprobe, policy: "block-shadow", pod: "p", namespace: "default", container: "abcdef", uid: 1000},
		rec{seq: 4, name: event.NameProcessExit, policy: "block-shadow", pod: "p", namespace: "default", container: "abcdef"},
		rec{seq: 5, name: event.NameProcessKprobe, policy: "block-shadow", pod: "p", namespace: "kube-system", container: "abc999"},
		rec{seq: 6, name: event.NameProcessKprobe, policy: "block-shadow", pod: "q", namespace: "default", container: "fedcba"},
		rec{seq: 7, name: event.NameProcessExec, policy: "block-shadow", pod: "p", namespace: "default", container: "abcdef"},
	)))
	assert.Equal(t, []int{1, 7}, seqs(s.collect(t, 2)))
}

func TestLargeBatchesAreSplitWithTheirResource(t *testing.T) {
	exp, socket := startExporter(t, nil)
	s := mustSubscribe(t, socket, nil)
	var recs []rec
	for i := range 2*maxRecordsPerMessage + 10 {
		recs = append(recs, rec{seq: i, name: event.NameProcessExec, binary: "/bin/true", pod: "p", namespace: "ns", container: "c"})
	}
	require.NoError(t, exp.ConsumeLogs(context.Background(), batch(recs...)))

	var all []received
	for _, want := range []int{maxRecordsPerMessage, maxRecordsPerMessage, 10} {
		got, missed := s.next(t)
		require.Zero(t, missed)
		require.Len(t, got, want)
		for _, r := range got {
			assert.Equal(t, "p", r.pod)
		}
		all = append(all, got...)
	}
	for i, r := range all {
		require.Equal(t, i, r.seq)
	}
}

// A client that does not read cannot hold the pipeline: ConsumeLogs keeps
// returning, the client's buffer keeps what fits, and when the client reads
// again it gets the buffered records, how many it missed, then what came
// after. Nothing is lost without being counted.
func TestSlowClientMissesRecordsAndIsToldHowMany(t *testing.T) {
	const bufferSize, perBatch = 64, 4
	// The exporter itself rather than the factory's wrapper, to watch the
	// stuck client's buffer.
	cfg := createDefaultConfig().(*Config)
	cfg.Socket = filepath.Join(t.TempDir(), "events.sock")
	cfg.BufferSize = bufferSize
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	e, err := newEventStreamExporter(cfg, tel.NewTelemetrySettings())
	if err != nil {
		t.Fatal(err)
	}
	require.NoError(t, e.start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { e.shutdown(context.Background()) })
	stuck := mustSubscribe(t, cfg.Socket, &eventstreampb.Filter{ProcessRegex: []string{"stuck"}})
	stuckClient := e.hub.snapshot()[0]
	reader := mustSubscribe(t, cfg.Socket, &eventstreampb.Filter{ProcessRegex: []string{"reader"}})

	// Batches much smaller than the buffer, each offered only once the
	// sender has taken the previous one or is blocked with the buffer
	// full: records are missed only because the client stopped reading,
	// once the HTTP/2 windows and socket buffers are full too.
	seq, b := 0, 0
	for stuckClient.totalMissed() == 0 || b%10 != 0 {
		require.Less(t, seq, 1_000_000, "the stuck client never missed a record")
		var recs []rec
		for range perBatch {
			seq++
			recs = append(recs, rec{seq: seq, name: event.NameProcessExec, binary: "/usr/bin/stuck"})
		}
		require.NoError(t, e.consumeLogs(context.Background(), batch(recs...)))
		settle(stuckClient)
		// The other client is served all along.
		require.NoError(t, e.consumeLogs(context.Background(), batch(rec{seq: b, name: event.NameProcessExec, binary: "/usr/bin/reader"})))
		got, missed := reader.next(t)
		require.Zero(t, missed)
		require.Equal(t, []int{b}, seqs(got))
		b++
	}
	total := seq

	// Now read: records come in order, and every gap is announced by a
	// missed count of exactly its size.
	var delivered, missedTotal, last int
	for delivered+missedTotal < total {
		got, missed := stuck.next(t)
		if missed > 0 {
			require.Empty(t, got)
			missedTotal += int(missed)
			last += int(missed)
			continue
		}
		for _, r := range got {
			require.Equal(t, last+1, r.seq, "records arrive in order, gaps only where a missed count says")
			last = r.seq
		}
		delivered += len(got)
	}
	t.Logf("%d records: %d delivered, %d missed", total, delivered, missedTotal)
	assert.Equal(t, total, delivered+missedTotal)
	assert.Positive(t, missedTotal, "the client missed records")
	// At least its buffer's worth: what the transport holds besides
	// depends on when the sender ran, and on a loaded machine it may not
	// have run before the buffer filled.
	assert.GreaterOrEqual(t, delivered, bufferSize, "and got those its buffer held")
	// The collector's telemetry says the same: two clients, and what the
	// stuck one missed (the reader missed nothing).
	metadatatest.AssertEqualExporterEventStreamMissedRecords(t, tel,
		[]metricdata.DataPoint[int64]{{Value: int64(missedTotal)}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualExporterEventStreamClients(t, tel,
		[]metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())

	// Caught up, it misses nothing more.
	require.NoError(t, e.consumeLogs(context.Background(), batch(rec{seq: total + 1, name: event.NameProcessExec, binary: "/usr/bin/stuck"})))
	got, missed := stuck.next(t)
	require.Zero(t, missed)
	assert.Equal(t, []int{total + 1}, seqs(got))
}

// settle waits until c's sender has taken what is queued, or is busy
// sending what it took before (possibly blocked, the client not reading).
func settle(c *client) {
	for {
		c.mu.Lock()
		waiting := 0
		for _, it := range c.items {
			waiting += it.records
		}
		inFlight := c.queued - waiting
		c.mu.Unlock()
		if waiting == 0 || inFlight > 0 {
			return
		}
		runtime.Gosched()
	}
}

func TestInvalidFilterNamesTheField(t *testing.T) {
	_, socket := startExporter(t, nil)
	_, err := subscribe(t, socket, &eventstreampb.Filter{
		PodRegex:     []string{"ok", "x("},
		EventNames:   []string{""},
		ProcessRegex: []string{"[z-a]"},
		Condition:    `attributes["a"] ==`,
	})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), err)

	var violations []string
	for _, d := range st.Details() {
		for _, v := range d.(*errdetails.BadRequest).GetFieldViolations() {
			violations = append(violations, v.GetField()+" | "+v.GetDescription())
		}
	}
	require.Len(t, violations, 4)
	assert.Equal(t, "filter.pod_regex[1] | error parsing regexp: missing closing ): `x(`", violations[0])
	assert.Equal(t, "filter.process_regex[0] | error parsing regexp: invalid character class range: `z-a`", violations[1])
	assert.Equal(t, "filter.event_names[0] | must not be empty", violations[2])
	assert.Equal(t, `filter.condition | 1:19: condition has invalid syntax: (expected Field ("." Field)*)`, violations[3])
	assert.True(t, strings.HasPrefix(st.Message(), "event_stream exporter: invalid filter: filter.pod_regex[1]: error parsing regexp"), st.Message())
}

func TestMaxClients(t *testing.T) {
	_, socket := startExporter(t, func(c *Config) { c.MaxClients = 1 })
	first := mustSubscribe(t, socket, nil)

	_, err := subscribe(t, socket, nil)
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))
	assert.EqualError(t, err, "rpc error: code = ResourceExhausted desc = event_stream exporter: max_clients is 1, and as many clients are subscribed; try again when one leaves")

	first.cancel()
	// The slot frees once the server has seen the first client leave.
	for {
		s, err := subscribe(t, socket, nil)
		if err == nil {
			s.cancel()
			break
		}
		require.Equal(t, codes.ResourceExhausted, status.Code(err))
	}
}

func TestShutdownEndsSubscriptionsWithUnavailable(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Socket = filepath.Join(t.TempDir(), "events.sock")
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	s := mustSubscribe(t, cfg.Socket, nil)

	require.NoError(t, exp.Shutdown(context.Background()))
	_, err = s.stream.Recv()
	assert.Equal(t, codes.Unavailable, status.Code(err), err)
	assert.NoFileExists(t, cfg.Socket)
}

// With no client subscribed, a batch costs the exporter nothing but a
// look at the (empty) client list.
func TestNoClientsCostsNoAllocation(t *testing.T) {
	e, err := newEventStreamExporter(createDefaultConfig().(*Config), componenttest.NewNopTelemetrySettings())
	if err != nil {
		t.Fatal(err)
	}
	ld := batch(rec{seq: 1, name: event.NameProcessExec, binary: "/bin/true"})
	allocs := testing.AllocsPerRun(100, func() {
		_ = e.consumeLogs(context.Background(), ld)
	})
	assert.Zero(t, allocs)
}

// TestNonRootClientIsRefused runs this test binary again as nobody and
// subscribes from there: the socket's mode refuses the connection, and when
// the mode is widened the exporter still refuses the subscription by the
// peer's uid.
func TestNonRootClientIsRefused(t *testing.T) {
	if socket := os.Getenv("VIGIL_EVENTSTREAM_UNPRIVILEGED_SOCKET"); socket != "" {
		_, err := subscribe(t, socket, nil)
		fmt.Print(status.Convert(err).Message())
		return
	}
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "switching to an unprivileged user needs root")
	}
	// A directory nobody may traverse, so only the socket's own mode
	// decides.
	dir, err := os.MkdirTemp("", "vigil-eventstream-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "eventstream.test")
	self, err := os.ReadFile("/proc/self/exe")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, self, 0o755))

	_, socket := startExporter(t, func(c *Config) { c.Socket = filepath.Join(dir, "events.sock") })
	asNobody := func() string {
		cmd := exec.Command(bin, "-test.run=^TestNonRootClientIsRefused$")
		cmd.Env = append(os.Environ(), "VIGIL_EVENTSTREAM_UNPRIVILEGED_SOCKET="+socket)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			t.Fatal(err)
		}
		got, _, _ := strings.Cut(string(out), "PASS")
		return got
	}

	assert.Contains(t, asNobody(), "connect: permission denied")

	require.NoError(t, os.Chmod(socket, 0o666))
	assert.Equal(t, "event_stream exporter: uid 65534 may not read the event stream; it is for root and the collector's user (uid 0)", asNobody())
}

func TestTCPRequiresAClientCertificate(t *testing.T) {
	pki := newTestPKI(t)
	cfg := createDefaultConfig().(*Config)
	cfg.Socket = ""
	tcp := cfg.TCP.GetOrInsertDefault()
	tcp.Endpoint = "127.0.0.1:0"
	tcp.TLS.CertFile = pki.serverCert
	tcp.TLS.KeyFile = pki.serverKey
	tcp.TLS.ClientCAFile = pki.caCert
	require.NoError(t, cfg.Validate())
	// The exporter itself rather than the factory's wrapper, to learn the
	// port the kernel chose.
	e, err := newEventStreamExporter(cfg, componenttest.NewNopTelemetrySettings())
	if err != nil {
		t.Fatal(err)
	}
	require.NoError(t, e.start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { e.shutdown(context.Background()) })
	addr := e.addr().String()

	dial := func(withCert bool) (grpc.ServerStreamingClient[eventstreampb.SubscribeResponse], error) {
		conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(pki.clientCreds(t, withCert)))
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		stream, err := eventstreampb.NewEventStreamClient(conn).Subscribe(context.Background(), &eventstreampb.SubscribeRequest{})
		if err != nil {
			return nil, err
		}
		return stream, waitAccepted(stream)
	}

	_, err = dial(false)
	assert.Equal(t, codes.Unavailable, status.Code(err), "the TLS handshake fails without a client certificate: %v", err)

	stream, err := dial(true)
	require.NoError(t, err)
	require.NoError(t, e.consumeLogs(context.Background(), batch(rec{seq: 42, name: event.NameProcessExec, binary: "/bin/true"})))
	s := &subscription{stream: stream}
	assert.Equal(t, []int{42}, seqs(s.collect(t, 1)))
}

// BenchmarkConsumeLogs measures what a batch of 1000 records costs the
// pipeline with no client, with a client whose filter matches nothing, and
// with a client that takes everything (the copy into its buffer).
func BenchmarkConsumeLogs(b *testing.B) {
	var recs []rec
	for i := range 1000 {
		recs = append(recs, rec{seq: i, name: event.NameProcessExec, binary: "/usr/bin/curl", pod: "xwing", namespace: "default", container: "c"})
	}
	ld := batch(recs...)
	for _, bc := range []struct {
		name   string
		filter *eventstreampb.Filter
	}{
		{"no_client", nil},
		{"client_matching_nothing", &eventstreampb.Filter{ProcessRegex: []string{"^/nothing$"}}},
		{"client_matching_all", &eventstreampb.Filter{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := createDefaultConfig().(*Config)
			cfg.BufferSize = maxBufferSize
			e, err := newEventStreamExporter(cfg, componenttest.NewNopTelemetrySettings())
			if err != nil {
				b.Fatal(err)
			}
			if bc.name != "no_client" {
				f, err := compileFilter(bc.filter, componenttest.NewNopTelemetrySettings())
				require.NoError(b, err)
				c := newClient(f, cfg.BufferSize, "bench")
				e.hub.add(c)
				// Drain as a sender would, so the buffer never fills.
				done := make(chan struct{})
				defer close(done)
				go func() {
					for {
						select {
						case <-done:
							return
						case <-c.wake:
							for _, it := range c.take() {
								c.release(it.records)
							}
						}
					}
				}()
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = e.consumeLogs(context.Background(), ld)
			}
		})
	}
}
