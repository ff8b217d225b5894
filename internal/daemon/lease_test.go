package daemon

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

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
func TestLeaseListenerKeepsItsPort(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	first, err := leaseListener(ctx, st, "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	addr := first.Addr().String()
	first.Close()
	again, err := leaseListener(ctx, st, "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Addr().String(); got != addr {
		t.Errorf("the next start listens on %s, want %s again", got, addr)
	}
	// again holds the port now: a third start must pick another.
	third, err := leaseListener(ctx, st, "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	again.Close()
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
	ln, err := leaseListener(ctx, st, explicit, log)
	if err != nil || ln.Addr().String() != explicit {
		t.Fatalf("--lease-listen %s: %v, %v", explicit, ln, err)
	}
	ln.Close()
}
