package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
	"time"
)

// workload is the program every mode times: fork, exec and wait for one
// binary, n times in a row, from this process.
type workload struct {
	path string
	argv []string
	attr *syscall.ProcAttr
}

func newWorkload(path string) (*workload, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	// devNull stays open for the life of the program: every child gets it
	// as stdin, stdout and stderr.
	fd := devNull.Fd()
	return &workload{
		path: path,
		argv: []string{path},
		attr: &syscall.ProcAttr{Env: []string{}, Files: []uintptr{fd, fd, fd}},
	}, nil
}

// run forks, execs and waits for the workload binary len(pids) times and
// records each child's pid. The loop is the same in every mode and does
// nothing else: the garbage collector is off while it runs, and syscall
// ForkExec uses vfork semantics (CLONE_VFORK|CLONE_VM), so the parent's
// size does not matter.
func (w *workload) run(pids []int) (time.Duration, error) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	start := time.Now()
	for i := range pids {
		pid, err := syscall.ForkExec(w.path, w.argv, w.attr)
		if err != nil {
			return 0, fmt.Errorf("workload: exec %s: %w", w.path, err)
		}
		var ws syscall.WaitStatus
		for {
			_, err = syscall.Wait4(pid, &ws, 0, nil)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		if err != nil {
			return 0, fmt.Errorf("workload: wait for %s: %w", w.path, err)
		}
		if !ws.Exited() || ws.ExitStatus() != 0 {
			return 0, fmt.Errorf("workload: %s ended with status %#x", w.path, uint32(ws))
		}
		pids[i] = pid
	}
	return time.Since(start), nil
}

// pidSet is the set of the workload's pids in one round.
type pidSet map[int32]struct{}

func newPIDSet(pids []int) pidSet {
	s := make(pidSet, len(pids))
	for _, p := range pids {
		s[int32(p)] = struct{}{}
	}
	return s
}

func (s pidSet) has(pid int64) bool {
	_, ok := s[int32(pid)]
	return ok
}
