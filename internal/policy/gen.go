package policy

// The Go side of the kernel ABI, generated from the compiled object's BTF
// (bpf/hook_types.h): the limits of the kernel's tables, and the operator
// numbers of enum filter_op.
//go:generate go run ../kernel/cenum -obj ../kernel/sensor_x86_bpfel.o -enum hook_limits -goprefix kernel -pkg policy -source "bpf/hook_types.h's enum hook_limits" -o limits_gen.go
//go:generate go run ../kernel/cenum -obj ../kernel/sensor_x86_bpfel.o -enum filter_op -prefix SOP_ -type Op -names kernelOpNames -pkg policy -source "bpf/hook_types.h's enum filter_op" -o op_gen.go
