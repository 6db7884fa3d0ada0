package main

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// floorProgram is the least a BPF program on sys_enter can cost: an empty
// program (r0 = 0; exit) on the raw tracepoint, the hook Vigil's syscall
// hooks run on (Vigil attaches it as tp_btf where the kernel has BTF, raw_tp
// otherwise; both are the same tracepoint call). It is built here from
// instructions, no compiler needed.
type floorProgram struct {
	prog *ebpf.Program
	link link.Link
}

func attachFloor() (*floorProgram, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, err
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "bench_floor",
		Type:         ebpf.RawTracepoint,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "GPL",
	})
	if err != nil {
		return nil, fmt.Errorf("loading the empty program: %w", err)
	}
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_enter", Program: prog})
	if err != nil {
		prog.Close()
		return nil, fmt.Errorf("attaching the empty program to raw tracepoint sys_enter: %w", err)
	}
	return &floorProgram{prog: prog, link: l}, nil
}

func (f *floorProgram) id() (ebpf.ProgramID, error) {
	info, err := f.prog.Info()
	if err != nil {
		return 0, err
	}
	id, ok := info.ID()
	if !ok {
		return 0, errors.New("the kernel does not report program ids")
	}
	return id, nil
}

func (f *floorProgram) Close() error {
	return errors.Join(f.link.Close(), f.prog.Close())
}
