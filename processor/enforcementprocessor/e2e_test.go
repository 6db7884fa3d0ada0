package enforcementprocessor

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/testenv"
)

// TestDistributionKillsAndAudits runs bin/otelcol-vigil (make dist) with
// the enforcement processor in its logs pipeline: a kill rule kills the
// matching process and the audit record reaches the exporters.
func TestDistributionKillsAndAudits(t *testing.T) {
	bin := testenv.CollectorBinary(t, "../../bin/otelcol-vigil")
	dir := t.TempDir()
	marker := "3600." + unique()
	compactOut, fileOut := filepath.Join(dir, "compact.log"), filepath.Join(dir, "events.jsonl")
	config := filepath.Join(dir, "config.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf(`
receivers:
  ebpf:
processors:
  enforcement:
    rules:
      - name: kill-sleep
        condition: event_name == "process.exec" and attributes["process.command_line"] == "/usr/bin/sleep %s"
        action: kill
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
      processors: [enforcement, batch]
      exporters: [compact, file]
`, marker, compactOut, fileOut)), 0o600)

	testenv.StartCollector(t, bin, nil, "--config", config)

	cmd, status, done := startSleep(t, marker)
	select {
	case <-done:
		if !status.Signaled() || status.Signal() != syscall.SIGKILL {
			t.Fatalf("the sleep ended with %v", *status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the matching process was not killed within 10s")
	}

	var audit plog.LogRecord
	found := false
	for deadline := time.Now().Add(10 * time.Second); !found && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(fileOut)
		for _, line := range bytes.Split(b[:bytes.LastIndexByte(b, '\n')+1], []byte("\n")) {
			logs, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(line)
			if err != nil {
				continue
			}
			for _, rl := range logs.ResourceLogs().All() {
				for _, sl := range rl.ScopeLogs().All() {
					for _, lr := range sl.LogRecords().All() {
						if lr.EventName() == event.NameEnforcementAction && intAttr(lr.Attributes(), event.AttrTargetPID) == int64(cmd.Process.Pid) {
							audit, found = lr, true
						}
					}
				}
			}
		}
	}
	if !found {
		t.Fatalf("no enforcement.action record in %s", fileOut)
	}
	if r := strAttr(audit.Attributes(), event.AttrEnforcementResult); r != "taken" {
		t.Errorf("result %q", r)
	}
	b, _ := os.ReadFile(compactOut)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "🛑 enforce") && strings.Contains(line, "kill-sleep") {
			t.Logf("compact: %s", line)
		}
	}
	t.Logf("audit attributes: %v", audit.Attributes().AsRaw())
}
