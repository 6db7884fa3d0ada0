package syscalls

import (
	"runtime"
	"slices"
	"testing"
)

// Numbers from the kernel's own tables: arch/x86/entry/syscalls/
// syscall_64.tbl and include/uapi/asm-generic/unistd.h, which arm64 uses.
func TestTablesHoldTheKernelsNumbers(t *testing.T) {
	for _, c := range []struct {
		arch, name string
		nr         uint32
	}{
		{"amd64", "read", 0}, {"amd64", "open", 2}, {"amd64", "execve", 59}, {"amd64", "openat", 257}, {"amd64", "openat2", 437},
		{"arm64", "openat", 56}, {"arm64", "read", 63}, {"arm64", "newfstatat", 79}, {"arm64", "execve", 221}, {"arm64", "openat2", 437},
	} {
		if nr, ok := NumberOn(c.arch, c.name); !ok || nr != c.nr {
			t.Errorf("%s %s: %d (%v), want %d", c.arch, c.name, nr, ok, c.nr)
		}
	}
	// The calls arm64 never had.
	for _, name := range []string{"open", "stat", "fork", "rename", "dup2"} {
		if nr, ok := NumberOn("arm64", name); ok {
			t.Errorf("arm64 has %s (%d): it is x86-64's alone", name, nr)
		}
	}
	if got := Arches(); !slices.Equal(got, []string{"amd64", "arm64"}) {
		t.Errorf("arches %v", got)
	}
	// The build's own table is its architecture's.
	for _, name := range All() {
		nr, _ := Number(name)
		if on, ok := NumberOn(runtime.GOARCH, name); !ok || on != nr || Name(nr) != name {
			t.Fatalf("%s: %d here, %d (%v) on %s, named %q back", name, nr, on, ok, runtime.GOARCH, Name(nr))
		}
	}
}
