package lease

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// newService opens a real store (embedded etcd) in a temporary directory
// and a service on it with a new key.
func newService(tb testing.TB) (*Service, *store.Store, []byte) {
	tb.Helper()
	dir := tb.TempDir()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	key, err := LoadKey(filepath.Join(dir, "lease.key"))
	if err != nil {
		tb.Fatal(err)
	}
	return New(Options{Store: st, URL: "http://127.0.0.1:7071", Key: key}), st, key
}

func TestTakeRenewRelease(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newService(t)
	a := SecretOf(s.Register("promo", "promo-v1-a", 1))
	b := SecretOf(s.Register("promo", "promo-v1-b", 1))
	if a == "" || b == "" || a == b || len(a) != 43 {
		t.Fatalf("secrets %q and %q: want two distinct ones of 43 characters", a, b)
	}
	la, err := s.Take(ctx, a, "nightly", 15*time.Second)
	if err != nil || la.Holder != "promo-v1-a" || la.Release != 1 || la.Token == 0 {
		t.Fatalf("a's take: %+v, %v", la, err)
	}
	if again, err := s.Take(ctx, a, "nightly", 15*time.Second); err != nil || again.Token != la.Token {
		t.Errorf("a's renewal: %+v, %v; want token %d", again, err, la.Token)
	}
	var held *store.LeaseHeldError
	if _, err := s.Take(ctx, b, "nightly", 15*time.Second); !errors.As(err, &held) || held.Lease.Holder != "promo-v1-a" {
		t.Errorf("b's take: %v, want a LeaseHeldError naming a", err)
	}
	if got, err := s.Get(ctx, b, "nightly"); err != nil || got.Holder != "promo-v1-a" {
		t.Errorf("b sees: %+v, %v; want a as the holder", got, err)
	}
	if err := s.Release(ctx, b, "nightly"); !errors.As(err, &held) {
		t.Errorf("b gives up a's lease: %v, want a LeaseHeldError", err)
	}
	if err := s.Release(ctx, a, "nightly"); err != nil {
		t.Fatal(err)
	}
	lb, err := s.Take(ctx, b, "nightly", 15*time.Second)
	if err != nil || lb.Token <= la.Token {
		t.Errorf("b's take once a gave it up: %+v, %v; want a token above %d", lb, err, la.Token)
	}
}

