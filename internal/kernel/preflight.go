package kernel

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNotPrivileged is returned when the process lacks the capabilities that
// loading BPF programs needs.
var ErrNotPrivileged = errors.New("loading BPF programs needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN; run as root or grant them")

// ErrNoKernelBTF is returned when the kernel does not describe its own types:
// every Vigil program relies on CO-RE relocations against them.
var ErrNoKernelBTF = errors.New("kernel BTF not found at /sys/kernel/btf/vmlinux: the kernel needs CONFIG_DEBUG_INFO_BTF=y")

const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// btfPath is a variable so that tests can point it at a missing file.
var btfPath = "/sys/kernel/btf/vmlinux"

// CheckPrerequisites reports, before anything is loaded, what this process or
// kernel lacks to run the sensors, so that the error names the missing piece
// instead of surfacing as an EPERM from deep inside the loader.
func CheckPrerequisites() error {
	privileged, err := hasBPFCapabilities()
	if err != nil {
		return fmt.Errorf("reading process capabilities: %w", err)
	}
	if !privileged {
		return ErrNotPrivileged
	}
	if _, err := os.Stat(btfPath); err != nil {
		return ErrNoKernelBTF
	}
	return nil
}

func hasBPFCapabilities() (bool, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false, err
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	return has(capSysAdmin) || (has(capBPF) && has(capPerfmon)), nil
}
