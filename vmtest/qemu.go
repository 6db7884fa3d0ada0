package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// vmOptions sizes the guest.
type vmOptions struct {
	// Accel is QEMU's -accel: TCG by default, kvm where the machine has it.
	Accel   string
	CPUs    int
	MemMiB  int
	Timeout time.Duration
}

// vmRun is what one boot left behind.
type vmRun struct {
	// Results is the guest's second serial port: markers and test output.
	Results []byte
	// Console is the file with the guest's console (kernel messages).
	Console string
	Elapsed time.Duration
	// TimedOut is set when the guest had not powered off by the deadline.
	TimedOut bool
	// QEMUErr is QEMU's own failure, if it could not run the guest at all.
	QEMUErr error
}

// bootVM boots image with initramfs under QEMU's TCG and waits until the
// guest powers off or the timeout passes. Its serial ports are written to
// console.log and results.log in dir.
//
// The kernel's panic=-1 reboots at once and -no-reboot turns that reboot
// into QEMU's exit, which keeps a guest's panic short.
func bootVM(ctx context.Context, arch guestArch, image, initramfs, dir, name string, o vmOptions) vmRun {
	run := vmRun{Console: filepath.Join(dir, "console.log")}
	results := filepath.Join(dir, "results.log")
	os.Remove(run.Console)
	os.Remove(results)
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if arch.sharedSerial() {
		run.Console = results
	}
	cmd := exec.CommandContext(ctx, arch.QEMU, arch.qemuArgs(o, image, initramfs, name, run.Console, results)...)
	out, err := os.Create(filepath.Join(dir, "qemu.log"))
	if err != nil {
		run.QEMUErr = err
		return run
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err = cmd.Run()
	run.Elapsed = time.Since(start)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		run.TimedOut = true
	} else if err != nil {
		// A guest panic or poweroff is not an error here; QEMU failing to
		// start (a bad option, a missing file) is, and says so on stderr.
		log, _ := os.ReadFile(out.Name())
		if len(log) > 0 {
			run.QEMUErr = fmt.Errorf("%w: %s", err, log)
		}
	}
	run.Results, _ = os.ReadFile(results)
	return run
}

// qemuEscape escapes a value inside a QEMU option list, where a comma
// separates options unless doubled.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }
