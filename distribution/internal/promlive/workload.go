package promlive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Workload runs until ctx ends. Every 100ms it runs /usr/bin/true (exec
// and exit events; the enforcement rule, in monitor mode), opens files the
// post and count policies match, and runs cat on a file the kill policy
// matches, which the kernel kills. How much it does in a tick steps up and
// down every 10 seconds, so that plots show change. It returns the number
// of cats killed, and an error only when a program cannot be started.
func (l *Lab) Workload(ctx context.Context) (killed int, err error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return killed, nil
		case <-tick.C:
		}
		// 1, 2, 3, 2, 1, 2, ... every 10 seconds.
		phase := int(time.Since(start)/(10*time.Second)) % 4
		n := []int{1, 2, 3, 2}[phase]
		for j := range n {
			if err := exec.CommandContext(ctx, "/usr/bin/true").Run(); err != nil && ctx.Err() == nil {
				return killed, fmt.Errorf("workload: /usr/bin/true: %w", err)
			}
			for _, prefix := range []string{"post-", "count-"} {
				// The file need not exist: the policies match the
				// path the open asks for.
				if f, err := os.Open(filepath.Join(l.WorkDir, fmt.Sprintf("%s%d-%d", prefix, i, j))); err == nil {
					f.Close()
				}
			}
		}
		if i%2 == 0 {
			err := exec.CommandContext(ctx, "/usr/bin/cat", filepath.Join(l.WorkDir, fmt.Sprintf("kill-%d", i))).Run()
			if ctx.Err() != nil {
				return killed, nil // killed by the context, not the policy
			}
			var exit *exec.ExitError
			switch {
			case errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL:
				killed++
			case err != nil && !errors.As(err, &exit):
				return killed, fmt.Errorf("workload: /usr/bin/cat: %w", err)
			}
		}
	}
}
