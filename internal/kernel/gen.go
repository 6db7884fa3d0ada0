package kernel

// The objects are committed so that `go build` needs no clang; `make generate`
// rebuilds them and CI fails when they differ from bpf/.
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -cflags "-O2 -g -Wall -Werror -I../../bpf" -target bpfel -type exec_record -type fork_record -type exit_record process ../../bpf/process.c
