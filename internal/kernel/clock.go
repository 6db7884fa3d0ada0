package kernel

import (
	"time"

	"golang.org/x/sys/unix"
)

// BootClock maps CLOCK_BOOTTIME nanoseconds, the clock of every record
// (bpf_ktime_get_boot_ns) and of /proc start times, to wall-clock time.
type BootClock struct {
	// offset is wall time minus boot time, sampled once: re-sampling would
	// let NTP steps reorder events that happened in order.
	offset int64
}

// NewBootClock samples the offset between the wall clock and CLOCK_BOOTTIME.
func NewBootClock() BootClock {
	return BootClock{offset: time.Now().UnixNano() - BootTimeNow()}
}

// Time converts a CLOCK_BOOTTIME reading to wall-clock time.
func (c BootClock) Time(boot uint64) time.Time {
	return time.Unix(0, int64(boot)+c.offset)
}

// BootTimeNow reads CLOCK_BOOTTIME in nanoseconds.
func BootTimeNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		// CLOCK_BOOTTIME exists since Linux 2.6.39; nothing older loads BPF.
		panic(err)
	}
	return ts.Nano()
}
