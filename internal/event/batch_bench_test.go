package event

import (
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/process"
)

// BenchmarkBatchAddHook is the receiver's cost per policy event before the
// pipeline: one openat event of a process with a parent, as the openat
// table of make bench posts them.
func BenchmarkBatchAddHook(b *testing.B) {
	parent := &process.Process{ExecID: "cGFyZW50", PID: 10, PPID: 1, Binary: "/usr/bin/bash", Args: []string{"bash"}}
	p := &process.Process{ExecID: "bm9kZToxMjM0NTY3ODk6NDI=", ParentExecID: "cGFyZW50", PID: 42, TID: 42, PPID: 10,
		StartTime: 123456789, Binary: "/usr/local/bin/openat-loop", Args: []string{"openat-loop", "-n", "1000000", "/tmp/vigil-bench-openat/no-such-file"},
		Cwd: "/root", CgroupID: 1234, CgroupName: "session-3.scope"}
	h := Hook{Time: time.Now(), Process: p, Parent: parent, Name: NameProcessKprobe, Policy: "bench-openat-match",
		Call: "sys_openat", Actions: []string{"Post"},
		Args: []HookArg{{Index: 1, Type: "string", Str: "/tmp/vigil-bench-openat/no-such-file", IsString: true}}}
	clock := func(ns uint64) time.Time { return time.Unix(0, int64(ns)) }
	batch := NewBatch(Host{Name: "node", ID: "machine"}, "dev", clock)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// As the receiver does: a pointer to the one Hook it reuses.
		batch.Add(&h, p.CgroupName)
		if batch.Len() == 1024 {
			batch.Take()
		}
	}
}
