package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// An agent is one observer of the workload: otelcol-vigil or bpftrace.
// Every method but pid is called once per round, in order: start, drain,
// finish; kill may be called at any time and is a no-op once finished.
type agent interface {
	// start launches the agent and returns once it sees every exec.
	start(ctx context.Context, dir string, round int) error
	pid() int
	// drain returns once the agent has handled the events of the loop
	// (bounded by timeout; the caller reports what was seen either way).
	drain(ctx context.Context, pids pidSet, timeout time.Duration) error
	// finish stops the agent and counts what it saw.
	finish(ctx context.Context, pids pidSet, w window) (counts, error)
	kill()
}

// window is the span over which the agent's CPU time is measured: from
// the start of the loop until the agent has drained.
type window struct {
	wallFrom, wallTo int64 // Unix nanoseconds
	monoFrom, monoTo int64 // CLOCK_MONOTONIC nanoseconds
}

func (w window) hasWall(t int64) bool { return t >= w.wallFrom && t <= w.wallTo }
func (w window) hasMono(t int64) bool { return t >= w.monoFrom && t <= w.monoTo }

// counts is what an agent reports for one round.
type counts struct {
	// seen is how many of the loop's execs the agent emitted (by pid).
	seen int
	// events is how many events of any process the agent emitted with an
	// event time inside the window: what its CPU time paid for.
	events int
	// lost is the agent's own count of lost events, -1 when unknown.
	lost int64
}

// proc is a started agent process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid once done is closed
}

// startProc starts cmd with its stdout and stderr appended to logPath. The
// child is killed if this program dies first.
func startProc(cmd *exec.Cmd, logPath string) (*proc, error) {
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child holds its own copy
	cmd.Stdout, cmd.Stderr = log, log
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits up to timeout for the process to end, then
// kills it. A process killed that way is an error: its output may be cut.
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) error {
	if p.exited() {
		return fmt.Errorf("%s had already ended: %v", p.cmd.Path, p.err)
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not end within %v of %v; killed", p.cmd.Path, timeout, sig)
	}
}

func (p *proc) kill() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitForText polls path until it contains text, the process ends, or
// timeout passes.
func waitForText(ctx context.Context, p *proc, path, text string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(text)) {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s ended before %q: %v", p.cmd.Path, text, p.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %q within %v", p.cmd.Path, text, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tail returns the last lines of a log file, for error messages.
func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return "\n\t" + strings.Join(all, "\n\t")
}

// waitCPUIdle returns once the process has used no CPU time over the last
// quiet period (cpuTime has a 10ms resolution), or after timeout.
func waitCPUIdle(ctx context.Context, pid int, quiet, timeout time.Duration) error {
	const every = 100 * time.Millisecond
	history := []time.Duration{}
	deadline := time.Now().Add(timeout)
	keep := int(quiet/every) + 1
	for {
		c, err := cpuTime(pid)
		if err != nil {
			return err
		}
		history = append(history, c)
		if len(history) > keep {
			history = history[1:]
		}
		if len(history) == keep && history[0] == c {
			return nil
		}
		if time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}
