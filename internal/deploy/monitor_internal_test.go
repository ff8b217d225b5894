package deploy

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
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
	m := New(Options{Router: router.New(router.Options{}), BaseDomain: "test",
		Logger: slog.New(slog.DiscardHandler)}) // Logs: nil, the injected panic
	defer m.cancel() // not Stop, which takes the lock this test may find held
	addr := strings.TrimPrefix(sick.URL, "http://")
	inst := &instance{Instance: &runtime.Instance{ID: "shop-v1-000000"}, app: "shop", release: 1,
		backend: router.NewBackend("shop-v1-000000", addr), state: StateReady}
	m.mu.Lock()
	m.live["shop"] = []*instance{inst}
	m.mu.Unlock()
	s := settings.Settings{HealthPath: "/", HealthInterval: 1, HealthTimeout: 1, HealthThreshold: 1}.WithDefaults()
	m.supervise("health checks of "+inst.ID, func() { m.monitor(inst, s) })

	time.Sleep(1500 * time.Millisecond) // the first check fails and panics at ~1 s
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
