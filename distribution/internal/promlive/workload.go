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

// Workload runs until ctx ends and must have returned before Close. Every
// 100ms it
//   - runs /usr/bin/true, some with the argument drop (exec and exit
//     events; the enforcement rules: skipped, and taken on the drops);
//   - opens files the posting policy matches (policy events);
//   - runs cat on files the counting policy matches, inside the two
//     containers' cgroups (counted by container, never posted);
//   - every other tick, runs cat on a file the kill policy matches: the
//     kernel kills it.
//
// The amounts step up and down every 10 seconds, not all in the same
// direction, so that plots show change and their lines part. It returns
// the number of cats the kernel killed, and an error only when a program
// cannot be started.
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
		phase := int(time.Since(start)/(10*time.Second)) % 4
		up, down := []int{1, 2, 3, 2}[phase], []int{3, 2, 1, 2}[phase]
		run := func(cmd *exec.Cmd) (*exec.ExitError, error) {
			err := cmd.Run()
			var exit *exec.ExitError
			if err == nil || errors.As(err, &exit) || ctx.Err() != nil {
				return exit, nil
			}
			return nil, fmt.Errorf("workload: %s: %w", cmd, err)
		}
		var cmds []*exec.Cmd
		for range up {
			cmds = append(cmds, exec.CommandContext(ctx, "/usr/bin/true"))
		}
		if i%2 == 0 {
			for range down {
				cmds = append(cmds, exec.CommandContext(ctx, "/usr/bin/true", "drop"))
			}
		}
		// The web container counts steadily, the batch one in bursts.
		for j, c := range l.containers {
			n := up
			if j == 1 {
				n = 0
				if phase == 2 {
					n = 2 * down
				}
			}
			for k := range n {
				cmd := exec.CommandContext(ctx, "/usr/bin/cat", filepath.Join(l.WorkDir, fmt.Sprintf("count-%s-%d-%d", c.name, i, k)))
				cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(c.dir.Fd())}
				cmds = append(cmds, cmd)
			}
		}
		for _, cmd := range cmds {
			if _, err := run(cmd); err != nil {
				return killed, err
			}
		}
		for j := range 2 * down {
			// The file need not exist: the policy matches the path
			// the open asks for.
			if f, err := os.Open(filepath.Join(l.WorkDir, fmt.Sprintf("post-%d-%d", i, j))); err == nil {
				f.Close()
			}
		}
		if i%2 == 0 {
			exit, err := run(exec.CommandContext(ctx, "/usr/bin/cat", filepath.Join(l.WorkDir, fmt.Sprintf("kill-%d", i))))
			if err != nil {
				return killed, err
			}
			if ctx.Err() != nil {
				return killed, nil // killed by the context, not the policy
			}
			if exit != nil && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
				killed++
			}
		}
	}
}
