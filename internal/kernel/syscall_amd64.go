package kernel

// syscallPrefix names the syscall wrappers of x86-64
// (CONFIG_ARCH_HAS_SYSCALL_WRAPPER), the functions Tetragon hooks too:
// __x64_sys_openat(const struct pt_regs *regs) is what the syscall table
// calls, regs holding the syscall's arguments.
const syscallPrefix = "__x64_sys_"

// syscallEntries are the syscalls of syscall_64.tbl whose entry point is
// not sys_<name>. The functions of their own names serve the 32-bit ABI: a
// probe there would never see the 64-bit call.
var syscallEntries = map[string]string{
	"stat": "newstat", "fstat": "newfstat", "lstat": "newlstat",
	"uname": "newuname", "umount2": "umount", "sendfile": "sendfile64",
}
