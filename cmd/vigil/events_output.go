package main

import (
	"bufio"
	"io"
	"os"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/internal/event"
)

// timestampLayout is RFC 3339 in UTC with fixed nanoseconds, as tetra
// prints --timestamps, so that the lines' columns stay aligned.
const timestampLayout = "2006-01-02T15:04:05.000000000Z"

// printer writes records as compact lines or OTLP JSON, one per line. It
// flushes once per response: one write per batch, and a line never waits
// for the next batch to show.
type printer struct {
	w          *bufio.Writer
	json       bool
	color      bool
	timestamps bool
}

func newPrinter(o *eventsOptions, stdout io.Writer) *printer {
	return &printer{
		w:          bufio.NewWriter(stdout),
		json:       o.output == "json",
		color:      useColor(o.color, stdout),
		timestamps: o.timestamps,
	}
}

// useColor resolves --color the way the compact exporter resolves its
// color setting: auto colours a terminal only, never a file or a pipe.
func useColor(mode string, out io.Writer) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	f, ok := out.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *printer) print(ld plog.Logs) error {
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if p.json {
					if err := p.printJSON(rl, sl, lr); err != nil {
						return err
					}
					continue
				}
				if p.timestamps {
					_, _ = p.w.WriteString(recordTime(lr).UTC().Format(timestampLayout))
					_ = p.w.WriteByte(' ')
				}
				// The very function the compact exporter prints with, so
				// both show the same line for the same record.
				_, _ = p.w.WriteString(event.Compact(rl.Resource().Attributes(), lr, p.color))
				_ = p.w.WriteByte('\n')
			}
		}
	}
	// bufio.Writer keeps the first error and Flush returns it.
	return p.w.Flush()
}

// printJSON writes lr as an OTLP JSON document of its own, holding its
// resource and scope: each line parses with any OTLP JSON reader (the
// otlpjsonfile receiver, jq, plog.JSONUnmarshaler).
func (p *printer) printJSON(rl plog.ResourceLogs, sl plog.ScopeLogs, lr plog.LogRecord) error {
	one := plog.NewLogs()
	orl := one.ResourceLogs().AppendEmpty()
	rl.Resource().CopyTo(orl.Resource())
	orl.SetSchemaUrl(rl.SchemaUrl())
	osl := orl.ScopeLogs().AppendEmpty()
	sl.Scope().CopyTo(osl.Scope())
	osl.SetSchemaUrl(sl.SchemaUrl())
	lr.CopyTo(osl.LogRecords().AppendEmpty())
	b, err := (&plog.JSONMarshaler{}).MarshalLogs(one)
	if err != nil {
		return err
	}
	_, _ = p.w.Write(b)
	return p.w.WriteByte('\n')
}

// recordTime is when the event happened, or when it was observed for a
// record without an event time.
func recordTime(lr plog.LogRecord) time.Time {
	if ts := lr.Timestamp(); ts != 0 {
		return ts.AsTime()
	}
	return lr.ObservedTimestamp().AsTime()
}
