package compactexporter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/privfile"
	"github.com/vigilsec/vigil/internal/testenv"
)

// execAndExit builds one resource (a pod) holding an exec and the matching
// exit, as the receiver and k8s_workload processor would emit them.
func execAndExit() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr(event.AttrHostName, "node-1")
	res.PutStr(event.AttrK8sNamespace, "default")
	res.PutStr(event.AttrK8sPodName, "xwing")

	records := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, name := range []string{event.NameProcessExec, event.NameProcessExit} {
		r := records.AppendEmpty()
		r.SetEventName(name)
		r.Attributes().PutStr(event.AttrProcessExecutablePath, "/usr/bin/curl")
		args := r.Attributes().PutEmptySlice(event.AttrProcessCommandArgs)
		args.AppendEmpty().SetStr("curl")
		args.AppendEmpty().SetStr("https://ebpf.io")
		if name == event.NameProcessExit {
			r.Attributes().PutInt(event.AttrProcessExitCode, 60)
		}
	}
	return ld
}

// newFileExporter creates and starts, through the factory, an exporter that
// writes uncoloured lines to path.
func newFileExporter(t *testing.T, path string) (consume func(plog.Logs) error, shutdown func() error) {
	t.Helper()
	ctx := context.Background()
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Output = path
	cfg.Color = ColorNever
	require.NoError(t, cfg.Validate())

	exp, err := f.CreateLogs(ctx, exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))
	return func(ld plog.Logs) error { return exp.ConsumeLogs(ctx, ld) },
		func() error { return exp.Shutdown(ctx) }
}

func TestExporterWritesOneLinePerRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	consume, shutdown := newFileExporter(t, path)

	require.NoError(t, consume(execAndExit()))
	require.NoError(t, shutdown())

	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"🚀 process default/xwing /usr/bin/curl https://ebpf.io",
		"💥 exit    default/xwing /usr/bin/curl https://ebpf.io 60",
		"",
	}, strings.Split(string(got), "\n"))

	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

// TestQueuedExporterKeepsOrderAndDrainsAtShutdown: with a sending queue of
// one consumer, as the default configuration sets it, the lines come out
// in the pipeline's order, and Shutdown writes what is still queued.
func TestQueuedExporterKeepsOrderAndDrainsAtShutdown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	ctx := context.Background()
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Output, cfg.Color, cfg.QueueConfig = path, ColorNever, queued(1)
	cfg.QueueConfig.Get().BlockOnOverflow = true
	require.NoError(t, cfg.Validate())
	exp, err := f.CreateLogs(ctx, exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))

	const n = 500
	for i := range n {
		ld := execAndExit()
		ld.ResourceLogs().At(0).Resource().Attributes().PutStr(event.AttrK8sPodName, fmt.Sprintf("pod-%04d", i))
		require.NoError(t, exp.ConsumeLogs(ctx, ld))
	}
	require.NoError(t, exp.Shutdown(ctx))

	got, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	require.Len(t, lines, 2*n, "lines lost in the queue")
	for i := range n {
		pod := fmt.Sprintf("default/pod-%04d ", i)
		if !strings.Contains(lines[2*i], pod) || !strings.Contains(lines[2*i+1], pod) {
			t.Fatalf("lines %d and %d are %q and %q, want %s's exec and exit", 2*i, 2*i+1, lines[2*i], lines[2*i+1], pod)
		}
	}
}

func TestExporterAppendsToExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	require.NoError(t, os.WriteFile(path, []byte("earlier\n"), 0o600))
	consume, shutdown := newFileExporter(t, path)

	require.NoError(t, consume(execAndExit()))
	require.NoError(t, shutdown())

	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "earlier\n"+
		"🚀 process default/xwing /usr/bin/curl https://ebpf.io\n"+
		"💥 exit    default/xwing /usr/bin/curl https://ebpf.io 60\n", string(got))
}

func TestExporterCreatesAMissingDirectoryPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "events.log")
	consume, shutdown := newFileExporter(t, path)
	require.NoError(t, consume(execAndExit()))
	require.NoError(t, shutdown())
	fi, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}

// The collector runs as root: a file another user created at the output
// path, or a link they put there, must not receive the events.
func TestExporterRefusesAnOutputAnotherUserCouldRead(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	planted := filepath.Join(dir, "planted.log")
	require.NoError(t, os.WriteFile(planted, nil, 0o666))
	require.NoError(t, os.Chown(planted, 65534, 65534))
	target, link := filepath.Join(dir, "target"), filepath.Join(dir, "link.log")
	require.NoError(t, os.WriteFile(target, nil, 0o600))
	require.NoError(t, os.Symlink(target, link))

	for path, says := range map[string]string{planted: "owned by nobody (uid 65534)", link: "a symbolic link, not followed"} {
		ctx := context.Background()
		f := NewFactory()
		cfg := f.CreateDefaultConfig().(*Config)
		cfg.Output = path
		exp, err := f.CreateLogs(ctx, exportertest.NewNopSettings(f.Type()), cfg)
		require.NoError(t, err)
		err = exp.Start(ctx, componenttest.NewNopHost())
		require.ErrorIs(t, err, privfile.ErrUnsafe)
		assert.ErrorContains(t, err, "compact exporter: open output: "+path+": "+says)
		assert.NoError(t, exp.Shutdown(ctx))
	}
	for _, f := range []string{planted, target} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.Empty(t, b, "%s was written", f)
	}
}

func TestExporterReturnsWriteError(t *testing.T) {
	e := newCompactExporter(&Config{Output: filepath.Join(t.TempDir(), "events.log"), Color: ColorNever})
	require.NoError(t, e.start(context.Background(), componenttest.NewNopHost()))
	// Close the file under the exporter so the flush fails.
	require.NoError(t, e.file.Close())

	err := e.consumeLogs(context.Background(), execAndExit())
	require.ErrorIs(t, err, os.ErrClosed)
	assert.ErrorContains(t, err, "compact exporter: write to")
}

func TestShutdownWithoutStart(t *testing.T) {
	f := NewFactory()
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), f.CreateDefaultConfig())
	require.NoError(t, err)
	assert.NoError(t, exp.Shutdown(context.Background()))
}

func TestUseColor(t *testing.T) {
	assert.True(t, useColor(ColorAlways, "/tmp/x"))
	assert.False(t, useColor(ColorNever, OutputStdout))
	assert.False(t, useColor(ColorAuto, "/tmp/x"), "auto never colours a file")
}
