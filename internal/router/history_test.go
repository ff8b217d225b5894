package router

import (
	"testing"
	"time"
)

// TestHistory: requests land in the minute they were answered, 5xx
// counted apart; a minute over an hour old is gone, even where its slot
// has not been reused.
func TestHistory(t *testing.T) {
	var h historyStats
	now := time.Date(2026, 1, 2, 15, 4, 30, 0, time.UTC)
	h.observe(now.Add(-90*time.Minute), 200) // too old to show
	h.observe(now.Add(-2*time.Minute), 200)
	h.observe(now.Add(-2*time.Minute), 503)
	h.observe(now, 200)
	got := h.series(now)
	if len(got) != historyWindow {
		t.Fatalf("got %d minutes, want %d", len(got), historyWindow)
	}
	if last := got[len(got)-1]; !last.Start.Equal(time.Date(2026, 1, 2, 15, 4, 0, 0, time.UTC)) || last.Requests != 1 || last.Errors != 0 {
		t.Errorf("the minute under way: got %+v, want 15:04 with 1 request", last)
	}
	if m := got[len(got)-3]; m.Requests != 2 || m.Errors != 1 {
		t.Errorf("two minutes ago: got %+v, want 2 requests, 1 error", m)
	}
	var total uint64
	for _, m := range got {
		total += m.Requests
	}
	if total != 3 {
		t.Errorf("got %d requests in the hour, want 3 (the one 90 minutes ago is out)", total)
	}
}
