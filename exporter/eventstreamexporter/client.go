package eventstreamexporter

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/pdata/plog"
)

// maxRecordsPerMessage bounds the records of one response. A batch from
// the batch processor can hold 8192 records, more than fits in gRPC's
// default 4 MiB message limit that clients other than `vigil events` keep.
const maxRecordsPerMessage = 256

// item is one response waiting to be sent: records (records > 0), or a
// count of records this client missed at this point of the stream.
type item struct {
	logs    plog.Logs
	records int
	missed  uint64
}

// client is one subscription. The pipeline offers it records without ever
// waiting; its own goroutine (the Subscribe call) sends them. What waits in
// between is bounded by limit records; beyond it records are counted as
// missed, and the count is sent in order, where the records would have been.
type client struct {
	filter *filter
	limit  int
	peer   string // who subscribed, for the collector's log

	// wake has room for one signal: a send while one is pending changes
	// nothing, since the sender takes everything queued when it wakes.
	wake chan struct{}

	mu     sync.Mutex
	items  []item
	queued int // records in items and in the sender's hands, not yet sent
	missed uint64
	warned bool
}

func newClient(f *filter, limit int, peer string) *client {
	return &client{filter: f, limit: limit, peer: peer, wake: make(chan struct{}, 1)}
}

// offer queues the records of ld that match the client's filter. It
// returns how many of them the client missed, and true the first time the
// client misses records, so the caller can say so once in the collector's
// log. The records are copied: the
// pipeline may reuse ld once its consumers have returned.
func (c *client) offer(ctx context.Context, ld plog.Logs) (missedNow int, firstMiss bool) {
	room := c.room()
	var b chunker
	var missed int
	for i, rl := range ld.ResourceLogs().All() {
		if !c.filter.matchResource(rl.Resource().Attributes()) {
			continue
		}
		for j, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if !c.filter.matchRecord(ctx, rl, sl, lr) {
					continue
				}
				// Counting what will not fit, rather than copying it
				// first, keeps a stuck client cheap for the pipeline.
				if room == 0 {
					missed++
					continue
				}
				b.add(i, j, rl, sl, lr)
				room--
			}
		}
	}
	if len(b.chunks) == 0 && missed == 0 {
		return 0, false
	}
	missedNow, firstMiss = c.push(b.chunks, missed)
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return missedNow, firstMiss
}

func (c *client) room() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(c.limit-c.queued, 0)
}

// push appends chunks in order, and then missed. It checks the room again:
// another batch may have been offered concurrently since room was read.
func (c *client) push(chunks []item, missed int) (missedNow int, firstMiss bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range chunks {
		if c.queued+ch.records > c.limit {
			c.missLocked(ch.records)
			missedNow += ch.records
			continue
		}
		c.items = append(c.items, ch)
		c.queued += ch.records
	}
	if missed > 0 {
		c.missLocked(missed)
		missedNow += missed
	}
	if c.missed > 0 && !c.warned {
		c.warned = true
		return missedNow, true
	}
	return missedNow, false
}

// missLocked records n missed records at the current end of the queue,
// merging with a count already there.
func (c *client) missLocked(n int) {
	if k := len(c.items); k > 0 && c.items[k-1].records == 0 {
		c.items[k-1].missed += uint64(n)
	} else {
		c.items = append(c.items, item{missed: uint64(n)})
	}
	c.missed += uint64(n)
}

// take hands everything queued to the sender. The records stay counted
// against the limit until release, so a client blocked in a send holds no
// more than limit records in all.
func (c *client) take() []item {
	c.mu.Lock()
	defer c.mu.Unlock()
	items := c.items
	c.items = nil
	return items
}

// release returns the room of n records that have been sent.
func (c *client) release(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queued -= n
}

// totalMissed is the number of records this client has missed so far.
func (c *client) totalMissed() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.missed
}

// chunker copies records into responses of at most maxRecordsPerMessage
// records, keeping each with a copy of its resource and scope.
type chunker struct {
	chunks []item
	rl     plog.ResourceLogs
	sl     plog.ScopeLogs
	// ri and si are the indexes, in the source batch, of the resource and
	// scope rl and sl copy; -1 when the current chunk has none yet.
	ri, si int
}

func (b *chunker) add(i, j int, rl plog.ResourceLogs, sl plog.ScopeLogs, lr plog.LogRecord) {
	if k := len(b.chunks); k == 0 || b.chunks[k-1].records == maxRecordsPerMessage {
		b.chunks = append(b.chunks, item{logs: plog.NewLogs()})
		b.ri, b.si = -1, -1
	}
	cur := &b.chunks[len(b.chunks)-1]
	if i != b.ri {
		b.rl = cur.logs.ResourceLogs().AppendEmpty()
		rl.Resource().CopyTo(b.rl.Resource())
		b.rl.SetSchemaUrl(rl.SchemaUrl())
		b.ri, b.si = i, -1
	}
	if j != b.si {
		b.sl = b.rl.ScopeLogs().AppendEmpty()
		sl.Scope().CopyTo(b.sl.Scope())
		b.sl.SetSchemaUrl(sl.SchemaUrl())
		b.si = j
	}
	lr.CopyTo(b.sl.LogRecords().AppendEmpty())
	cur.records++
}

// hub is the set of subscribed clients. The pipeline reads it on every
// batch without locking: with no client, a batch costs one atomic load.
type hub struct {
	max     int
	mu      sync.Mutex // serialises changes to clients
	clients atomic.Pointer[[]*client]
}

func newHub(maxClients int) *hub {
	h := &hub{max: maxClients}
	h.clients.Store(&[]*client{})
	return h
}

// snapshot is the current clients; the slice is never modified.
func (h *hub) snapshot() []*client { return *h.clients.Load() }

// add subscribes c, unless max clients already are; it returns the number
// of clients before c on failure.
func (h *hub) add(c *client) (ok bool, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.snapshot()
	if len(cur) >= h.max {
		return false, len(cur)
	}
	next := append(slices.Clip(cur), c)
	h.clients.Store(&next)
	return true, len(next)
}

func (h *hub) remove(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	next := slices.DeleteFunc(slices.Clone(h.snapshot()), func(x *client) bool { return x == c })
	h.clients.Store(&next)
}
