package eventstreamexporter

import (
	"errors"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/exporter/eventstreamexporter/eventstreampb"
)

// FuzzCompileFilter: whatever filter a client sends (regexps, an OTTL
// condition), compiling it neither panics nor fails without naming the
// field, and what compiles can be run on a record.
//
//	go test ./exporter/eventstreamexporter -run '^$' -fuzz FuzzCompileFilter -fuzztime 60s
func FuzzCompileFilter(f *testing.F) {
	f.Add("^web-", "/bin/(ba)?sh$", `attributes["process.executable.name"] == "sh"`)
	f.Add("(", "[", `IsMatch(attributes["process.command_line"], "curl|wget")`)
	f.Add("a{1000}{1000}", "\\", `event_name == `)
	f.Add("", "", `not (true and false) or Len("x") > 0`)
	set := componenttest.NewNopTelemetrySettings()
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	sl := rl.ScopeLogs().AppendEmpty()
	lr := sl.LogRecords().AppendEmpty()
	lr.Attributes().PutStr("process.executable.path", "/bin/sh")
	f.Fuzz(func(t *testing.T, pod, process, condition string) {
		c, err := compileFilter(&eventstreampb.Filter{PodRegex: []string{pod}, ProcessRegex: []string{process}, Condition: condition}, set)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("error without its field: %v", err)
			}
			return
		}
		c.matchResource(rl.Resource().Attributes())
		c.matchRecord(t.Context(), rl, sl, lr)
	})
}
