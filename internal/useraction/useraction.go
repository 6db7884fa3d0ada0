// Package useraction runs the TracingPolicy actions that Tetragon takes in
// user space rather than in the kernel: GetUrl (an HTTP GET of argUrl) and
// DnsLookup (a lookup of argFqdn). Both exist to trip an outside alarm, a
// canary token for example, so only the attempt matters: the answer is
// read and thrown away.
//
// A Runner never holds up its caller. Requests wait in a bounded queue for
// a few workers; when the queue is full a request is dropped and counted,
// so that a policy matching a burst of calls cannot back up the event
// stream.
package useraction

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The actions, as a policy names them.
const (
	GetURL    = "GetUrl"
	DNSLookup = "DnsLookup"
)

// Results of a request, as Counts reports them.
const (
	// ResultDone: the server answered (any HTTP status; for a lookup, an
	// answer or "no such host").
	ResultDone = "done"
	// ResultFailed: no answer (refused, timed out, unreachable).
	ResultFailed = "failed"
	// ResultDropped: the queue was full, the request was never made.
	ResultDropped = "dropped"
)

// Options tune a Runner; the zero value is usable.
type Options struct {
	// Workers run requests at once; default 4.
	Workers int
	// Queue is how many requests may wait; default 256.
	Queue int
	// Timeout bounds each request; default 5s.
	Timeout time.Duration
	// Resolver makes DnsLookup's queries; nil is the system's.
	Resolver *net.Resolver
	// Done, when set, is called after each request with its action,
	// target and error (nil for ResultDone); from a worker goroutine.
	Done func(action, target string, err error)
}

type request struct{ action, target string }

// Runner runs GetUrl and DnsLookup requests in the background.
type Runner struct {
	opts   Options
	client *http.Client
	queue  chan request
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	counters map[[2]string]*atomic.Uint64
}

// New starts a Runner's workers; Close stops them.
func New(opts Options) *Runner {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Queue <= 0 {
		opts.Queue = 256
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{
		opts: opts,
		client: &http.Client{
			Timeout: opts.Timeout,
			// The first answer is the alarm; a redirect would only send
			// the node's requests somewhere the policy did not name.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		queue:    make(chan request, opts.Queue),
		ctx:      ctx,
		cancel:   cancel,
		counters: map[[2]string]*atomic.Uint64{},
	}
	for _, a := range []string{GetURL, DNSLookup} {
		for _, res := range []string{ResultDone, ResultFailed, ResultDropped} {
			r.counters[[2]string{a, res}] = new(atomic.Uint64)
		}
	}
	for range opts.Workers {
		r.wg.Add(1)
		go r.work()
	}
	return r
}

// Submit queues a request: action is GetURL (target a URL) or DNSLookup
// (target a name). It reports false if the request was dropped: the queue
// is full, the Runner closed, or the action unknown.
func (r *Runner) Submit(action, target string) bool {
	c, ok := r.counters[[2]string{action, ResultDropped}]
	if !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		select {
		case r.queue <- request{action, target}:
			return true
		default:
		}
	}
	c.Add(1)
	return false
}

// Counts returns how many requests ended in each result, by action then
// result, since New.
func (r *Runner) Counts() map[string]map[string]uint64 {
	out := map[string]map[string]uint64{}
	for k, c := range r.counters {
		if out[k[0]] == nil {
			out[k[0]] = map[string]uint64{}
		}
		out[k[0]][k[1]] = c.Load()
	}
	return out
}

// Close stops taking requests, cancels those under way and waits for the
// workers; the requests still queued are dropped.
func (r *Runner) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	close(r.queue)
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

func (r *Runner) work() {
	defer r.wg.Done()
	for req := range r.queue {
		if r.ctx.Err() != nil {
			r.counters[[2]string{req.action, ResultDropped}].Add(1)
			continue
		}
		err := r.run(req)
		result := ResultDone
		if err != nil {
			result = ResultFailed
		}
		r.counters[[2]string{req.action, result}].Add(1)
		if r.opts.Done != nil {
			r.opts.Done(req.action, req.target, err)
		}
	}
}

func (r *Runner) run(req request) error {
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.Timeout)
	defer cancel()
	switch req.action {
	case GetURL:
		hr, err := http.NewRequestWithContext(ctx, http.MethodGet, req.target, nil)
		if err != nil {
			return err
		}
		resp, err := r.client.Do(hr)
		if err != nil {
			return err
		}
		// Read a little so that the connection can be reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return resp.Body.Close()
	case DNSLookup:
		_, err := r.opts.Resolver.LookupHost(ctx, req.target)
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil // a server answered: the lookup was made
		}
		return err
	}
	return nil
}
