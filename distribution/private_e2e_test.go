package distribution_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/testenv"
)

// asNobody runs cat on path as an unprivileged user and returns what it
// printed and whether it could read the file.
func asNobody(t *testing.T, path string) (string, bool) {
	t.Helper()
	cmd := exec.Command("/bin/cat", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 {
		t.Errorf("%s is owned by uid %d, want root", path, st.Uid)
	}
	return fi.Mode().Perm()
}

// The default configuration's outputs (events file, status file, socket)
// are root's alone. The run moves them under a world-traversable directory
// of the test; the directories below it are created as they would be
// under /var.
func TestDefaultOutputsAreRootsAlone(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.CollectorBinary(t, "../bin/otelcol-vigil")
	root := t.TempDir()
	// Others may enter the test's directory: only what Vigil creates may
	// keep them out.
	os.Chmod(root, 0o755)
	events := filepath.Join(root, "log", "vigil", "events.jsonl")
	run := filepath.Join(root, "run", "vigil")
	status, socket := filepath.Join(run, "policies.json"), filepath.Join(run, "events.sock")

	c := testenv.StartCollector(t, bin, []string{
		"VIGIL_EVENTS_FILE=" + events,
		"VIGIL_METRICS_ENDPOINT=127.0.0.1:0",
		"VIGIL_HEALTH_ENDPOINT=127.0.0.1:0",
		"VIGIL_EVENTS_SOCKET=" + socket,
	}, "--config", "vigil:default", "--set", "receivers::ebpf::status_file="+status)
	marker, _ := runMarker(t)
	eventually(t, "the marker in the events file", func() (bool, string) {
		_, recs := logRecords(t, events, marker)
		return len(recs) > 0, c.Stderr()
	})
	eventually(t, "the status file", func() (bool, string) {
		_, err := os.Stat(status)
		return err == nil, c.Stderr()
	})

	for path, want := range map[string]fs.FileMode{
		filepath.Dir(events): 0o700, run: 0o700, status: 0o600, socket: 0o600,
	} {
		if got := perm(t, path); got != want {
			t.Errorf("%s: mode %04o, want %04o", path, got, want)
		}
	}
	for _, path := range []string{events, status} {
		if out, ok := asNobody(t, path); ok || !strings.Contains(out, "Permission denied") {
			t.Errorf("nobody reading %s: ok=%v, %q; want Permission denied", path, ok, out)
		}
	}
	c.Stop(t)
}

// An output file another user planted at the configured path is refused
// at start, naming the path and the owner, and receives nothing.
func TestCollectorRefusesAnOutputAnotherUserPlanted(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.CollectorBinary(t, "../bin/otelcol-vigil")
	dir := t.TempDir()
	planted := filepath.Join(dir, "compact.log")
	if err := os.WriteFile(planted, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chown(planted, 65534, 65534)
	os.Chmod(planted, 0o666)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config", "vigil:default",
		"--set", "exporters::compact::output="+planted,
		"--set", "receivers::ebpf::status_file="+filepath.Join(dir, "run", "policies.json"))
	cmd.Env = append(os.Environ(),
		"VIGIL_EVENTS_FILE="+filepath.Join(dir, "log", "events.jsonl"),
		"VIGIL_METRICS_ENDPOINT=127.0.0.1:0",
		"VIGIL_HEALTH_ENDPOINT=127.0.0.1:0",
		"VIGIL_EVENTS_SOCKET="+filepath.Join(dir, "run", "events.sock"))
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("the collector ran with a planted output (err %v):\n%s", err, out)
	}
	want := planted + ": owned by nobody (uid 65534), not by root (uid 0)"
	if !strings.Contains(string(out), want) {
		t.Errorf("the collector's error does not say %q:\n%s", want, out)
	}
	if b, _ := os.ReadFile(planted); len(b) != 0 {
		t.Errorf("the planted file received %d bytes", len(b))
	}
}
