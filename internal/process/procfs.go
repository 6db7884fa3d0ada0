package process

import (
	"bytes"
	"cmp"
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
	// A process descends from its container's init when its parent, in
	// the same pid namespace, does: parents first, by start time.
	slices.SortFunc(found, func(a, b *Process) int { return cmp.Compare(a.StartTime, b.StartTime) })
	byPID := make(map[uint32]*Process, len(found))
	for _, p := range found {
		if parent := byPID[p.PPID]; parent != nil && parent.InitTree && parent.nsPIDs == p.nsPIDs {
			p.InitTree = true
		}
		byPID[p.PID] = p
	}
	return len(found), nil
}

func readProc(dir string, pid uint32, cgroup2Root string) (*Process, error) {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return nil, err
	}
	// The command name is in parentheses and may itself contain them and
	// blanks: the fields that follow start after the last ')'.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return nil, fmt.Errorf("%s/stat: no command name", dir)
	}
	comm := string(stat[bytes.IndexByte(stat, '(')+1 : end])
	fields := strings.Fields(string(stat[end+1:]))
	// fields[0] is field 3 (state) of proc(5); ppid is 4, starttime 22.
	if len(fields) < 20 {
		return nil, fmt.Errorf("%s/stat: %d fields", dir, len(fields))
	}
	ppid, _ := strconv.ParseUint(fields[1], 10, 32)
	start, _ := strconv.ParseUint(fields[19], 10, 64)
	p := &Process{
		PID:       pid,
		TID:       pid,
		PPID:      uint32(ppid),
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
	readIDs(filepath.Join(dir, "status"), p)
	if cg, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		readCgroup(string(cg), cgroup2Root, p)
	}
	return p, nil
}

// readIDs takes real and effective uid and gid, and the pids of the
// namespaces (NSpid), from /proc/<pid>/status.
func readIDs(file string, p *Process) {
	status, err := os.ReadFile(file)
	if err != nil {
		return
	}
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
