package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/store"
)

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:0", "127.0.0.1:7071", "[::1]:0", "127.1.2.3:80"} {
		if err := checkLoopback(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for addr, want := range map[string]string{
		":0":            "must listen on a loopback address",
		"0.0.0.0:7071":  "must listen on a loopback address",
		"10.0.0.1:7071": "must listen on a loopback address",
		"localhost:0":   "must listen on a loopback address",
		"127.0.0.1":     "want host:port",
		"":              "want host:port",
	} {
		if err := checkLoopback(addr); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error saying %q", addr, err, want)
		}
	}
}

// TestLeaseListenerKeepsItsPort: port 0 picks a port once; the next start
// listens on the same one, so that instances that outlived the daemon
// keep their SLIPWAY_LEASE_URL; if it is taken, another one is picked.
// Each start is a process with a socket of its own, which it closes as
// it exits.
func TestLeaseListenerKeepsItsPort(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	start := func(addr string) (net.Listener, *leaseSocket) {
		t.Helper()
		ls := &leaseSocket{}
		ln, err := leaseListener(ctx, st, ls, addr, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close(); ls.ln.Close() })
		return ln, ls
	}
	first, ls := start("127.0.0.1:0")
	addr := first.Addr().String()
	first.Close()
	ls.ln.Close()
	again, ls := start("127.0.0.1:0")
	if got := again.Addr().String(); got != addr {
		t.Errorf("the next start listens on %s, want %s again", got, addr)
	}
	// again holds the port now: a third start must pick another.
	third, _ := start("127.0.0.1:0")
	again.Close()
	ls.ln.Close()
	if got := third.Addr().String(); got == addr {
		t.Errorf("listened on %s, which was taken", got)
	}
	if rec, _ := st.LeaseEndpoint(ctx); rec != third.Addr().String() {
		t.Errorf("recorded %s, want the new address %s", rec, third.Addr())
	}
	l, err := net.Listen("tcp", "127.0.0.1:0") // an explicit port is used as it is
	if err != nil {
		t.Fatal(err)
	}
	explicit := l.Addr().String()
	l.Close()
	if ln, _ := start(explicit); ln.Addr().String() != explicit {
		t.Fatalf("--lease-listen %s: listens on %s", explicit, ln.Addr())
	}
}

// TestLeaseSocketOutlivesItsCore: between one core and the next of the
// same process (an upgrade's old process that takes the data directory
// back), the lease endpoint's port stays open: a renewal that arrives
// meanwhile waits, and the next core answers it, on the same port.
func TestLeaseSocketOutlivesItsCore(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	ls := &leaseSocket{}
	defer func() { ls.ln.Close() }()
	first, err := leaseListener(ctx, st, ls, "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	addr := first.Addr().String()
	first.Close() // the first core closes
	answered := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/v1/leases/x/y")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusTeapot {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a call between two cores ended at once: %v; want it to wait for the next core", err)
	case <-time.After(200 * time.Millisecond):
	}
	next, err := leaseListener(ctx, st, ls, "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	if got := next.Addr().String(); got != addr {
		t.Errorf("the next core listens on %s, want %s", got, addr)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })}
	go srv.Serve(next)
	defer srv.Close()
	if err := <-answered; err != nil {
		t.Errorf("the call made between two cores: %v; want the next core's answer", err)
	}
}
