package eventstreamexporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/vigilsec/vigil/exporter/eventstreamexporter/eventstreampb"

	internalmetadata "github.com/vigilsec/vigil/exporter/eventstreamexporter/internal/metadata"
)

const (
	// maxRequestBytes bounds what a client may send: a filter is a few
	// strings.
	maxRequestBytes = 1 << 20
	// stopGrace is how long shutdown lets subscriptions end with their
	// status before it closes their connections. A client that does not
	// read at all would otherwise hold the collector's shutdown.
	stopGrace = time.Second
)

// eventStreamExporter serves the records of its pipeline to the clients
// subscribed over gRPC, each through its own filter and buffer.
type eventStreamExporter struct {
	eventstreampb.UnimplementedEventStreamServer

	cfg    *Config
	set    component.TelemetrySettings
	logger *zap.Logger
	hub    *hub
	// telemetry counts the clients and what they missed (mdatagen's
	// TelemetryBuilder, on the collector's own metrics).
	telemetry *internalmetadata.TelemetryBuilder
	// uid is the collector's effective uid: besides root, the only user
	// allowed on the unix socket.
	uid uint32

	mu       sync.Mutex
	done     chan struct{} // closed at shutdown, ends every subscription
	servers  []*grpc.Server
	serving  sync.WaitGroup
	tcpAddr  net.Addr
	shutDown bool
}

func newEventStreamExporter(cfg *Config, set component.TelemetrySettings) (*eventStreamExporter, error) {
	tb, err := internalmetadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, fmt.Errorf("event_stream exporter: creating its metrics: %w", err)
	}
	return &eventStreamExporter{
		cfg:       cfg,
		set:       set,
		logger:    set.Logger,
		hub:       newHub(cfg.MaxClients),
		telemetry: tb,
		uid:       uint32(os.Geteuid()),
		done:      make(chan struct{}),
	}, nil
}

// start listens on the socket and, when configured, on the TCP endpoint.
// On error, what was started is stopped again.
func (e *eventStreamExporter) start(ctx context.Context, _ component.Host) error {
	if e.cfg.Socket != "" {
		sock, err := listenUnix(e.cfg.Socket)
		if err != nil {
			return fmt.Errorf("event_stream exporter: socket %s: %w", e.cfg.Socket, err)
		}
		e.serve(sock, grpc.Creds(peerCredentials{}))
		e.logger.Info("Serving the event stream", zap.String("socket", e.cfg.Socket))
	}
	if e.cfg.TCP.HasValue() {
		tcp := e.cfg.TCP.Get()
		tlsCfg, err := tcp.TLS.LoadTLSConfig(ctx)
		if err != nil {
			e.stop(ctx)
			return fmt.Errorf("event_stream exporter: tcp.tls: %w", err)
		}
		l, err := net.Listen("tcp", tcp.Endpoint)
		if err != nil {
			e.stop(ctx)
			return fmt.Errorf("event_stream exporter: tcp.endpoint: %w", err)
		}
		e.mu.Lock()
		e.tcpAddr = l.Addr()
		e.mu.Unlock()
		e.serve(l, grpc.Creds(credentials.NewTLS(tlsCfg)))
		e.logger.Info("Serving the event stream", zap.Stringer("endpoint", l.Addr()))
	}
	return nil
}

func (e *eventStreamExporter) serve(l net.Listener, creds grpc.ServerOption) {
	srv := grpc.NewServer(creds, grpc.MaxRecvMsgSize(maxRequestBytes))
	eventstreampb.RegisterEventStreamServer(srv, e)
	e.mu.Lock()
	e.servers = append(e.servers, srv)
	e.mu.Unlock()
	e.serving.Add(1)
	go func() {
		defer e.serving.Done()
		if err := srv.Serve(l); err != nil {
			e.logger.Error("The event stream stopped serving", zap.Stringer("address", l.Addr()), zap.Error(err))
		}
	}()
}

// shutdown ends every subscription with UNAVAILABLE (clients reconnect to
// the next collector), stops listening and removes the socket file. The
// collector may call it without start, or after a failed start.
func (e *eventStreamExporter) shutdown(ctx context.Context) error {
	e.stop(ctx)
	return nil
}

func (e *eventStreamExporter) stop(ctx context.Context) {
	e.mu.Lock()
	if !e.shutDown {
		e.shutDown = true
		close(e.done)
	}
	servers := e.servers
	e.servers = nil
	e.mu.Unlock()

	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Go(func() { stopServer(ctx, srv) })
	}
	wg.Wait()
	e.serving.Wait()
}

// stopServer lets running subscriptions return their status, then closes
// whatever remains after stopGrace or when ctx ends. GracefulStop closes the
// listener, which for the unix socket removes its file.
func stopServer(ctx context.Context, srv *grpc.Server) {
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(stopGrace)
	defer timer.Stop()
	select {
	case <-stopped:
		return
	case <-timer.C:
	case <-ctx.Done():
	}
	srv.Stop()
	<-stopped
}

