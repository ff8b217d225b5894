package router

import (
	"sync/atomic"
	"time"
)

// historyWindow is how far back History looks, in one-minute slots.
const historyWindow = 60

// historyStats keeps the last hour of an app's requests in a ring of
// one-minute slots, as recentStats keeps the last minute: atomics only,
// figures close, not exact.
type historyStats struct {
	slots [historyWindow]historySlot
}

type historySlot struct {
	min    atomic.Int64 // the Unix minute the slot holds
	count  atomic.Uint64
	errors atomic.Uint64 // answers of 5xx
}

func (h *historyStats) observe(now time.Time, status int) {
	m := now.Unix() / 60
	s := &h.slots[m%historyWindow]
	if old := s.min.Load(); old != m && s.min.CompareAndSwap(old, m) {
		s.count.Store(0)
		s.errors.Store(0)
	}
	s.count.Add(1)
	if status >= 500 {
		s.errors.Add(1)
	}
}

// Minute is one minute of an app's requests.
type Minute struct {
	// Start is when the minute began.
	Start time.Time
	// Requests is how many requests were answered in it; Errors how many
	// of them with a 5xx status.
	Requests, Errors uint64
}

// series returns the last historyWindow minutes up to now's, oldest
// first, those without requests included.
func (h *historyStats) series(now time.Time) []Minute {
	cur := now.Unix() / 60
	out := make([]Minute, historyWindow)
	for i := range out {
		m := cur - historyWindow + 1 + int64(i)
		out[i].Start = time.Unix(m*60, 0).UTC()
		if s := &h.slots[m%historyWindow]; s.min.Load() == m {
			out[i].Requests, out[i].Errors = s.count.Load(), s.errors.Load()
		}
	}
	return out
}

// History returns app's requests of the last hour, a Minute each, oldest
// first; the last is the minute under way.
func (r *Router) History(app string) []Minute {
	r.mu.Lock()
	rt := r.findLocked(app)
	r.mu.Unlock()
	if rt == nil {
		return (&historyStats{}).series(time.Now())
	}
	return rt.stats.history.series(time.Now())
}
