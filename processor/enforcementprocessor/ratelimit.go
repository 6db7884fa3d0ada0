package enforcementprocessor

import (
	"hash/fnv"
	"sync"
	"time"
)

// limiter allows at most n actions in any window of length per: it keeps
// the times of the last n actions and allows one more only when the oldest
// of them is at least per ago. Safe for concurrent use.
type limiter struct {
	mu    sync.Mutex
	per   time.Duration
	times []time.Time // ring of the last n allowed actions
	next  int
	full  bool
}

func newLimiter(n int, per time.Duration) *limiter {
	return &limiter{per: per, times: make([]time.Time, n)}
}

// allow reports whether an action at now is within the limit, and counts
// it when it is.
func (l *limiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.full && now.Sub(l.times[l.next]) < l.per {
		return false
	}
	l.times[l.next] = now
	l.next++
	if l.next == len(l.times) {
		l.next, l.full = 0, true
	}
	return true
}

// ruleID is the id a rule's deny-list entries carry: FNV-1a of its name,
// so that it is the same across restarts and collectors.
func ruleID(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	if id := h.Sum64(); id != 0 {
		return id
	}
	return 1
}