// consumeLogs offers ld to every subscribed client and returns at once:
// a client's buffer takes what fits and counts the rest as missed. With no
// client it does nothing at all.
func (e *eventStreamExporter) consumeLogs(ctx context.Context, ld plog.Logs) error {
	for _, c := range e.hub.snapshot() {
		missed, first := c.offer(ctx, ld)
		if missed > 0 {
			e.telemetry.ExporterEventStreamMissedRecords.Add(ctx, int64(missed))
		}
		if first {
			e.logger.Warn("An event stream client is not keeping up; it misses events until it catches up, and is told how many",
				zap.String("client", c.peer), zap.Int("buffer_size", c.limit))
		}
	}
	return nil
}

// Subscribe implements eventstreampb.EventStreamServer: it authorises the
// caller, compiles its filter, and sends what the pipeline offers the
// client until the client leaves or the collector stops.
func (e *eventStreamExporter) Subscribe(req *eventstreampb.SubscribeRequest, stream grpc.ServerStreamingServer[eventstreampb.SubscribeResponse]) error {
	ctx := stream.Context()
	who, err := e.authorize(ctx)
	if err != nil {
		return err
	}
	f, err := compileFilter(req.GetFilter(), e.set)
	if err != nil {
		return invalidFilter(err)
	}
	c := newClient(f, e.cfg.BufferSize, who)
	if ok, n := e.hub.add(c); !ok {
		return status.Errorf(codes.ResourceExhausted,
			"event_stream exporter: max_clients is %d, and as many clients are subscribed; try again when one leaves", n)
	}
	defer e.hub.remove(c)
	e.telemetry.ExporterEventStreamClients.Add(ctx, 1)
	defer e.telemetry.ExporterEventStreamClients.Add(context.WithoutCancel(ctx), -1)
	e.logger.Info("An event stream client subscribed", zap.String("client", who), zap.String("filter", describeFilter(req.GetFilter())))
	defer func() {
		e.logger.Info("An event stream client left", zap.String("client", who), zap.Uint64("missed", c.totalMissed()))
	}()

	// Empty headers tell the client its filter is accepted and the
	// subscription live: records from now on will reach it.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-e.done:
			return status.Error(codes.Unavailable, "event_stream exporter: the collector is shutting down")
		case <-c.wake:
		}
		for _, it := range c.take() {
			resp := &eventstreampb.SubscribeResponse{Missed: it.missed}
			if it.records > 0 {
				resp.Logs, err = (&plog.ProtoMarshaler{}).MarshalLogs(it.logs)
				if err != nil {
					c.release(it.records)
					return status.Errorf(codes.Internal, "event_stream exporter: marshal records: %v", err)
				}
			}
			err := stream.Send(resp)
			c.release(it.records)
			if err != nil {
				return err
			}
		}
	}
}

// authorize admits, on the unix socket, root and the collector's own user,
// and on TCP whoever passed the TLS handshake (which verified a client
// certificate). It returns a description of the client for the log.
func (e *eventStreamExporter) authorize(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", status.Error(codes.PermissionDenied, "event_stream exporter: unknown peer")
	}
	switch info := p.AuthInfo.(type) {
	case peerInfo:
		who := fmt.Sprintf("uid %d, pid %d", info.uid, info.pid)
		if info.uid != 0 && info.uid != e.uid {
			e.logger.Warn("Refused an event stream client", zap.String("client", who))
			return "", status.Errorf(codes.PermissionDenied,
				"event_stream exporter: uid %d may not read the event stream; it is for root and the collector's user (uid %d)", info.uid, e.uid)
		}
		return who, nil
	case credentials.TLSInfo:
		who := p.Addr.String()
		if chains := info.State.VerifiedChains; len(chains) > 0 && len(chains[0]) > 0 {
			who += ", " + chains[0][0].Subject.String()
		}
		return who, nil
	default:
		return "", status.Error(codes.PermissionDenied, "event_stream exporter: unauthenticated transport")
	}
}

// invalidFilter turns compileFilter's error into INVALID_ARGUMENT with a
// google.rpc.BadRequest detail holding one violation per field, so a client
// can name the flag or option that caused each.
func invalidFilter(err error) error {
	var errs []error
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	} else {
		errs = []error{err}
	}
	br := &errdetails.BadRequest{}
	msgs := make([]string, 0, len(errs))
	for _, err := range errs {
		msgs = append(msgs, "filter."+err.Error())
		var fe *FieldError
		if errors.As(err, &fe) {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field:       "filter." + fe.Field,
				Description: fe.Err.Error(),
			})
		}
	}
	st := status.New(codes.InvalidArgument, "event_stream exporter: invalid filter: "+strings.Join(msgs, "; "))
	if withDetails, err := st.WithDetails(br); err == nil {
		st = withDetails
	}
	return st.Err()
}

// describeFilter is the filter as the collector's log shows it.
func describeFilter(f *eventstreampb.Filter) string {
	if s := (prototext.MarshalOptions{}).Format(f); s != "" {
		return s
	}
	return "none, every event"
}

// addr is the TCP endpoint's address once started (its port when the
// configuration asked for port 0); nil without one.
func (e *eventStreamExporter) addr() net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tcpAddr
}
