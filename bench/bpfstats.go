package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
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
