// Command pause is the sandbox (pause) container of the e2e node's pods:
// it holds the pod's namespaces open, reaps the zombies of processes that
// join its PID namespace, and exits on SIGINT or SIGTERM. No image can be
// pulled on the e2e node, so the lane builds this one.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
