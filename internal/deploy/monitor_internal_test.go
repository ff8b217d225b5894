package deploy

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/runtime"
	"github.com/slipway-dev/slipway/internal/settings"
)

// TestHealthCheckPanicLeavesManagerUsable: the health checks run under
// supervise, which recovers a panic and starts them again. A panic while
// they hold the manager's lock must not leave it locked: after it, the
// manager answers (here: Instances) as before.
//
// The panic is injected: a manager without a logs hub panics when the
// health checks report an unhealthy instance, under m.mu. Nothing real
// panics there today; the point is what a panic does when it comes.
func TestHealthCheckPanicLeavesManagerUsable(t *testing.T) {
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer sick.Close()
	panics := &panicCounter{}
	m := New(Options{Router: router.New(router.Options{}), BaseDomain: "test",
		Logger: slog.New(panics)}) // Logs: nil, the injected panic
	defer m.cancel() // not Stop, which takes the lock this test may find held
	addr := strings.TrimPrefix(sick.URL, "http://")
	inst := &instance{Instance: &runtime.Instance{ID: "shop-v1-000000"}, app: "shop", release: 1,
		backend: router.NewBackend("shop-v1-000000", addr), state: StateReady}
	m.mu.Lock()
	m.live["shop"] = []*instance{inst}
	m.mu.Unlock()
	s := settings.Settings{HealthPath: "/", HealthInterval: 1, HealthTimeout: 1, HealthThreshold: 1}.WithDefaults()
	m.supervise("health checks of "+inst.ID, func() { m.monitor(inst, s) })

	for deadline := time.Now().Add(10 * time.Second); panics.n.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the health checks did not panic within 10 s")
		}
	}
	answered := make(chan struct{})
	go func() {
		m.Instances("shop")
		close(answered)
	}()
	select {
	case <-answered:
	case <-time.After(3 * time.Second):
		t.Fatal("after a panic in the health checks, Instances still waits for the manager's lock 3 s later: the panic left it locked")
	}
}

// panicCounter is a slog handler that counts the panics safego logs.
type panicCounter struct{ n atomic.Int32 }

func (p *panicCounter) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicCounter) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *panicCounter) WithGroup(string) slog.Handler            { return p }
func (p *panicCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "recovered a panic" {
		p.n.Add(1)
	}
	return nil
}
