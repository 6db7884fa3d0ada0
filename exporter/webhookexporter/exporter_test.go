package webhookexporter

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/extension/falcoencodingextension"
	"github.com/vigilsec/vigil/internal/event"
)

func TestConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	load := func(name string) *Config {
		sub, err := cm.Sub(component.NewIDWithName(typ, name).String())
		require.NoError(t, err)
		cfg := createDefaultConfig().(*Config)
		require.NoError(t, sub.Unmarshal(cfg))
		return cfg
	}
	cfg := load("")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, "http://127.0.0.1:2801/", cfg.ClientConfig.Endpoint)
	assert.Equal(t, "falco_encoding", cfg.Encoding.String())
	err = confmap.Validate(load("missing"))
	assert.ErrorContains(t, err, "endpoint: required")
	assert.ErrorContains(t, err, "encoding: required")
}

// falcoPayload is what falcosidekick's HTTP input decodes (its
// types.FalcoPayload), with the priorities it knows.
type falcoPayload struct {
	UUID         string         `json:"uuid"`
	Output       string         `json:"output"`
	Priority     string         `json:"priority"`
	Rule         string         `json:"rule"`
	Time         time.Time      `json:"time"`
	OutputFields map[string]any `json:"output_fields"`
	Source       string         `json:"source"`
	Tags         []string       `json:"tags"`
	Hostname     string         `json:"hostname"`
}

var priorities = map[string]bool{"Emergency": true, "Alert": true, "Critical": true, "Error": true,
	"Warning": true, "Notice": true, "Informational": true, "Debug": true}

// sidekick is a loopback stand-in for falcosidekick's input: it checks each
// request as falcosidekick would and keeps the alerts; it refuses its
// refuseNth request (counted from 1) with 503.
type sidekick struct {
	t         *testing.T
	mu        sync.Mutex
	alerts    []falcoPayload
	requests  int
	refuseNth int
}

func (s *sidekick) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		s.t.Errorf("%s with Content-Type %q, want a JSON POST", r.Method, r.Header.Get("Content-Type"))
	}
	s.requests++
	if s.requests == s.refuseNth {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var p falcoPayload
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&p); err != nil || dec.More() {
		s.t.Errorf("the body is not one Falco alert: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if p.Rule == "" || p.Output == "" || !priorities[p.Priority] || p.Time.IsZero() || p.Hostname == "" || p.OutputFields == nil {
		s.t.Errorf("an alert falcosidekick would not take: %+v", p)
	}
	s.alerts = append(s.alerts, p)
}

// host is a host with the falco_encoding extension.
type host struct {
	ext map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.ext }

func startWebhook(t *testing.T, endpoint string) (func(plog.Logs) error, func()) {
	t.Helper()
	ef := falcoencodingextension.NewFactory()
	enc, err := ef.Create(context.Background(), extensiontest.NewNopSettings(ef.Type()), ef.CreateDefaultConfig())
	require.NoError(t, err)
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.ClientConfig.Endpoint = endpoint
	cfg.Encoding = component.NewID(ef.Type())
	cfg.RetryConfig.InitialInterval = 10 * time.Millisecond
	// One consumer sends batches in order, retries included: a later
	// batch arriving proves the earlier ones are done.
	cfg.QueueConfig.Get().NumConsumers = 1
	require.NoError(t, confmap.Validate(cfg))
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), host{map[component.ID]component.Component{cfg.Encoding: enc}}))
	return func(ld plog.Logs) error { return exp.ConsumeLogs(context.Background(), ld) },
		func() { require.NoError(t, exp.Shutdown(context.Background())) }
}

func detections(rules ...string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(event.AttrHostName, "node-1")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	exec := recs.AppendEmpty()
	exec.SetEventName(event.NameProcessExec)
	for _, r := range rules {
		lr := recs.AppendEmpty()
		lr.SetEventName(event.NameProcessKprobe)
		lr.SetTimestamp(1796558400000000000)
		lr.Attributes().PutStr(event.AttrSecurityRuleName, r)
		lr.Attributes().PutStr(event.AttrAction, "Post")
		lr.Attributes().PutStr(event.AttrProcessExecutablePath, "/usr/bin/cat")
		lr.Body().SetStr("open /etc/shadow")
	}
	return ld
}

// Each detection reaches the webhook as one Falco alert per request; a
// refused request is retried, without sending again what was accepted.
func TestDetectionsReachFalcosidekickOnePerRequest(t *testing.T) {
	// The second alert is refused once: the first, accepted, must not be
	// sent again.
	sk := &sidekick{t: t, refuseNth: 2}
	srv := httptest.NewServer(sk)
	defer srv.Close()
	consume, shutdown := startWebhook(t, srv.URL+"/")
	require.NoError(t, consume(detections("read-shadow", "read-gshadow", "ssh-key")))
	rules := func() []string {
		sk.mu.Lock()
		defer sk.mu.Unlock()
		var got []string
		for _, a := range sk.alerts {
			got = append(got, a.Rule)
		}
		return got
	}
	// A marker batch after them: once it arrives, the first batch's
	// sends, retry included, are all done.
	require.NoError(t, consume(detections("marker")))
	for deadline := time.Now().Add(5 * time.Second); !slices.Contains(rules(), "marker"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("alerts %v: the marker did not arrive in 5s", rules())
		}
	}
	shutdown()
	assert.Equal(t, []string{"read-shadow", "read-gshadow", "ssh-key", "marker"}, rules(), "each alert once, in order, the exec left out")
}

// A webhook that refuses a document for good (4xx) is not retried.
func TestARefusedDocumentIsNotRetried(t *testing.T) {
	var n int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	consume, shutdown := startWebhook(t, srv.URL)
	require.NoError(t, consume(detections("read-shadow")))
	// The marker's request comes after any retry of the first: one
	// consumer sends in order.
	require.NoError(t, consume(detections("marker")))
	requests := func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
	for deadline := time.Now().Add(5 * time.Second); requests() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests in 5s, want the alert's and the marker's", requests())
		}
	}
	shutdown()
	assert.Equal(t, 2, requests(), "requests for a refused alert and the marker")
}
