package process

import "testing"

// An init and the child it forked at once share their start tick, and a
// scan may list the child first: the child is still in the init's tree, as
// is its own child, and a process of the host is not.
func TestInitTreeDoesNotDependOnScanOrder(t *testing.T) {
	procs := func() []*Process {
		return []*Process{
			{PID: 30, PPID: 20, nsPIDs: 2},                // the child's child
			{PID: 20, PPID: 10, nsPIDs: 2},                // the init's child
			{PID: 10, PPID: 1, nsPIDs: 2, InitTree: true}, // pid 1 of its namespace
			{PID: 40, PPID: 1, nsPIDs: 1},                 // a host process
			{PID: 50, PPID: 10, nsPIDs: 3},                // pid 1 of a namespace below
			{PID: 60, PPID: 60, nsPIDs: 2},                // its own parent: a pid reused mid-scan
		}
	}
	want := map[uint32]bool{30: true, 20: true, 10: true, 40: false, 50: false, 60: false}
	for _, order := range [][]int{{0, 1, 2, 3, 4, 5}, {5, 4, 3, 2, 1, 0}, {2, 0, 4, 1, 5, 3}} {
		all := procs()
		found := make([]*Process, len(order))
		for i, j := range order {
			found[i] = all[j]
		}
		markInitTrees(found)
		for _, p := range found {
			if p.InitTree != want[p.PID] {
				t.Errorf("order %v: pid %d InitTree = %v, want %v", order, p.PID, p.InitTree, want[p.PID])
			}
		}
	}
}
