package router

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAcquireNeverReturnsDrained races acquire against Swap and a drain that
// spins on the in-flight counter, with no HTTP in between to hide the
// window. Once a drain has seen zero in flight, the backend is marked dead;
// acquire must never hand out a dead backend.
func TestAcquireNeverReturnsDrained(t *testing.T) {
	r := New(Options{})
	r.SetHosts("a", []string{"a.test"})
	r.Swap("a", []*Backend{NewBackend("0", "x")})
	rt := r.table.Load().lookup("a.test")
	var dead sync.Map // *Backend → true once drained
	var bad, acquired atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5_000_000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				b := rt.acquire(context.Background(), nil)
				if _, isDead := dead.Load(b); isDead {
					bad.Add(1)
				}
				acquired.Add(1)
				runtime.Gosched()
				b.inflight.Add(-1)
			}
		}()
	}
	deadline := time.Now().Add(3 * time.Second)
	for gen := 0; gen < 200_000 && time.Now().Before(deadline); gen++ {
		nb := NewBackend("n", "x")
		for _, b := range r.Swap("a", []*Backend{nb}) {
			for b.inflight.Load() != 0 {
				runtime.Gosched()
			}
			dead.Store(b, true)
		}
	}
	close(stop)
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("acquire returned a drained backend %d times in %d acquisitions", bad.Load(), acquired.Load())
	}
}
