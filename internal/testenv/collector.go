package testenv

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Collector is bin/otelcol-vigil running as a child process of a test.
type Collector struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	ready  chan struct{}
}

// CollectorBinary returns the built distribution at relPath (relative to
// the test's package directory), or stops the test as RequireBPF does:
// make test builds it first, a bare `go test` may not have.
func CollectorBinary(tb testing.TB, relPath string) string {
	tb.Helper()
	RequireBPF(tb)
	return CollectorBinaryFile(tb, relPath)
}

// CollectorBinaryFile is CollectorBinary for commands that load no BPF
// (`otelcol-vigil validate`): it needs only the file.
func CollectorBinaryFile(tb testing.TB, relPath string) string {
	tb.Helper()
	bin, err := filepath.Abs(relPath)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		Unavailable(tb, "%s is missing: run `make dist`", bin)
	}
	return bin
}

// StartCollector runs bin with args and env added to the environment, and
// waits until its ebpf receiver has attached its programs. It is stopped
// when the test ends; an unclean exit fails the test.
func StartCollector(tb testing.TB, bin string, env []string, args ...string) *Collector {
	tb.Helper()
	// Off the machine's own collector: a bpffs directory of the test's
	// for the pinned deny lists, and a status file of its own, unless the
	// test chose them.
	set := func(key, value string) {
		if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, key+"=") }) {
			args = append(args, "--set", key+"="+value)
		}
	}
	set("receivers::ebpf::pin_path", PinPath(tb))
	set("receivers::ebpf::status_file", filepath.Join(tb.TempDir(), "policies.json"))
	c := &Collector{cmd: exec.Command(bin, args...), ready: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), env...)
	stdout, _ := c.cmd.StdoutPipe()
	stderr, _ := c.cmd.StderrPipe()
	if err := c.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	var once sync.Once
	go c.copy(stdout, &c.stdout, nil)
	go c.copy(stderr, &c.stderr, func(line string) {
		if strings.Contains(line, "process sensor attached") {
			once.Do(func() { close(c.ready) })
		}
	})
	tb.Cleanup(func() { c.Stop(tb) })
	select {
	case <-c.ready:
	case <-time.After(60 * time.Second):
		tb.Fatalf("the collector did not attach its sensor within 60s; stderr:\n%s", c.Stderr())
	}
	return c
}

func (c *Collector) copy(r io.Reader, into *bytes.Buffer, onLine func(string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		c.mu.Lock()
		into.WriteString(sc.Text() + "\n")
		c.mu.Unlock()
		if onLine != nil {
			onLine(sc.Text())
		}
	}
}

// Stdout is what the collector printed so far.
func (c *Collector) Stdout() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stdout.String()
}

// Stderr is what the collector logged so far.
func (c *Collector) Stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// Stop sends SIGTERM and waits for a clean exit; it may be called more
// than once.
func (c *Collector) Stop(tb testing.TB) {
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			tb.Errorf("the collector exited with %v; stderr:\n%s", err, c.Stderr())
		}
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		tb.Errorf("the collector did not stop within 30s of SIGTERM")
	}
}