// TestSecretsAreBoundToTheirInstance: a secret acts for its instance and
// app only; a made-up or forgotten one for nobody; the same key makes the
// same secret after a restart, another key another one.
func TestSecretsAreBoundToTheirInstance(t *testing.T) {
	ctx := context.Background()
	s, st, key := newService(t)
	shop := SecretOf(s.Register("shop", "shop-v1-a", 1))
	promo := SecretOf(s.Register("promo", "promo-v3-a", 3))
	if _, err := s.Take(ctx, shop, "nightly", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	// The same name in another app is another lease.
	l, err := s.Take(ctx, promo, "nightly", 15*time.Second)
	if err != nil || l.App != "promo" || l.Holder != "promo-v3-a" {
		t.Fatalf("promo's nightly: %+v, %v", l, err)
	}
	if err := s.Release(ctx, promo, "nightly"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, shop, "nightly"); err != nil || got.Holder != "shop-v1-a" {
		t.Errorf("shop's lease after promo gave up its own: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "x", shop[:42], shop + "x", strings.ToUpper(shop)} {
		if _, err := s.Take(ctx, bad, "nightly", 15*time.Second); !errors.Is(err, ErrUnknownSecret) {
			t.Errorf("secret %q: %v, want ErrUnknownSecret", bad, err)
		}
	}
	again := New(Options{Store: st, URL: "http://127.0.0.1:7071", Key: key})
	if got := SecretOf(again.Register("shop", "shop-v1-a", 1)); got != shop {
		t.Errorf("after a restart the secret is %q, want the same %q", got, shop)
	}
	other := New(Options{Store: st, URL: "http://127.0.0.1:7071", Key: make([]byte, KeyBytes)})
	if got := SecretOf(other.Register("shop", "shop-v1-a", 1)); got == shop {
		t.Errorf("another key made the same secret")
	}
	// An endpoint that had to move (its port was taken while the daemon
	// was down) honours none of the old one's secrets: whoever took the
	// port saw those that instances sent there.
	moved := New(Options{Store: st, URL: "http://127.0.0.1:7072", Key: key})
	if got := SecretOf(moved.Register("shop", "shop-v1-a", 1)); got == shop {
		t.Errorf("an endpoint on another port made the same secret")
	}
	if _, err := moved.Take(ctx, shop, "nightly", 15*time.Second); !errors.Is(err, ErrUnknownSecret) {
		t.Errorf("the old endpoint's secret at the moved one: %v, want ErrUnknownSecret", err)
	}
	s.Forget("shop-v1-a")
	if _, err := s.Get(ctx, shop, "nightly"); !errors.Is(err, ErrUnknownSecret) {
		t.Errorf("a forgotten instance's secret: %v, want ErrUnknownSecret", err)
	}
}

// TestStopping: an instance's leases end at its stop signal, and it takes
// none after; another takes them at once, with a larger token.
func TestStopping(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newService(t)
	a := SecretOf(s.Register("promo", "a", 1))
	b := SecretOf(s.Register("promo", "b", 2))
	la, err := s.Take(ctx, a, "poller", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	s.Stopping(ctx, "promo", "a")
	if _, err := s.Take(ctx, a, "poller", 10*time.Second); !errors.Is(err, ErrStopping) {
		t.Errorf("a stopping instance's take: %v, want ErrStopping", err)
	}
	lb, err := s.Take(ctx, b, "poller", 10*time.Second)
	if err != nil || lb.Token <= la.Token || lb.Release != 2 {
		t.Errorf("b's take at once: %+v, %v; want it, token above %d", lb, err, la.Token)
	}
}

func TestRunnerNameIsThePlatforms(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newService(t)
	a := SecretOf(s.Register("promo", "a", 1))
	s.SetRunner("promo", "batch")
	if _, err := s.Take(ctx, a, "batch", 10*time.Second); !errors.Is(err, ErrRunnerName) || !strings.Contains(err.Error(), "$SLIPWAY_LEASE_DIR/batch") {
		t.Errorf("taking the single runner's name: %v, want ErrRunnerName", err)
	}
	s.SetRunner("promo", "")
	if _, err := s.Take(ctx, a, "batch", 10*time.Second); err != nil {
		t.Errorf("once it is no single runner: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newService(t)
	a := SecretOf(s.Register("promo", "a", 1))
	if _, err := s.Take(ctx, a, "Bad/Name", 10*time.Second); !errors.Is(err, settings.ErrInvalidLeaseName) {
		t.Errorf("a bad name: %v", err)
	}
	if _, err := s.Take(ctx, a, "ok", 11*time.Minute); !errors.Is(err, ErrBadTTL) {
		t.Errorf("a long TTL: %v", err)
	}
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{{"", DefaultTTL}, {"15s", 15 * time.Second}, {"1", time.Second}, {"10m", 10 * time.Minute}, {"2m30s", 150 * time.Second}} {
		if got, err := ParseTTL(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseTTL(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"0", "0s", "500ms", "1.5s", "10m1s", "-5s", "abc", "1e3", "601", "36028797018963969", "-36028797018963969", strings.Repeat("9", 100)} {
		if _, err := ParseTTL(in); !errors.Is(err, ErrBadTTL) {
			t.Errorf("ParseTTL(%q): %v, want ErrBadTTL", in, err)
		}
	}
}

func TestLoadKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lease.key")
	k1, err := LoadKey(path)
	if err != nil || len(k1) != KeyBytes {
		t.Fatalf("made: %d bytes, %v", len(k1), err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the key file: %v, %v; want mode 0600", fi.Mode(), err)
	}
	if k2, err := LoadKey(path); err != nil || string(k2) != string(k1) {
		t.Errorf("read back: %v, another key or an error", err)
	}
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := LoadKey(path); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("a damaged key: %v", err)
	}
}

// BenchmarkRenew measures renewals of held leases per second on one node,
// with the real embedded etcd, as jobs renew them on every tick: one
// instance renewing one lease, one call after the other; and 16 instances
// at once, each renewing a lease of its own.
func BenchmarkRenew(b *testing.B) {
	for _, instances := range []int{1, 16} {
		b.Run(fmt.Sprintf("instances=%d", instances), func(b *testing.B) {
			ctx := context.Background()
			s, _, _ := newService(b)
			var next atomic.Int64
			// renew takes a lease for one more instance and renews it n
			// times.
			renew := func(n func() bool) {
				i := next.Add(1)
				secret := SecretOf(s.Register("bench", fmt.Sprintf("bench-v1-%d", i), 1))
				name := fmt.Sprintf("job-%d", i)
				if _, err := s.Take(ctx, secret, name, 30*time.Second); err != nil {
					b.Error(err)
					return
				}
				for n() {
					if _, err := s.Take(ctx, secret, name, 30*time.Second); err != nil {
						b.Error(err)
						return
					}
				}
			}
			b.ResetTimer()
			start := time.Now()
			if instances == 1 {
				i := 0
				renew(func() bool { i++; return i <= b.N })
			} else {
				b.SetParallelism(max(1, instances/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) { renew(pb.Next) })
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "renewals/s")
		})
	}
}
