package kernel

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// maxPolicyCgroups is the size of policy_cgroups (bpf/hook_match.h), shared by
// all pod-scoped policies.
const maxPolicyCgroups = 32768

// cgroupSet is a pod-scoped policy's entries in policy_cgroups: the cgroup
// v2 ids of the containers it applies to.
type cgroupSet struct {
	id      uint32
	members map[uint64]bool
}

// SetPolicyCgroups makes ids the cgroups the pod-scoped policy ph applies
// to (the containers its podSelector, containerSelector or namespace
// selects), adding and removing only the difference, so that cgroups in
// both the old and the new set never stop matching. It fails for a policy
// that is not pod-scoped.
func (s *Sensor) SetPolicyCgroups(ph *PolicyHooks, ids []uint64) error {
	t := s.hooks
	t.mu.Lock()
	defer t.mu.Unlock()
	if ph.scope == nil {
		return errors.New("the policy is not pod-scoped: it has no cgroup set")
	}
	set := ph.scope
	m := s.maps.PolicyCgroups
	want := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	// Additions first: a cgroup in both sets never stops matching.
	errs := []error{s.addCgroups(set, ids)}
	for id := range set.members {
		if want[id] {
			continue
		}
		if err := m.Delete(sensorPolicyCgroupKey{Set: set.id, Cgroup: id}); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("removing cgroup %d from the policy's set: %w", id, err))
			continue
		}
		delete(set.members, id)
	}
	return errors.Join(errs...)
}

// addCgroups puts ids into set. The hooks table lock is held.
func (s *Sensor) addCgroups(set *cgroupSet, ids []uint64) error {
	m := s.maps.PolicyCgroups
	var errs []error
	for _, id := range ids {
		if set.members[id] {
			continue
		}
		if err := m.Put(sensorPolicyCgroupKey{Set: set.id, Cgroup: id}, uint8(1)); err != nil {
			if errors.Is(err, unix.E2BIG) { // the hash map is full
				err = fmt.Errorf("%w: at most %d cgroups across pod-scoped policies", err, maxPolicyCgroups)
			}
			errs = append(errs, fmt.Errorf("adding cgroup %d to the policy's set: %w", id, err))
			continue
		}
		set.members[id] = true
	}
	return errors.Join(errs...)
}

func (ph *PolicyHooks) scopeOrNil() *cgroupSet {
	if ph == nil {
		return nil
	}
	return ph.scope
}

// PolicyCgroups returns the cgroups the pod-scoped policy ph applies to
// now, as the kernel has them.
func (s *Sensor) PolicyCgroups(ph *PolicyHooks) []uint64 {
	t := s.hooks
	t.mu.Lock()
	defer t.mu.Unlock()
	if ph.scope == nil {
		return nil
	}
	out := make([]uint64, 0, len(ph.scope.members))
	for id := range ph.scope.members {
		out = append(out, id)
	}
	return out
}

// clearCgroupSet deletes a retired policy's cgroup entries. The hooks
// table lock is held.
func (s *Sensor) clearCgroupSet(set *cgroupSet) {
	m := s.maps.PolicyCgroups
	for id := range set.members {
		m.Delete(sensorPolicyCgroupKey{Set: set.id, Cgroup: id})
	}
	set.members = map[uint64]bool{}
}
