package kernel

// syscallPrefix names the syscall wrappers of arm64, which, as x86-64's,
// take the syscall's pt_regs: __arm64_sys_openat(const struct pt_regs *regs).
const syscallPrefix = "__arm64_sys_"

// syscallEntries are the syscalls of asm-generic/unistd.h (arm64's table)
// whose 64-bit entry point is not sys_<name>: the __SC_3264 and __SC_COMP
// lines pick another function for 64-bit callers.
var syscallEntries = map[string]string{
	"fstat": "newfstat", "uname": "newuname", "umount2": "umount",
	"fadvise64": "fadvise64_64",
}
