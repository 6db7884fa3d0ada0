// Package syscalls names the syscalls of the architecture Vigil is built
// for: the numbers syscall hooks dispatch on, and the list a policy's
// generated_syscalls list stands for. The tables of every architecture
// Vigil builds for are compiled in, so that a policy can be checked against
// another architecture's (NumberOn).
package syscalls

import (
	"cmp"
	"runtime"
	"slices"
)

// tables are the syscall tables by GOARCH (go generate: gen/).
var tables = map[string]map[string]uint32{
	"amd64": amd64Numbers,
	"arm64": arm64Numbers,
}

// numbers is the table of the architecture this binary runs on.
var numbers = tables[runtime.GOARCH]

// Arches are the architectures NumberOn knows.
func Arches() []string {
	out := make([]string, 0, len(tables))
	for arch := range tables {
		out = append(out, arch)
	}
	slices.Sort(out)
	return out
}

// NumberOn returns the number of the syscall name on the architecture
// arch (a GOARCH).
func NumberOn(arch, name string) (uint32, bool) {
	nr, ok := tables[arch][name]
	return nr, ok
}

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
