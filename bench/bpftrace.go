package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// bpftraceProgram prints what Vigil's exec event carries at the least: the
// pid and the binary, plus the event time (CLOCK_MONOTONIC), which tells
// the bench which events fall into the CPU window.
const bpftraceProgram = `tracepoint:sched:sched_process_exec { printf("%llu %d %s\n", nsecs, pid, str(args->filename)); }`

const (
	// bpftraceReady is what bpftrace prints, to its output, once attached.
	bpftraceReady = "Attaching"
	// bpftraceQuiet: bpftrace writes its output file through a full stdio
	// buffer, so the file does not show progress; the drain waits instead
	// until bpftrace has used no CPU for this long.
	bpftraceQuiet = 500 * time.Millisecond

	tracefs = "/sys/kernel/tracing"
	// withTracefs is the hidden command of this program that mounts tracefs
	// in its own mount namespace and execs the rest of its arguments.
	withTracefs = "__exec-with-tracefs"
)

// bpftraceLost matches bpftrace's report of perf buffer overruns.
var bpftraceLost = regexp.MustCompile(`Lost (\d+) events`)

type bpftraceAgent struct {
	bin, workloadName string
	readyTimeout      time.Duration

	p        *proc
	log, out string
}

func (a *bpftraceAgent) pid() int { return a.p.cmd.Process.Pid }
func (a *bpftraceAgent) kill()    { a.p.kill() }

func (a *bpftraceAgent) start(ctx context.Context, dir string, round int) error {
	a.log = filepath.Join(dir, fmt.Sprintf("bpftrace-%d.log", round))
	a.out = filepath.Join(dir, fmt.Sprintf("bpftrace-%d.out", round))
	args := []string{"-o", a.out, "-e", bpftraceProgram}
	var cmd *exec.Cmd
	if tracefsMounted() {
		cmd = exec.Command(a.bin, args...)
	} else {
		// bpftrace's tracepoint probes read tracefs. Mount it in a private
		// mount namespace, so that the host's mounts stay as they are.
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bpftrace: %w", err)
		}
		cmd = exec.Command(self, append([]string{withTracefs, a.bin}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	}
	var err error
	if a.p, err = startProc(cmd, a.log); err != nil {
		return fmt.Errorf("bpftrace: %w", err)
	}
	if err := waitForText(ctx, a.p, a.out, bpftraceReady, a.readyTimeout); err != nil {
		a.p.kill()
		return fmt.Errorf("bpftrace: %w; its log (%s):%s", err, a.log, tail(a.log, 15))
	}
	return nil
}

func (a *bpftraceAgent) drain(ctx context.Context, _ pidSet, timeout time.Duration) error {
	if err := waitCPUIdle(ctx, a.pid(), bpftraceQuiet, timeout); err != nil {
		return fmt.Errorf("bpftrace: %w", err)
	}
	return nil
}

func (a *bpftraceAgent) finish(_ context.Context, pids pidSet, w window) (counts, error) {
	// SIGINT: bpftrace reads what is left in its buffers and flushes.
	if err := a.p.stop(syscall.SIGINT, 30*time.Second); err != nil {
		return counts{}, fmt.Errorf("bpftrace: %w; its log:%s", err, tail(a.log, 15))
	}
	f, err := os.Open(a.out)
	if err != nil {
		return counts{}, fmt.Errorf("bpftrace: %w", err)
	}
	defer f.Close()
	c := counts{}
	seen := map[int32]struct{}{}
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		if m := bpftraceLost.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			c.lost += n
			continue
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 {
			continue // "Attaching 1 probe..." and the like
		}
		ns, err1 := strconv.ParseInt(f[0], 10, 64)
		pid, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if w.hasMono(ns) {
			c.events++
		}
		if pids.has(pid) && filepath.Base(f[2]) == a.workloadName {
			seen[int32(pid)] = struct{}{}
		}
	}
	if err := s.Err(); err != nil {
		return counts{}, fmt.Errorf("bpftrace: %s: %w", a.out, err)
	}
	// Lost counts also reach the log when bpftrace prints them to stderr.
	if b, err := os.ReadFile(a.log); err == nil {
		for _, m := range bpftraceLost.FindAllStringSubmatch(string(b), -1) {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			c.lost += n
		}
	}
	c.seen = len(seen)
	return c, nil
}

// tracefsMounted says whether bpftrace will find the sched tracepoints.
func tracefsMounted() bool {
	for _, dir := range []string{tracefs, "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(filepath.Join(dir, "events/sched/sched_process_exec")); err == nil {
			return true
		}
	}
	return false
}

// execWithTracefs runs in the child started with a new mount namespace
// (which Go makes private, so nothing propagates back): it mounts tracefs
// and replaces itself with args, keeping the pid the bench measures.
func execWithTracefs(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s: nothing to run", withTracefs)
	}
	// EBUSY: tracefs is mounted there already (since the bench checked).
	if err := syscall.Mount("tracefs", tracefs, "tracefs", 0, ""); err != nil && err != syscall.EBUSY {
		return fmt.Errorf("mounting tracefs on %s: %w", tracefs, err)
	}
	bin, err := exec.LookPath(args[0])
	if err != nil {
		return err
	}
	return syscall.Exec(bin, args, os.Environ())
}
