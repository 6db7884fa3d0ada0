package enforcementprocessor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/event"
)

// clockTicksNs is the length of a USER_HZ clock tick (100 Hz on Linux
// whatever CONFIG_HZ is), the unit of /proc/<pid>/stat's start time.
const clockTicksNs = 1e7

// signalProcess sends sig to the process pid if it is still the process
// that started at startBootNs (CLOCK_BOOTTIME ns). It returns "" when the
// signal was sent, else the reason it was not (pid_gone, pid_reused) or an
// error.
//
// The pidfd is opened first and the start time checked after: a pidfd
// refers to one process for its lifetime, so the process checked is the
// one signalled even if the pid is recycled meanwhile; a pid recycled
// before the open shows a start time that does not match and is left alone.
func signalProcess(procfs string, pid int, startBootNs int64, sig unix.Signal) (string, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return event.ReasonPIDGone, nil
	}
	if err != nil {
		return "", fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	state, ticks, err := procStart(procfs, pid)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return event.ReasonPIDGone, nil
	}
	if err != nil {
		return "", err
	}
	if ticks != uint64(startBootNs)/clockTicksNs {
		return event.ReasonPIDReused, nil
	}
	if state == "Z" || state == "X" {
		return event.ReasonPIDGone, nil
	}
	err = unix.PidfdSendSignal(fd, sig, nil, 0)
	if errors.Is(err, unix.ESRCH) {
		return event.ReasonPIDGone, nil
	}
	if err != nil {
		return "", fmt.Errorf("pidfd_send_signal %d: %w", pid, err)
	}
	return "", nil
}

// procStart reads the state and the start time (field 22, clock ticks since
// boot) of a process from /proc/<pid>/stat.
func procStart(procfs string, pid int) (state string, ticks uint64, err error) {
	b, err := os.ReadFile(filepath.Join(procfs, strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces
	// and parentheses itself: fields are counted after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, fmt.Errorf("%s/%d/stat: no command name", procfs, pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", 0, fmt.Errorf("%s/%d/stat: %d fields", procfs, pid, len(f)+2)
	}
	ticks, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%s/%d/stat: start time: %w", procfs, pid, err)
	}
	return f[0], ticks, nil
}
