package probe

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/settings"
)

func accept(t *testing.T, s string) settings.StatusSet {
	set, err := settings.ParseStatusSet(s)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestWarmupWaitsForAcceptedStatus: 503 and 404 do not count as ready.
func TestWarmupWaitsForAcceptedStatus(t *testing.T) {
	var n atomic.Int32
	var host atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host.Store(r.Host)
		switch n.Add(1) {
		case 1:
			w.WriteHeader(503)
		case 2:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	var reports atomic.Int32
	err := Warmup(context.Background(), WarmupOptions{
		URL: srv.URL + "/", Host: "promo.localhost", Accept: accept(t, "200-399"), Limit: 10 * time.Second,
		Interval: 10 * time.Millisecond, ReportEvery: 5 * time.Millisecond, Report: func(time.Duration) { reports.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got != 3 {
		t.Errorf("ready after %d attempts, want 3", got)
	}
	if got := host.Load(); got != "promo.localhost" {
		t.Errorf("Host header %q, want the app's host", got)
	}
}

func TestWarmupTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	err := Warmup(context.Background(), WarmupOptions{URL: srv.URL, Accept: accept(t, "200"), Limit: 500 * time.Millisecond, Interval: 10 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "status 500") {
		t.Errorf("got %v, want ErrTimeout naming the last status", err)
	}
}

func TestWarmupExited(t *testing.T) {
	exited := make(chan struct{})
	close(exited)
	err := Warmup(context.Background(), WarmupOptions{URL: "http://127.0.0.1:1/", Accept: accept(t, "200"), Limit: 10 * time.Second, Exited: exited})
	if !errors.Is(err, ErrExited) {
		t.Errorf("got %v, want ErrExited", err)
	}
}

func TestWarmupCancelled(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("cancelled by request")
	cancel(cause)
	err := Warmup(ctx, WarmupOptions{URL: "http://127.0.0.1:1/", Accept: accept(t, "200"), Limit: 10 * time.Second})
	if !errors.Is(err, cause) {
		t.Errorf("got %v, want the cancel cause", err)
	}
}
