package ebpfreceiver

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/event"
)

// TestGetUrlRequestsTheURLForEachPostedEvent: a selector with GetUrl posts
// its event, marked with the action, and the collector requests the URL,
// here a server on loopback standing for a canary token.
func TestGetUrlRequestsTheURLForEachPostedEvent(t *testing.T) {
	hits := make(chan string, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		hits <- req.URL.Path
	}))
	defer srv.Close()
	dir := t.TempDir()
	canary := filepath.Join(dir, "canary")
	os.WriteFile(canary, []byte("x"), 0o644)
	name := fmt.Sprintf("canary-%d", time.Now().UnixNano())
	r, sink := startWithPolicy(t, name, openatPolicy(name, canary, "GetUrl\n        argUrl: "+srv.URL+"/tripped"))

	cmd := exec.Command("/bin/cat", canary)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	hook := waitFor(t, sink, "process.kprobe", isEvent(event.NameProcessKprobe, cmd.ProcessState.Pid()))
	if got := hook.str(event.AttrAction); got != "Post,GetUrl" {
		t.Errorf("%s = %q, want Post,GetUrl", event.AttrAction, got)
	}
	select {
	case path := <-hits:
		if path != "/tripped" {
			t.Fatalf("the server was asked for %q", path)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the URL was not requested within 10s")
	}
	select {
	case path := <-hits:
		t.Fatalf("a second request (%q) for one open", path)
	case <-time.After(200 * time.Millisecond):
	}
	if n := r.engine.Counters().Requests["GetUrl"]["done"]; n != 1 {
		t.Fatalf("%d GetUrl requests counted done, want 1", n)
	}
}
