package process

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// clockTicks is USER_HZ, the unit of start times in /proc/<pid>/stat; it is
// 100 on every architecture Linux supports today.
const clockTicks = 100

// ScanProcFS adds every process running now, read from the proc filesystem
// mounted at procRoot (the host's, which in a pod is mounted elsewhere than
// /proc), and links each to its parent. cgroup2Root is where the cgroup v2
// hierarchy is mounted, used to learn cgroup ids; empty skips them.
//
// Processes that exit while being read are skipped; the count of processes
// added is returned.
func (c *Cache) ScanProcFS(procRoot, cgroup2Root string) (int, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, fmt.Errorf("scanning %s: %w", procRoot, err)
	}
	var found []*Process
	for _, e := range entries {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		p, err := readProc(filepath.Join(procRoot, e.Name()), uint32(pid), cgroup2Root)
		if err != nil {
			continue
		}
		p.ExecID = ExecID(c.node, p.Ktime, p.PID)
		p.Args = c.redact.Args(p.Binary, p.Args)
		found = append(found, p)
	}
	for _, p := range found {
		c.add(p)
	}
	c.mu.Lock()
	for _, p := range found {
		if c.byID[p.ExecID] == p {
			c.setParent(p, c.byPID[p.PPID])
		}
	}
	c.mu.Unlock()
	markInitTrees(found)
	return len(found), nil
}

// markInitTrees marks the processes that descend from their container's
// init: those whose parent, in the same pid namespace, does. Start times
// cannot order parents first: they count in clock ticks, and an init that
// forks at once shares its tick with the child.
func markInitTrees(found []*Process) {
	byPID := make(map[uint32]*Process, len(found))
	for _, p := range found {
		byPID[p.PID] = p
	}
	// done: decided, the marked ones and the others alike; a chain is
	// walked up to a decided process or an end, then settled on the way
	// back. A pid seen twice on one chain (reused while the scan read)
	// ends it.
	done := make(map[uint32]bool, len(found))
	var chain []*Process
	for _, p := range found {
		chain = chain[:0]
		for q := p; q != nil && !done[q.PID] && !slices.Contains(chain, q); q = byPID[q.PPID] {
			chain = append(chain, q)
			if q.InitTree {
				break
			}
		}
		for i := len(chain) - 1; i >= 0; i-- {
			q := chain[i]
			if parent := byPID[q.PPID]; !q.InitTree && parent != nil && parent.InitTree && parent.nsPIDs == q.nsPIDs {
				q.InitTree = true
			}
			done[q.PID] = true
		}
	}
}

// procStat is what the scan takes of /proc/PID/stat.
type procStat struct {
	comm  string
	ppid  uint32
	start uint64 // clock ticks after boot
}

// parseStat reads /proc/PID/stat: "pid (comm) state ppid ... starttime ...".
// The command name is the process's own choice (prctl, the binary's name):
// it may hold parentheses and blanks, so the fields that follow start
// after the last ')', and it starts after the first '('.
func parseStat(stat []byte) (procStat, error) {
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return procStat{}, errors.New("no command name in parentheses")
	}
	fields := strings.Fields(string(stat[end+1:]))
	// fields[0] is field 3 (state) of proc(5); ppid is 4, starttime 22.
	if len(fields) < 20 {
		return procStat{}, fmt.Errorf("%d fields after the command name, want at least 20", len(fields))
	}
	ppid, err1 := strconv.ParseUint(fields[1], 10, 32)
	start, err2 := strconv.ParseUint(fields[19], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return procStat{}, err
	}
	return procStat{comm: string(stat[open+1 : end]), ppid: uint32(ppid), start: start}, nil
}

func readProc(dir string, pid uint32, cgroup2Root string) (*Process, error) {
	data, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return nil, err
	}
	st, err := parseStat(data)
	if err != nil {
		return nil, fmt.Errorf("%s/stat: %w", dir, err)
	}
	comm, ppid, start := st.comm, st.ppid, st.start
	p := &Process{
		PID:       pid,
		TID:       pid,
		PPID:      ppid,
		StartTime: start * (1e9 / clockTicks),
		ProcFS:    true,
	}
	p.Ktime = p.StartTime

	if cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil && len(cmdline) > 0 {
		p.Args = strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		p.Binary = strings.TrimSuffix(exe, " (deleted)")
	} else if len(p.Args) > 0 {
		p.Binary = p.Args[0]
	} else {
		// Kernel threads have neither: ps shows them by name in brackets.
		p.Binary = "[" + comm + "]"
	}
	p.Cwd, _ = os.Readlink(filepath.Join(dir, "cwd"))
	if status, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		parseStatus(status, p)
	}
	if cg, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		readCgroup(string(cg), cgroup2Root, p)
	}
	return p, nil
}

// parseStatus takes real and effective uid and gid, and the pids of the
// namespaces (NSpid), from /proc/<pid>/status.
func parseStatus(status []byte, p *Process) {
	for _, line := range strings.Split(string(status), "\n") {
		key, rest, ok := strings.Cut(line, ":")
		if ok && key == "NSpid" {
			// "NSpid: 4242 1": pid 1 of a namespace below the host's is
			// a container's init.
			f := strings.Fields(rest)
			p.nsPIDs = len(f)
			p.InitTree = len(f) > 1 && f[len(f)-1] == "1"
			continue
		}
		if !ok || (key != "Uid" && key != "Gid") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		real, _ := strconv.ParseUint(f[0], 10, 32)
		eff, _ := strconv.ParseUint(f[1], 10, 32)
		if key == "Uid" {
			p.UID, p.EUID = uint32(real), uint32(eff)
		} else {
			p.GID, p.EGID = uint32(real), uint32(eff)
		}
	}
}

// readCgroup takes the cgroup v2 path ("0::/path") from /proc/<pid>/cgroup;
// the cgroup id is the inode number of its directory, which is what
// bpf_get_current_cgroup_id() returns in the kernel.
func readCgroup(content, cgroup2Root string, p *Process) {
	for _, line := range strings.Split(content, "\n") {
		rel, ok := strings.CutPrefix(line, "0::")
		if !ok {
			continue
		}
		p.CgroupName = path.Base(rel)
		if cgroup2Root == "" {
			return
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(cgroup2Root, rel), &st); err == nil {
			p.CgroupID = st.Ino
		}
		return
	}
}
