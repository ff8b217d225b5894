package router

import (
	"testing"
	"time"
)

func TestRecentSummary(t *testing.T) {
	var r recentStats
	now := time.Unix(1_000_000, 0)
	r.observe(now.Add(-2*time.Minute), 500, 14) // out of the window
	for i := range 90 {
		r.observe(now.Add(-time.Duration(i%50)*time.Second), 200, 0) // ≤ 1 ms
	}
	for range 6 {
		r.observe(now, 503, 8) // ≤ 0.5 s
	}
	for range 4 {
		r.observe(now, 200, 10) // ≤ 2.5 s
	}
	got := r.summary(now)
	want := Recent{Requests: 100, PerSecond: 100.0 / 60, ErrorRate: 0.06, P95: 0.5}
	if got != want {
		t.Errorf("summary = %+v, want %+v", got, want)
	}
	if got := r.summary(now.Add(2 * time.Minute)); got != (Recent{}) {
		t.Errorf("two minutes later: %+v, want nothing", got)
	}
}
