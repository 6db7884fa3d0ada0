package useraction_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/useraction"
)

// done collects the results a Runner reports, in order.
func done(t *testing.T) (useraction.Options, chan error) {
	t.Helper()
	ch := make(chan error, 16)
	return useraction.Options{Done: func(_, _ string, err error) { ch <- err }}, ch
}

func wait(t *testing.T, ch chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no request finished within 10s")
		return nil
	}
}

func TestGetURLRequestsTheURLOnceAndDoesNotFollowRedirects(t *testing.T) {
	var hits, redirected atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/elsewhere" {
			redirected.Add(1)
			return
		}
		hits.Add(1)
		http.Redirect(w, req, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	opts, ch := done(t)
	r := useraction.New(opts)
	defer r.Close()
	if !r.Submit(useraction.GetURL, srv.URL+"/canary") {
		t.Fatal("Submit dropped the request")
	}
	if err := wait(t, ch); err != nil {
		t.Fatalf("GET: %v", err)
	}
	if hits.Load() != 1 || redirected.Load() != 0 {
		t.Fatalf("%d requests for the URL, %d for its redirect: want 1 and 0", hits.Load(), redirected.Load())
	}
	if n := r.Counts()[useraction.GetURL][useraction.ResultDone]; n != 1 {
		t.Fatalf("done count %d, want 1", n)
	}
}

func TestGetURLToAClosedPortFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	opts, ch := done(t)
	r := useraction.New(opts)
	defer r.Close()
	r.Submit(useraction.GetURL, "http://"+addr+"/")
	if err := wait(t, ch); err == nil {
		t.Fatal("GET of a closed port succeeded")
	}
	if n := r.Counts()[useraction.GetURL][useraction.ResultFailed]; n != 1 {
		t.Fatalf("failed count %d, want 1", n)
	}
}

// TestDNSLookupAsksTheServer runs a DNS server on loopback that answers
// every query "no such name" and records the names asked.
func TestDNSLookupAsksTheServer(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	asked := make(chan string, 8)
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			if len(q) < 12 {
				continue
			}
			asked <- questionName(q[12:])
			// The query's header and question, as a response with
			// RCODE 3 (NXDOMAIN) and no records.
			resp := append([]byte(nil), q...)
			resp[2] = 0x81 // QR, RD
			resp[3] = 0x83 // RA, NXDOMAIN
			for i := 6; i < 12; i++ {
				resp[i] = 0
			}
			pc.WriteTo(resp, from)
		}
	}()
	opts, ch := done(t)
	opts.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
	r := useraction.New(opts)
	defer r.Close()
	r.Submit(useraction.DNSLookup, "canary.vigil.example")
	if err := wait(t, ch); err != nil {
		t.Fatalf("lookup: %v (an NXDOMAIN answer counts as done)", err)
	}
	select {
	case name := <-asked:
		if name != "canary.vigil.example." {
			t.Fatalf("the server was asked %q", name)
		}
	default:
		t.Fatal("the server was asked nothing")
	}
	if n := r.Counts()[useraction.DNSLookup][useraction.ResultDone]; n != 1 {
		t.Fatalf("done count %d, want 1", n)
	}
}

// questionName decodes the name at the start of a DNS question.
func questionName(b []byte) string {
	var labels []string
	for len(b) > 0 && b[0] != 0 && int(b[0]) < len(b) {
		labels = append(labels, string(b[1:1+b[0]]))
		b = b[1+b[0]:]
	}
	return strings.Join(labels, ".") + "."
}

func TestAFullQueueDropsAndCounts(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		started <- struct{}{}
		<-release
	}))
	defer srv.Close()
	defer close(release)
	r := useraction.New(useraction.Options{Workers: 1, Queue: 1})
	defer r.Close()
	if !r.Submit(useraction.GetURL, srv.URL) {
		t.Fatal("first request dropped")
	}
	<-started // the worker is busy with it
	if !r.Submit(useraction.GetURL, srv.URL) {
		t.Fatal("second request dropped: the queue has room for one")
	}
	if r.Submit(useraction.GetURL, srv.URL) {
		t.Fatal("third request queued: the queue was full")
	}
	if n := r.Counts()[useraction.GetURL][useraction.ResultDropped]; n != 1 {
		t.Fatalf("dropped count %d, want 1", n)
	}
	if r.Submit("Sigkill", "x") {
		t.Fatal("an action the Runner does not run was queued")
	}
}
