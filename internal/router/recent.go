package router

import (
	"sync/atomic"
	"time"
)

// recentWindow is how far back Recent looks, in one-second slots.
const recentWindow = 60

// recentStats keeps the last minute of an app's requests in a ring of
// one-second slots, with atomics only, so the request path takes no lock.
// A slot is reset by the first request of a new second; a request racing
// that reset in the same slot may be lost, so the figures are close, not
// exact (the Prometheus counters are exact).
type recentStats struct {
	slots [recentWindow]recentSlot
}

type recentSlot struct {
	sec     atomic.Int64 // the Unix second the slot holds
	count   atomic.Uint64
	errors  atomic.Uint64 // answers of 5xx
	buckets [numBuckets]atomic.Uint64
}

func (r *recentStats) observe(now time.Time, status int, bucket int) {
	sec := now.Unix()
	s := &r.slots[sec%recentWindow]
	if old := s.sec.Load(); old != sec && s.sec.CompareAndSwap(old, sec) {
		s.count.Store(0)
		s.errors.Store(0)
		for i := range s.buckets {
			s.buckets[i].Store(0)
		}
	}
	s.count.Add(1)
	if status >= 500 {
		s.errors.Add(1)
	}
	s.buckets[bucket].Add(1)
}

// Recent sums up an app's requests of the last minute.
type Recent struct {
	// Requests is how many requests were answered in the window.
	Requests uint64 `json:"requests"`
	// PerSecond is Requests over the window's length.
	PerSecond float64 `json:"per_second"`
	// ErrorRate is the share of answers with a 5xx status, 0 to 1.
	ErrorRate float64 `json:"error_rate"`
	// P95 is the upper bound of the latency bucket that holds the 95th
	// percentile, in seconds; 0 when there were no requests.
	P95 float64 `json:"p95_seconds"`
}

func (r *recentStats) summary(now time.Time) Recent {
	var out Recent
	var errs uint64
	var buckets [numBuckets]uint64
	cur := now.Unix()
	for i := range r.slots {
		s := &r.slots[i]
		if sec := s.sec.Load(); sec > cur-recentWindow && sec <= cur {
			out.Requests += s.count.Load()
			errs += s.errors.Load()
			for j := range buckets {
				buckets[j] += s.buckets[j].Load()
			}
		}
	}
	if out.Requests == 0 {
		return out
	}
	out.PerSecond = float64(out.Requests) / recentWindow
	out.ErrorRate = float64(errs) / float64(out.Requests)
	var total, cum uint64
	for _, n := range buckets {
		total += n
	}
	for j, n := range buckets {
		cum += n
		if float64(cum) >= 0.95*float64(total) {
			if j < len(latencyBuckets) {
				out.P95 = latencyBuckets[j]
			} else {
				out.P95 = latencyBuckets[len(latencyBuckets)-1] // over the last bound: say at least that
			}
			break
		}
	}
	return out
}

// Recent returns app's traffic of the last minute.
func (r *Router) Recent(app string) Recent {
	r.mu.Lock()
	rt := r.findLocked(app)
	r.mu.Unlock()
	if rt == nil {
		return Recent{}
	}
	return rt.stats.recent.summary(time.Now())
}
