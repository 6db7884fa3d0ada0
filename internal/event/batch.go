package event

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/internal/k8s"
)

// ScopeName is the instrumentation scope of every record Vigil's receiver emits.
const ScopeName = "github.com/vigilsec/vigil/receiver/ebpfreceiver"

// Host describes the node; its attributes go on every resource.
type Host struct {
	Name     string // host.name
	ID       string // host.id: the machine id
	NodeName string // k8s.node.name, when running in a cluster
}

// Event is anything that becomes one log record.
type Event interface {
	fill(lr plog.LogRecord, pa *processAttrs)
}

// Batch groups events into OTLP logs: one ResourceLogs per container, and
// one for processes of the host itself.
type Batch struct {
	host    Host
	version string
	// procs puts process attributes; its clock maps CLOCK_BOOTTIME to
	// wall time, for times carried inside events (process creation).
	procs *processAttrs
	logs  plog.Logs
	// records per container id ("" is the host) in the current batch.
	records map[string]plog.LogRecordSlice
	n       int
}

// NewBatch returns an empty batch. version is the scope version.
func NewBatch(host Host, version string, clock func(uint64) time.Time) *Batch {
	b := &Batch{host: host, version: version, procs: newProcessAttrs(clock)}
	b.reset()
	return b
}

func (b *Batch) reset() {
	b.logs = plog.NewLogs()
	b.records = make(map[string]plog.LogRecordSlice)
	b.n = 0
}

// Add appends the event under the resource of its process's container.
func (b *Batch) Add(ev Event, cgroupName string) {
	id := k8s.ContainerIDFromCgroup(cgroupName)
	recs, ok := b.records[id]
	if !ok {
		rl := b.logs.ResourceLogs().AppendEmpty()
		b.putResource(rl.Resource().Attributes(), id)
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(ScopeName)
		sl.Scope().SetVersion(b.version)
		recs = sl.LogRecords()
		b.records[id] = recs
	}
	lr := recs.AppendEmpty()
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	ev.fill(lr, b.procs)
	b.n++
}

func (b *Batch) putResource(attrs pcommon.Map, containerID string) {
	attrs.PutStr(AttrHostName, b.host.Name)
	if b.host.ID != "" {
		attrs.PutStr(AttrHostID, b.host.ID)
	}
	attrs.PutStr(AttrOSType, "linux")
	if b.host.NodeName != "" {
		attrs.PutStr(AttrK8sNodeName, b.host.NodeName)
	}
	if containerID != "" {
		attrs.PutStr(AttrContainerID, containerID)
	}
}

// Len is the number of events in the batch.
func (b *Batch) Len() int { return b.n }

// Take returns the batch's logs and starts a new batch.
func (b *Batch) Take() plog.Logs {
	l := b.logs
	b.reset()
	return l
}
