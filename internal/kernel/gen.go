package kernel

// The objects are committed so that `go build` needs no clang; `make generate`
// rebuilds them and CI fails when they differ from bpf/. Syscall arguments
// are read with each target's register layout: bpf2go -target amd64 defines
// __TARGET_ARCH_x86 and names the files after the architecture.
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -cflags "-O2 -g -Wall -Werror -I../../bpf" -target amd64,arm64 -type exec_record -type exec_flags -type proc_flags -type exec_limits -type exec_settings -type fork_record -type exit_record -type hook_record -type hook_conf -type syscall_entry -type proc_info -type str_lpm_key -type addr_lpm_key -type deny_value -type deny_connect_key -type deny_connect6_key -type connect_denied_record -type hook_counters -type policy_cgroup_key -type sock_arg -type cred_arg -type bpf_attr_arg -type bpf_map_arg -type perf_event_arg -type usdt_site -type policy_count_key sensor ../../bpf/sensor.c

// The same programs for Linux 5.10 to 5.16 (bpf/common.h, VIGIL_COMPAT):
// sensorSpec picks this object where the kernel lacks bpf_loop.
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -cflags "-O2 -g -Wall -Werror -I../../bpf -DVIGIL_COMPAT" -target amd64,arm64 -no-global-types -output-stem sensor_compat sensorCompat ../../bpf/sensor.c

// The kernel tables' limits, as Go constants (limitMaxArgs, ...).
//go:generate go run ./cenum -obj sensor_x86_bpfel.o -enum hook_limits -goprefix limit -pkg kernel -source "bpf/hook_types.h's enum hook_limits" -o limits_gen.go

// The argument types of struct arg_conf (argInt, ...).
//go:generate go run ./cenum -obj sensor_x86_bpfel.o -enum arg_type -prefix ARG_ -goprefix arg -pkg kernel -source "bpf/hook_types.h's enum arg_type" -o argtypes_gen.go

// The flags of struct arg_conf (argfSigned, ...).
//go:generate go run ./cenum -obj sensor_x86_bpfel.o -enum arg_flags -prefix ARGF_ -goprefix argf -pkg kernel -source "bpf/hook_types.h's enum arg_flags" -o argflags_gen.go

// The sources of data entries (enum arg_source).
//go:generate go run ./cenum -obj sensor_x86_bpfel.o -enum arg_source -prefix SRC_ -goprefix src -pkg kernel -source "bpf/hook_types.h's enum arg_source" -o argsource_gen.go
