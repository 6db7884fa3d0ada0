package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vigilsec/vigil/exporter/eventstreamexporter/eventstreampb"
)

const (
	// maxResponseBytes is far above what the exporter sends (at most 256
	// records a response), so a response with unusually large records
	// still passes.
	maxResponseBytes = 64 << 20
	// The pause between reconnection attempts starts short, so that a
	// collector restart costs the user little, and stays under a few
	// seconds while it is down.
	minRetry = 100 * time.Millisecond
	maxRetry = 2 * time.Second
)

// follower subscribes to the collector and prints what it sends, and
// subscribes again when the collector restarts.
type follower struct {
	filter  *eventstreampb.Filter
	network string // "unix" or "tcp"
	addr    string // the socket path or host:port
	creds   credentials.TransportCredentials
	out     *printer
	stderr  io.Writer

	// lost is true between losing a subscription and having it back.
	lost bool
	// subscribed, when set, is called each time a subscription is live:
	// tests wait on it instead of guessing.
	subscribed func()
}

func newFollower(o *eventsOptions, stdout, stderr io.Writer) (*follower, error) {
	f := &follower{
		filter:  o.filter,
		network: "unix",
		addr:    o.socket,
		creds:   insecure.NewCredentials(),
		out:     newPrinter(o, stdout),
		stderr:  stderr,
	}
	if o.address != "" {
		creds, err := clientTLS(o)
		if err != nil {
			return nil, err
		}
		f.network, f.addr, f.creds = "tcp", o.address, creds
	}
	return f, nil
}

// clientTLS trusts only the given CA and presents the client certificate
// the collector's TCP endpoint requires.
func clientTLS(o *eventsOptions) (credentials.TransportCredentials, error) {
	pem, err := os.ReadFile(o.caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-file: no PEM certificate in %s", o.caFile)
	}
	cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
	if err != nil {
		return nil, fmt.Errorf("--cert-file, --key-file: %w", err)
	}
	return credentials.NewTLS(&tls.Config{
		RootCAs:      pool,
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}), nil
}

// run follows the stream until ctx ends or an error that another attempt
// would not fix. Before the first subscription every error stops it: the
// user learns at once that the socket is missing or the filter is wrong.
// After it, the collector going away is expected (a restart, an upgrade)
// and run tries again until the collector is back.
func (f *follower) run(ctx context.Context) int {
	everSubscribed := false
	delay := minRetry
	for {
		subscribed, err := f.follow(ctx)
		if ctx.Err() != nil {
			return 0
		}
		if subscribed {
			everSubscribed = true
			delay = minRetry
		}
		var outErr *outputError
		if errors.As(err, &outErr) {
			fmt.Fprintf(f.stderr, "vigil events: %v\n", outErr)
			return 1
		}
		msg, permanent, code := f.explain(err)
		if !everSubscribed || permanent {
			fmt.Fprintf(f.stderr, "vigil events: %s\n", msg)
			return code
		}
		if !f.lost {
			f.lost = true
			fmt.Fprintf(f.stderr, "vigil events: lost the event stream: %s; reconnecting\n", msg)
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(delay):
		}
		delay = min(2*delay, maxRetry)
	}
}

// outputError is a failure to write the output; it ends the command.
type outputError struct{ err error }

func (e *outputError) Error() string { return "write output: " + e.err.Error() }

func (e *outputError) Unwrap() error { return e.err }

// dialError is the error of connecting to the collector, as the system
// call reported it; gRPC would only pass it on as text.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }

func (e *dialError) Unwrap() error { return e.err }

