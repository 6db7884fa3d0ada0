package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openatPath is what the openat loop opens. It does not exist: every call
// is one syscall that fails with ENOENT, so there is no file descriptor to
// close, and every BPF run on sys_enter during the loop is an openat. A
// policy sees the call at entry whatever its outcome. bench/policies/ name
// this path; the bench refuses to run if it exists.
const openatPath = "/tmp/vigil-bench-openat/no-such-file"

// openatLoopCmd is the hidden command of this program that runs the loop in
// a process of its own, so that the loop's events are told apart by pid and
// nothing else of the bench runs in it.
const openatLoopCmd = "__openat-loop"

// openatLoopMain runs in the child: it checks the path, says "ready", waits
// for one byte on stdin, runs the loop and prints how long the loop alone
// took and the CPU time it used, in nanoseconds.
func openatLoopMain(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("%s N PATH", openatLoopCmd)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return fmt.Errorf("%s: N: %q", openatLoopCmd, args[0])
	}
	p, err := unix.BytePtrFromString(args[1])
	if err != nil {
		return err
	}
	// Checked without openat: every openat of the path would be an event.
	if _, err := os.Lstat(args[1]); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: the openat loop needs a path that does not exist (%v)", args[1], err)
	}
	path := uintptr(unsafe.Pointer(p))
	dirfd := unix.AT_FDCWD // a variable: the constant is negative
	cwd := uintptr(dirfd)
	const flags = unix.O_RDONLY | unix.O_CLOEXEC

	// Nothing else runs in this process: one thread, no garbage
	// collection, and RawSyscall, which does not tell the scheduler about
	// the syscall (a failing openat does not block), so that the Go runtime
	// adds nothing to each call but a function call.
	runtime.LockOSThread()
	debug.SetGCPercent(-1)
	fmt.Println("ready")
	var b [1]byte
	if _, err := os.Stdin.Read(b[:]); err != nil {
		return fmt.Errorf("waiting for the start: %w", err)
	}
	var ru0, ru1 unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru0); err != nil {
		return err
	}
	start := time.Now()
	for range n {
		_, _, errno := unix.RawSyscall6(unix.SYS_OPENAT, cwd, path, flags, 0, 0, 0)
		if errno != unix.ENOENT {
			return fmt.Errorf("openat %s: %v, want ENOENT", args[1], errno)
		}
	}
	elapsed := time.Since(start)
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru1); err != nil {
		return err
	}
	runtime.KeepAlive(p)
	cpu := ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
	fmt.Println(elapsed.Nanoseconds(), cpu)
	return nil
}

// openatLoop is a started child running the loop.
type openatLoop struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
}

// startOpenatLoop starts the child and returns once it is ready to loop.
func startOpenatLoop(n int) (*openatLoop, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, openatLoopCmd, strconv.Itoa(n), openatPath)
	cmd.Stderr = os.Stderr
	cmd.Env = []string{"GOMAXPROCS=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("openat loop: %w", err)
	}
	l := &openatLoop{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(stdout)}
	if line, err := l.line(); err != nil || line != "ready" {
		l.kill()
		return nil, fmt.Errorf("openat loop did not start: %q %v", line, err)
	}
	return l, nil
}

func (l *openatLoop) pid() int { return l.cmd.Process.Pid }

func (l *openatLoop) line() (string, error) {
	s, err := l.stdout.ReadString('\n')
	return strings.TrimSpace(s), err
}

// run starts the loop and waits for it to end; it returns the loop's own
// duration and CPU time, as the child measured them.
func (l *openatLoop) run() (wall, cpu time.Duration, err error) {
	if _, err := l.stdin.Write([]byte{'g'}); err != nil {
		l.kill()
		return 0, 0, err
	}
	line, rerr := l.line()
	werr := l.cmd.Wait()
	if rerr != nil || werr != nil {
		return 0, 0, fmt.Errorf("openat loop: %w", errors.Join(rerr, werr))
	}
	var wallNs, cpuNs int64
	if _, err := fmt.Sscan(line, &wallNs, &cpuNs); err != nil {
		return 0, 0, fmt.Errorf("openat loop: %q: %w", line, err)
	}
	return time.Duration(wallNs), time.Duration(cpuNs), nil
}

func (l *openatLoop) kill() {
	_ = l.cmd.Process.Kill()
	_ = l.cmd.Wait()
}
