package distribution_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/testenv"
)

// startCollector runs the built distribution (see testenv.StartCollector).
func startCollector(t *testing.T, env []string, args ...string) *testenv.Collector {
	t.Helper()
	return testenv.StartCollector(t, testenv.CollectorBinary(t, "../bin/otelcol-vigil"), env, args...)
}

// eventually polls get until it returns true or 10s pass.
func eventually(t *testing.T, what string, get func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var ok bool
		if ok, last = get(); ok {
			return
		}
	}
	t.Fatalf("%s: not there after 10s; last seen:\n%s", what, last)
}

func runMarker(t *testing.T) (marker string, pid int) {
	t.Helper()
	marker = fmt.Sprintf("vigil-e2e-%d", time.Now().UnixNano())
	cmd := exec.Command("/bin/echo", marker)
	cmd.Stdout = io.Discard
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return marker, cmd.ProcessState.Pid()
}

// logRecords returns the records of the OTLP JSON file whose body
// contains marker, with their resources.
func logRecords(t *testing.T, path, marker string) (res []pcommon.Map, recs []plog.LogRecord) {
	testenv.OTLPJSONRecords(t, path, func(r pcommon.Map, lr plog.LogRecord) bool {
		if strings.Contains(lr.Body().Str(), marker) {
			res = append(res, r)
			recs = append(recs, lr)
		}
		return true
	})
	return res, recs
}

func TestDistributionDeliversExecAndExitToFileAndCompact(t *testing.T) {
	dir := t.TempDir()
	compactOut := filepath.Join(dir, "compact.log")
	fileOut := filepath.Join(dir, "events.jsonl")
	config := filepath.Join(dir, "config.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf(`
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
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [ebpf]
      processors: [batch]
      exporters: [compact, file]
`, compactOut, fileOut)), 0o600)

	c := startCollector(t, nil, "--config", config)
	marker, pid := runMarker(t)
	hostname, _ := os.Hostname()

	wantExec := "🚀 process " + hostname + " /bin/echo " + marker
	wantExit := "💥 exit    " + hostname + " /bin/echo " + marker + " 0"
	eventually(t, "compact lines", func() (bool, string) {
		b, _ := os.ReadFile(compactOut)
		lines := strings.Split(string(b), "\n")
		return slices.Contains(lines, wantExec) && slices.Contains(lines, wantExit), string(b)
	})

	eventually(t, "OTLP JSON records", func() (bool, string) {
		var found []string
		_, recs := logRecords(t, fileOut, marker)
		for _, lr := range recs {
			if p, _ := lr.Attributes().Get(event.AttrProcessPID); p.Int() == int64(pid) {
				found = append(found, lr.EventName())
			}
		}
		return slices.Contains(found, event.NameProcessExec) && slices.Contains(found, event.NameProcessExit), fmt.Sprint(found)
	})
	c.Stop(t)
}

func TestDefaultConfigIsEmbeddedAndPrintsEvents(t *testing.T) {
	dir := t.TempDir()
	c := startCollector(t, []string{
		"VIGIL_EVENTS_FILE=" + filepath.Join(dir, "events.jsonl"),
		"VIGIL_METRICS_ENDPOINT=127.0.0.1:0",
		"VIGIL_HEALTH_ENDPOINT=127.0.0.1:0",
		"VIGIL_EVENTS_SOCKET=" + filepath.Join(dir, "events.sock"),
	}, "--config", "vigil:default", "--set", "exporters::compact::color=never")
	marker, _ := runMarker(t)
	eventually(t, "compact lines on stdout", func() (bool, string) {
		out := c.Stdout()
		return strings.Contains(out, "/bin/echo "+marker+"\n") && strings.Contains(out, "/bin/echo "+marker+" 0\n"), out
	})
	c.Stop(t)
}