// follow makes one subscription on a new connection and prints what it
// receives until the stream ends. subscribed reports whether the collector
// accepted the subscription.
func (f *follower) follow(ctx context.Context) (subscribed bool, err error) {
	var mu sync.Mutex
	var lastDialErr error
	dial := func(ctx context.Context, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, f.network, f.addr)
		if err != nil {
			mu.Lock()
			lastDialErr = err
			mu.Unlock()
		}
		return c, err
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(f.creds), grpc.WithContextDialer(dial)}
	if f.network == "unix" {
		// A socket path is no host name; the default would be the path.
		opts = append(opts, grpc.WithAuthority("localhost"))
	}
	// A new connection per subscription: each attempt dials at once and
	// reports its own error, with no backoff state carried over.
	conn, err := grpc.NewClient("passthrough:///"+f.addr, opts...)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	withDialError := func(err error) error {
		mu.Lock()
		defer mu.Unlock()
		if lastDialErr != nil && status.Code(err) == codes.Unavailable {
			return &dialError{lastDialErr}
		}
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := eventstreampb.NewEventStreamClient(conn).Subscribe(ctx,
		&eventstreampb.SubscribeRequest{Filter: f.filter}, grpc.MaxCallRecvMsgSize(maxResponseBytes))
	if err != nil {
		return false, withDialError(err)
	}
	// The collector sends headers once it accepted the filter; a refused
	// call ends without them, and its status comes from Recv.
	md, err := stream.Header()
	if err == nil && md == nil {
		_, err = stream.Recv()
	}
	if err != nil {
		return false, withDialError(err)
	}
	if f.lost {
		f.lost = false
		fmt.Fprintf(f.stderr, "vigil events: reconnected to %s; events in between were not seen\n", f.addr)
	}
	if f.subscribed != nil {
		f.subscribed()
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return true, err
		}
		if n := resp.GetMissed(); n > 0 {
			// On stderr, so that json output stays parseable.
			fmt.Fprintf(f.stderr, "vigil events: missed %d %s here: they came faster than this output was read\n", n, plural(n, "event", "events"))
		}
		if len(resp.GetLogs()) == 0 {
			continue
		}
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(resp.GetLogs())
		if err != nil {
			return true, fmt.Errorf("the collector sent records that do not decode: %w", err)
		}
		if err := f.out.print(ld); err != nil {
			return true, &outputError{err}
		}
	}
}

// explain turns the end of a subscription into a message for the user,
// whether trying again could help, and the exit code if not.
func (f *follower) explain(err error) (msg string, permanent bool, code int) {
	var de *dialError
	if errors.As(err, &de) {
		switch {
		case errors.Is(de.err, fs.ErrNotExist):
			return fmt.Sprintf("no event stream at %s: the socket does not exist; is the collector running, with the event_stream exporter in a logs pipeline?", f.addr), false, 1
		case errors.Is(de.err, fs.ErrPermission):
			return fmt.Sprintf("%s: permission denied: the event stream is for root; run vigil events as root, or in the collector's pod (kubectl exec ds/vigil -- vigil events)", f.addr), true, 1
		case errors.Is(de.err, syscall.ECONNREFUSED):
			return fmt.Sprintf("nothing listens on %s (connection refused); is the collector running?", f.addr), false, 1
		default:
			return fmt.Sprintf("connect to %s: %v", f.addr, de.err), false, 1
		}
	}
	if errors.Is(err, io.EOF) {
		return "the collector ended the stream", false, 1
	}
	st, ok := status.FromError(err)
	if !ok {
		return err.Error(), true, 1
	}
	switch st.Code() {
	case codes.InvalidArgument:
		return filterMessage(st), true, 2
	case codes.Unavailable:
		return st.Message(), false, 1
	default:
		return st.Message(), true, 1
	}
}

// filterFlags maps the fields of eventstreampb.Filter to the flags that
// set them, so that a filter the collector refuses is reported by flag.
var filterFlags = map[string]string{
	"namespaces":    "--namespace",
	"pod_regex":     "--pods",
	"container_ids": "--container-id",
	"process_regex": "--process",
	"event_names":   "--event",
	"policy_names":  "--policy",
	"condition":     "--condition",
}

// filterMessage names, for each field the collector refused, the flag and
// the collector's reason (a regular expression or OTTL error with its
// position).
func filterMessage(st *status.Status) string {
	var lines []string
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, v := range br.GetFieldViolations() {
			field, _, _ := strings.Cut(strings.TrimPrefix(v.GetField(), "filter."), "[")
			name, ok := filterFlags[field]
			if !ok {
				name = v.GetField()
			}
			lines = append(lines, name+": "+v.GetDescription())
		}
	}
	if len(lines) == 0 {
		return st.Message()
	}
	return strings.Join(lines, "\nvigil events: ")
}

func plural(n uint64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
