package event

import (
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/internal/process"
)

// TestBatchRepeatedProcessAttributes: the records of a run of events of one
// process carry the same process attributes as a record built on its own,
// and a record changed downstream does not leak into the next one.
func TestBatchRepeatedProcessAttributes(t *testing.T) {
	parent := &process.Process{ExecID: "cGFyZW50", PID: 10, PPID: 1, Binary: "/usr/bin/bash", Args: []string{"bash"}}
	grand := &process.Process{ExecID: "Z3JhbmQ=", PID: 1, Binary: "/sbin/init"}
	p := &process.Process{ExecID: "cA==", ParentExecID: parent.ExecID, PID: 42, TID: 42, PPID: 10, StartTime: 5,
		Binary: "/usr/bin/cat", Args: []string{"cat", "/etc/shadow"}, Cwd: "/root", CgroupID: 7, CgroupName: "session-3.scope"}
	other := &process.Process{ExecID: "bw==", PID: 43, TID: 44, Binary: "/usr/bin/true", Args: []string{"true"}, ProcFS: true}
	hook := func(p *process.Process, path string) Hook {
		return Hook{Time: time.Unix(1, 0), Process: p, Parent: parent, Ancestors: []*process.Process{grand},
			Name: NameProcessKprobe, Policy: "open", Call: "sys_openat", Actions: []string{"Post"},
			Args: []HookArg{{Index: 1, Type: "string", Str: path, IsString: true}}}
	}
	clock := func(ns uint64) time.Time { return time.Unix(0, int64(ns)) }
	alone := func(h Hook) map[string]any {
		lr := plog.NewLogRecord()
		h.fill(lr, newProcessAttrs(clock))
		return lr.Attributes().AsRaw()
	}

	var events []Hook
	for _, path := range []string{"/a", "/b", "/c", "/d", "/e"} {
		events = append(events, hook(p, path))
	}
	events = append(events, hook(other, "/x"), hook(p, "/y"))
	// A processor downstream may change what it was given, such as the
	// record the attributes were copied from, or one they were copied to.
	changed := map[int]bool{2: true, 3: true}
	batch := NewBatch(Host{Name: "node"}, "dev", clock)
	for i, h := range events {
		batch.Add(h, h.Process.CgroupName)
		if changed[i] {
			recs := batch.logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
			recs.At(i).Attributes().PutStr(AttrProcessExecutablePath, "changed")
		}
	}
	var got []map[string]any
	rls := batch.Take().ResourceLogs()
	for i := range rls.Len() {
		recs := rls.At(i).ScopeLogs().At(0).LogRecords()
		for j := range recs.Len() {
			got = append(got, recs.At(j).Attributes().AsRaw())
		}
	}
	if len(got) != len(events) {
		t.Fatalf("%d records, want %d", len(got), len(events))
	}
	for i, h := range events {
		want := alone(h)
		if changed[i] {
			want[AttrProcessExecutablePath] = "changed"
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("record %d:\n got %v\nwant %v", i, got[i], want)
		}
	}
}
