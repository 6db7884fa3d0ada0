package kernel

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// PolicyCount is how many times one selector with the Count action matched
// in one cgroup since its hook was installed.
type PolicyCount struct {
	Hook     uint32 // InstalledHook.ID
	Selector uint32 // index in the hook's selectors
	Cgroup   uint64 // the cgroup id, the inode of its cgroup v2 directory
	N        uint64
}

// PolicyCounts reads the kernel's per-cgroup counters of the Count action
// (policy_counts), and the matches it had no room for. The entries of hooks
// whose ids are forgotten (see reclaimLocked) are deleted on the way: their
// selectors are gone, and the map must have room for the running ones.
func (s *Sensor) PolicyCounts() ([]PolicyCount, uint64, error) {
	m := s.maps.PolicyCounts
	var (
		out    []PolicyCount
		gone   []sensorPolicyCountKey
		key    sensorPolicyCountKey
		perCPU []uint64
	)
	// The walk is a system call per entry: the hook table is locked only to
	// tell the running hooks from the forgotten ones, after it.
	it := m.Iterate()
	for it.Next(&key, &perCPU) {
		c := PolicyCount{Hook: key.Hook, Selector: key.Sel, Cgroup: key.Cgroup}
		for _, n := range perCPU {
			c.N += n
		}
		out = append(out, c)
	}
	s.hooks.mu.Lock()
	running := out[:0]
	for _, c := range out {
		if _, ok := s.hooks.byID[c.Hook]; ok {
			running = append(running, c)
		} else {
			gone = append(gone, sensorPolicyCountKey{Hook: c.Hook, Sel: c.Selector, Cgroup: c.Cgroup})
		}
	}
	s.hooks.mu.Unlock()
	out = running
	var errs []error
	if err := it.Err(); err != nil {
		errs = append(errs, fmt.Errorf("reading policy_counts: %w", err))
	}
	for _, k := range gone {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("deleting the counts of hook %d: %w", k.Hook, err))
		}
	}
	var overflow uint64
	var lost []uint64
	if err := s.maps.CountOverflow.Lookup(uint32(0), &lost); err != nil {
		errs = append(errs, fmt.Errorf("reading count_overflow: %w", err))
	}
	for _, n := range lost {
		overflow += n
	}
	return out, overflow, errors.Join(errs...)
}
