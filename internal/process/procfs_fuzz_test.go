package process

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzParseStat: a stat line written from known values parses back to
// them, whatever the command name holds (a process names itself: blanks,
// parentheses, digits); and no input, however malformed, panics the scan.
func FuzzParseStat(f *testing.F) {
	f.Add("bash", uint32(1), uint64(4242), []byte("1 (bash) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 17 0 0"))
	f.Add(") (x) S 1 (", uint32(7), uint64(1), []byte("(("))
	f.Add("a b", uint32(0), uint64(1<<63), []byte(")"))
	f.Fuzz(func(t *testing.T, comm string, ppid uint32, start uint64, junk []byte) {
		parseStat(junk) // must not panic
		if strings.ContainsAny(comm, "\n") {
			return // the kernel writes one line
		}
		// Fields 3 to 22 of proc(5), then more.
		line := fmt.Sprintf("123 (%s) S %d 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0 0\n", comm, ppid, start)
		st, err := parseStat([]byte(line))
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if st.comm != comm || st.ppid != ppid || st.start != start {
			t.Fatalf("%q parsed as %+v, want comm %q ppid %d start %d", line, st, comm, ppid, start)
		}
	})
}

// FuzzParseStatus: the ids and NSpid of a status file written from known
// values come back; other input never panics.
func FuzzParseStatus(f *testing.F) {
	f.Add(uint32(1000), uint32(0), uint32(5), uint32(5), "4242 1", []byte("Uid:\t1\nNSpid:\n"))
	f.Fuzz(func(t *testing.T, uid, euid, gid, egid uint32, nspid string, junk []byte) {
		parseStatus(junk, &Process{}) // must not panic
		if strings.ContainsAny(nspid, "\n") {
			return
		}
		status := fmt.Sprintf("Name:\tx\nUid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\nNSpid:\t%s\n", uid, euid, euid, euid, gid, egid, egid, egid, nspid)
		var p Process
		parseStatus([]byte(status), &p)
		if p.UID != uid || p.EUID != euid || p.GID != gid || p.EGID != egid {
			t.Fatalf("%q parsed as uid %d/%d gid %d/%d", status, p.UID, p.EUID, p.GID, p.EGID)
		}
		f := strings.Fields(nspid)
		if p.nsPIDs != len(f) || p.InitTree != (len(f) > 1 && f[len(f)-1] == "1") {
			t.Fatalf("NSpid %q: %d pids, init tree %v", nspid, p.nsPIDs, p.InitTree)
		}
	})
}
