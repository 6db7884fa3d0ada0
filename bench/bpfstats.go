package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// enableBPFStats turns on the kernel's run time and run count of every BPF
// program (BPF_ENABLE_STATS, Linux 5.8+) until the returned Closer is
// closed or this program ends: the sysctl kernel.bpf_stats_enabled is left
// as it was. It costs each program run two clock reads.
func enableBPFStats() (io.Closer, error) {
	return ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
}

// programsOf returns the ids of the BPF programs a process holds open.
func programsOf(pid int) ([]ebpf.ProgramID, error) {
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	seen := map[ebpf.ProgramID]bool{}
	var ids []ebpf.ProgramID
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed in the meantime
		}
		s := bufio.NewScanner(f)
		for s.Scan() {
			v, ok := strings.CutPrefix(s.Text(), "prog_id:")
			if !ok {
				continue
			}
			id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err == nil && !seen[ebpf.ProgramID(id)] {
				seen[ebpf.ProgramID(id)] = true
				ids = append(ids, ebpf.ProgramID(id))
			}
		}
		f.Close()
	}
	return ids, nil
}

// bpfSnapshot is the run time and count of some programs at one moment.
type bpfSnapshot map[ebpf.ProgramID]ebpf.ProgramStats

func snapshotPrograms(ids []ebpf.ProgramID) (bpfSnapshot, error) {
	snap := bpfSnapshot{}
	for _, id := range ids {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			return nil, fmt.Errorf("BPF program %d: %w", id, err)
		}
		st, err := p.Stats()
		p.Close()
		if err != nil {
			return nil, fmt.Errorf("BPF program %d: %w", id, err)
		}
		snap[id] = *st
	}
	return snap, nil
}

// perProcess sums, over the programs, the mean run time of one run between
// two snapshots: what one process costs in the kernel when each program
// runs once for it (vigil: fork, exec, exit; bpftrace: exec). Programs that
// did not run are left out.
func perProcess(from, to bpfSnapshot) time.Duration {
	var total time.Duration
	for id, b := range to {
		a := from[id]
		if runs := b.RunCount - a.RunCount; runs > 0 {
			total += (b.Runtime - a.Runtime) / time.Duration(runs)
		}
	}
	return total
}

// programsNamed returns the ids of the BPF programs a process holds whose
// kernel name starts with prefix. The kernel keeps the first 15 bytes of a
// name: vigil_sys_enter_btf and vigil_sys_enter_raw are both
// "vigil_sys_enter".
func programsNamed(pid int, prefix string) ([]ebpf.ProgramID, error) {
	ids, err := programsOf(pid)
	if err != nil {
		return nil, err
	}
	var named []ebpf.ProgramID
	for _, id := range ids {
		name, err := programName(id)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(name, prefix) {
			named = append(named, id)
		}
	}
	return named, nil
}

func programName(id ebpf.ProgramID) (string, error) {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return "", fmt.Errorf("BPF program %d: %w", id, err)
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return "", fmt.Errorf("BPF program %d: %w", id, err)
	}
	return info.Name, nil
}

// otherAttached counts the BPF links on the host whose program's name
// starts with prefix and is not in ours: another Vigil (a test run, a second
// collector) whose syscall hooks would slow every mode down alike. Links,
// not programs: a program of a collector that just stopped outlives its
// detachment for a moment.
func otherAttached(prefix string, ours []ebpf.ProgramID) int {
	n := 0
	var it link.Iterator
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || slices.Contains(ours, info.Program) {
			continue
		}
		if name, err := programName(info.Program); err == nil && strings.HasPrefix(name, prefix) {
			n++
		}
	}
	return n
}

// runs is what some programs did between two snapshots, summed.
type runs struct {
	time  time.Duration
	count uint64
}

// perRun is the mean run time in nanoseconds; -1 when the programs did
// not run.
func (r runs) perRun() float64 {
	if r.count == 0 {
		return -1
	}
	return float64(r.time.Nanoseconds()) / float64(r.count)
}

func runsBetween(from, to bpfSnapshot) runs {
	var r runs
	for id, b := range to {
		a := from[id]
		r.time += b.Runtime - a.Runtime
		r.count += b.RunCount - a.RunCount
	}
	return r
}
