package testenv

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

var pins atomic.Uint64

// PinPath is a bpffs directory of the test's own for a sensor's pinned maps
// (kernel.SensorOptions.PinPath, the receiver's and the enforcement
// processor's pin_path), never kernel.DefaultPinPath: a collector may be
// running on the machine. It is removed when the test ends, after the
// cleanups registered later (closing the sensor) have run.
func PinPath(tb testing.TB) string {
	pin := fmt.Sprintf("/sys/fs/bpf/vigil-test-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), pins.Add(1))
	tb.Cleanup(func() { os.RemoveAll(pin) })
	return pin
}
