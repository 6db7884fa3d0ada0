package compactexporter

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/privfile"
)

// compactExporter writes one line per log record to its output.
type compactExporter struct {
	cfg *Config

	// mu serialises batches: without a queue, pipelines may call
	// consumeLogs concurrently, and lines must not interleave.
	mu    sync.Mutex
	out   io.Writer
	file  *os.File // the output when it is a file; nil for stdout
	buf   *bufio.Writer
	color bool
}

func newCompactExporter(cfg *Config) *compactExporter {
	return &compactExporter{cfg: cfg}
}

// start opens the output and decides on colour once, so every batch is
// rendered the same way.
func (e *compactExporter) start(context.Context, component.Host) error {
	e.mu.Lock()
	defer e.mu.Unlock()

	if e.cfg.Output == OutputStdout {
		e.out = os.Stdout
	} else {
		// Events carry command lines and paths, secrets among them: the
		// file is the collector user's alone, and one another user
		// planted or linked is refused.
		f, err := privfile.OpenAppend(e.cfg.Output)
		if err != nil {
			return fmt.Errorf("compact exporter: open output: %w", err)
		}
		e.file, e.out = f, f
	}
	e.buf = bufio.NewWriter(e.out)
	e.color = useColor(e.cfg.Color, e.cfg.Output)
	return nil
}

// useColor resolves the color setting. auto colours only a terminal on
// stdout: escape codes in a file or a log pipeline are noise.
func useColor(mode, output string) bool {
	switch mode {
	case ColorAlways:
		return true
	case ColorNever:
		return false
	default:
		return output == OutputStdout && isTerminal(os.Stdout)
	}
}

// isTerminal reports whether f is a character device, the usual portable
// test for a terminal. It also holds for /dev/null, where colour is harmless.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// consumeLogs writes every record of ld and flushes once per batch, so a
// batch costs one write system call rather than one per line.
func (e *compactExporter) consumeLogs(_ context.Context, ld plog.Logs) error {
	e.mu.Lock()
	defer e.mu.Unlock()

	if e.buf == nil {
		return fmt.Errorf("compact exporter: output %q is not open", e.cfg.Output)
	}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		resource := rl.Resource().Attributes()
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			records := sls.At(j).LogRecords()
			for k := 0; k < records.Len(); k++ {
				// bufio.Writer keeps the first error and Flush reports it,
				// so the per-line writes need no checks of their own.
				_, _ = e.buf.WriteString(event.Compact(resource, records.At(k), e.color))
				_ = e.buf.WriteByte('\n')
			}
		}
	}
	if err := e.buf.Flush(); err != nil {
		// A bufio.Writer stays broken after an error; start the next batch
		// clean so a transient failure (a full disk) does not last forever.
		e.buf.Reset(e.out)
		return fmt.Errorf("compact exporter: write to %q: %w", e.cfg.Output, err)
	}
	return nil
}

// shutdown closes a file output. Stdout belongs to the process and stays
// open. The collector may call shutdown without start, so it tolerates
// nothing having been opened.
func (e *compactExporter) shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()

	e.buf = nil
	if e.file == nil {
		return nil
	}
	err := e.file.Close()
	e.file, e.out = nil, nil
	if err != nil {
		return fmt.Errorf("compact exporter: close output: %w", err)
	}
	return nil
}
