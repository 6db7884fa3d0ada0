// Package syscalls names the syscalls of the architecture Vigil is built
// for: the numbers syscall hooks dispatch on, and the list a policy's
// generated_syscalls list stands for.
package syscalls

import (
	"cmp"
	"slices"
)

// Number returns the number of the syscall name ("openat").
func Number(name string) (uint32, bool) {
	nr, ok := numbers[name]
	return nr, ok
}

var names = func() map[uint32]string {
	m := make(map[uint32]string, len(numbers))
	for name, nr := range numbers {
		m[nr] = name
	}
	return m
}()

// Name returns the name of syscall number nr, "" for a number the table
// lacks.
func Name(nr uint32) string { return names[nr] }

// All returns every syscall's name, by number.
func All() []string {
	out := make([]string, 0, len(numbers))
	for name := range numbers {
		out = append(out, name)
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(numbers[a], numbers[b]) })
	return out
}
