package deploy

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
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
// panics there today; the point is what a panic does when it comes. The
// instance must have been handed over for replacement all the same.
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
	m.mu.Lock()
	defer m.mu.Unlock()
	if !inst.replacing {
		t.Error("the unhealthy instance was not handed over for replacement")
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

// TestExitWatcherPanicStillReplaces: a panic in the exit watcher after it
// took the exited instance out of rotation must not lose the instance.
// The watcher starts again after the panic, but no longer finds it in the
// live set; the replacement must have started anyway, and the manager's
// lock must be free.
//
// The panic is injected as in TestHealthCheckPanicLeavesManagerUsable: a
// manager without a logs hub panics when the watcher reports the exit.
// (Its replacement, without a store, panics too, in its own goroutine.)
func TestExitWatcherPanicStillReplaces(t *testing.T) {
	exited, err := runtime.Start(runtime.Spec{ID: "shop-v1-000000", Dir: t.TempDir(), Command: "exit 3", LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	panics := &panicCounter{}
	rt := router.New(router.Options{})
	rt.SetHosts("shop", []string{"shop.test"})
	m := New(Options{Router: rt, BaseDomain: "test", Logger: slog.New(panics)}) // Logs: nil, the injected panic
	defer func() {
		m.cancel()
		m.wg.Wait()
	}()
	inst := &instance{Instance: exited, app: "shop", release: 1,
		backend: router.NewBackend(exited.ID, "127.0.0.1:1"), state: StateReady}
	m.mu.Lock()
	m.live["shop"] = []*instance{inst}
	m.mu.Unlock()
	m.supervise("exit watcher of "+inst.ID, func() { m.watchExit(inst) })

	for deadline := time.Now().Add(10 * time.Second); panics.n.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the exit watcher did not panic within 10 s")
		}
	}
	locked := make(chan struct{})
	go func() {
		m.mu.Lock()
		close(locked)
	}()
	select {
	case <-locked:
	case <-time.After(3 * time.Second):
		t.Fatal("after a panic in the exit watcher, the manager's lock is still held 3 s later")
	}
	defer m.mu.Unlock()
	if len(m.live["shop"]) != 0 {
		t.Errorf("the exited instance is still in rotation")
	}
	if !inst.replacing || !slices.Contains(m.sick["shop"], inst) {
		t.Errorf("the exited instance was not handed over for replacement (replacing %v, waiting %v)", inst.replacing, m.sick["shop"])
	}
}
