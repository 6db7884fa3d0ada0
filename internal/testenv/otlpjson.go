package testenv

import (
	"bytes"
	"os"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// OTLPJSONRecords calls visit with each log record of an OTLP JSON file
// (the file exporter's format: one ExportLogsServiceRequest a line) and its
// resource, in order, until visit returns false. A missing file has no
// records; a last line still being written is left out; any other line
// that is not OTLP JSON fails the test.
func OTLPJSONRecords(tb testing.TB, path string, visit func(resource pcommon.Map, lr plog.LogRecord) bool) {
	tb.Helper()
	b, _ := os.ReadFile(path)
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		logs, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(line)
		if err != nil {
			tb.Fatalf("%s: a line that is not OTLP JSON: %v", path, err)
		}
		for _, rl := range logs.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if !visit(rl.Resource().Attributes(), lr) {
						return
					}
				}
			}
		}
	}
}
