package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/settings"
)

func job(holder, name string, ttl int64) Lease {
	return Lease{App: "promo", Name: name, Holder: holder, Release: 1, TTL: ttl}
}

// TestLeaseTakeRenewRelease: one holder at a time; the holder renews,
// keeping its token; another gets a *LeaseHeldError naming it; once given
// up, the next holder gets a larger token.
func TestLeaseTakeRenewRelease(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	a, err := s.TakeLease(ctx, job("promo-v1-a", "nightly", 15))
	if err != nil {
		t.Fatal(err)
	}
	if a.Token <= 0 || a.Holder != "promo-v1-a" || time.Until(a.Expires) < 14*time.Second || time.Until(a.Expires) > 15*time.Second {
		t.Fatalf("taken: %+v, want a token and an expiry 15 s from now", a)
	}
	again, err := s.TakeLease(ctx, job("promo-v1-a", "nightly", 15))
	if err != nil || again.Token != a.Token || !again.Expires.After(a.Expires) {
		t.Errorf("renewed: %+v, %v; want the same token %d, a later expiry", again, err, a.Token)
	}
	_, err = s.TakeLease(ctx, job("promo-v1-b", "nightly", 15))
	var held *LeaseHeldError
	if !errors.As(err, &held) || held.Lease.Holder != "promo-v1-a" || held.Lease.Token != a.Token || !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("another instance's take: %v, want a LeaseHeldError naming promo-v1-a", err)
	}
	if !strings.Contains(err.Error(), "held by instance promo-v1-a (v1) until") {
		t.Errorf("the message: %q", err)
	}
	if err := s.ReleaseLease(ctx, "promo", "nightly", "promo-v1-b"); !errors.As(err, &held) {
		t.Errorf("giving up another's lease: %v, want a LeaseHeldError", err)
	}
	if err := s.ReleaseLease(ctx, "promo", "nightly", "promo-v1-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseLease(ctx, "promo", "nightly", "promo-v1-a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("giving it up again: %v, want ErrNotFound", err)
	}
	b, err := s.TakeLease(ctx, job("promo-v1-b", "nightly", 15))
	if err != nil || b.Token <= a.Token {
		t.Fatalf("the next holder: %+v, %v; want a token above %d", b, err, a.Token)
	}
	got, err := s.GetLease(ctx, "promo", "nightly")
	if err != nil || got.Holder != "promo-v1-b" || got.Token != b.Token || time.Until(got.Expires) < 13*time.Second {
		t.Errorf("GetLease: %+v, %v", got, err)
	}
	if _, err := s.GetLease(ctx, "promo", "other"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no instance of app promo holds lease other") {
		t.Errorf("GetLease of a free lease: %v", err)
	}
}

// TestLeaseRunsOut: a lease its holder stops renewing ends with its TTL
// (etcd keeps one at least about 2 s), and another instance takes it.
func TestLeaseRunsOut(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	a, err := s.TakeLease(ctx, job("a", "poll", 1))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var b Lease
	for {
		if b, err = s.TakeLease(ctx, job("b", "poll", 1)); err == nil {
			break
		}
		if !errors.Is(err, ErrLeaseHeld) || time.Since(start) > 5*time.Second {
			t.Fatalf("after %s: %v; want the lease free within about 2 s", time.Since(start), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("a lease of 1 s ran out after %s", time.Since(start).Round(10*time.Millisecond))
	if b.Token <= a.Token {
		t.Errorf("token %d after %d, want it to grow", b.Token, a.Token)
	}
	if _, err := s.TakeLease(ctx, job("a", "poll", 1)); !errors.Is(err, ErrLeaseHeld) {
		t.Errorf("the first holder, back late: %v, want ErrLeaseHeld", err)
	}
}

// TestLeaseNewTTL: a renewal with another TTL keeps the holder's token.
func TestLeaseNewTTL(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	a, err := s.TakeLease(ctx, job("a", "mail", 5))
	if err != nil {
		t.Fatal(err)
	}
	longer, err := s.TakeLease(ctx, job("a", "mail", 120))
	if err != nil || longer.Token != a.Token || longer.TTL != 120 || time.Until(longer.Expires) < 119*time.Second {
		t.Fatalf("renewed for 120 s: %+v, %v", longer, err)
	}
	got, err := s.GetLease(ctx, "promo", "mail")
	if err != nil || got.TTL != 120 || time.Until(got.Expires) < 100*time.Second {
		t.Errorf("read back: %+v, %v; want the new TTL", got, err)
	}
	ls, err := s.Leases(ctx, "promo")
	if err != nil || len(ls) != 1 {
		t.Errorf("Leases: %+v, %v; want just one (the old etcd lease is gone with its key)", ls, err)
	}
}

func TestLeaseBounds(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	for _, tt := range []struct {
		name string
		l    Lease
		want error
	}{
		{"a bad name", job("a", "../x", 10), settings.ErrInvalidLeaseName},
		{"a long name", job("a", strings.Repeat("x", 129), 10), settings.ErrInvalidLeaseName},
		{"no TTL", job("a", "x", 0), ErrBadLease},
		{"too long a TTL", job("a", "x", 601), ErrBadLease},
		{"no holder", job("", "x", 10), ErrBadLease},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.TakeLease(ctx, tt.l); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	for i := range MaxLeasesPerApp {
		if _, err := s.TakeLease(ctx, job("a", fmt.Sprintf("job-%d", i), 60)); err != nil {
			t.Fatalf("lease %d: %v", i, err)
		}
	}
	if _, err := s.TakeLease(ctx, job("b", "one-more", 60)); !errors.Is(err, ErrTooManyLeases) {
		t.Errorf("lease %d: %v, want ErrTooManyLeases", MaxLeasesPerApp+1, err)
	}
	if _, err := s.TakeLease(ctx, job("a", "job-7", 60)); err != nil {
		t.Errorf("renewing one at the bound: %v", err)
	}
	other := job("x", "one-more", 60)
	other.App = "other"
	if _, err := s.TakeLease(ctx, other); err != nil {
		t.Errorf("another app's lease: %v", err)
	}
}

// TestLeaseIsExclusive races many instances for one lease; one wins.
func TestLeaseIsExclusive(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	var wg sync.WaitGroup
	wins := make(chan string, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holder := fmt.Sprintf("i%d", i)
			if _, err := s.TakeLease(context.Background(), job(holder, "once", 30)); err == nil {
				wins <- holder
			} else if !errors.Is(err, ErrLeaseHeld) {
				t.Errorf("%s: %v", holder, err)
			}
		}()
	}
	wg.Wait()
	close(wins)
	if n := len(wins); n != 1 {
		t.Errorf("%d instances took the lease, want 1", n)
	}
}

// TestLeaseManyTakersAtOnce: instances that start together and each take
// leases of their own all get them, however many at once, and the bound
// on an app's leases holds exactly under the crowd: every take of a
// fresh name counts the app's leases, and must not fail because others
// were counting at the same moment.
func TestLeaseManyTakersAtOnce(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	const takers = MaxLeasesPerApp + 20
	errs := make([]error, takers)
	var wg sync.WaitGroup
	for i := range takers {
		wg.Go(func() {
			_, errs[i] = s.TakeLease(context.Background(), job(fmt.Sprintf("i%d", i), fmt.Sprintf("job-%d", i), 30))
		})
	}
	wg.Wait()
	took, tooMany := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			took++
		case errors.Is(err, ErrTooManyLeases):
			tooMany++
		default:
			t.Errorf("taker %d: %v", i, err)
		}
	}
	if took != MaxLeasesPerApp || tooMany != takers-MaxLeasesPerApp {
		t.Errorf("%d takers at once: %d took a lease, %d were told there are too many; want %d and %d",
			takers, took, tooMany, MaxLeasesPerApp, takers-MaxLeasesPerApp)
	}
}

// TestRevokeAndSweepLeases: an instance's leases end at once, the others'
// stay; a sweep ends those of instances it does not keep.
func TestRevokeAndSweepLeases(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	for _, l := range []Lease{job("a", "x", 60), job("a", "y", 60), job("b", "z", 60)} {
		if _, err := s.TakeLease(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.HoldRunner(ctx, Lease{App: "promo", Name: "run", Holder: "a", Release: 1}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RevokeLeases(ctx, "promo", "a"); err != nil || n != 2 {
		t.Errorf("RevokeLeases: %d, %v; want 2 (not the single runner)", n, err)
	}
	if got := leaseNames(t, s); got != "run:a z:b" {
		t.Errorf("after revoking a's: %s", got)
	}
	if err := s.SweepLeases(ctx, func(app, holder string) bool { return holder == "b" }); err != nil {
		t.Fatal(err)
	}
	if got := leaseNames(t, s); got != "z:b" {
		t.Errorf("after the sweep: %s", got)
	}
}

func leaseNames(t *testing.T, s *Store) string {
	t.Helper()
	ls, err := s.Leases(context.Background(), "promo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.Name+":"+l.Holder)
	}
	return strings.Join(out, " ")
}

// TestRunnerLease: the platform's single runner lease cannot be taken,
// renewed or given up by an instance; it outlives a restart of the
// store with its holder and token, and grows its token with a new holder.
func TestRunnerLease(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	run := Lease{App: "promo", Name: "runner", Holder: "a", Release: 1}
	r, err := s.HoldRunner(ctx, run)
	if err != nil || r.Token <= 0 || !r.Runner {
		t.Fatalf("HoldRunner: %+v, %v", r, err)
	}
	var held *LeaseHeldError
	if _, err := s.TakeLease(ctx, job("a", "runner", 10)); !errors.As(err, &held) || !strings.Contains(err.Error(), "$SLIPWAY_LEASE_DIR/runner") {
		t.Errorf("its holder taking it: %v, want a LeaseHeldError pointing to the file", err)
	}
	if err := s.ReleaseLease(ctx, "promo", "runner", "a"); !errors.Is(err, ErrLeaseHeld) {
		t.Errorf("its holder giving it up: %v, want ErrLeaseHeld", err)
	}
	if _, err := s.HoldRunner(ctx, Lease{App: "promo", Name: "runner", Holder: "b", Release: 2}); !errors.Is(err, ErrLeaseHeld) {
		t.Errorf("held for another: %v, want ErrLeaseHeld", err)
	}
	s.Close()

	s = openStore(t, dir) // a new daemon: a new session lease
	defer s.Close()
	again, err := s.HoldRunner(ctx, run)
	if err != nil || again.Token != r.Token {
		t.Fatalf("held again after the restart: %+v, %v; want token %d", again, err, r.Token)
	}
	if again.id != s.leaseID() {
		t.Errorf("it still hangs on the earlier daemon's session lease")
	}
	if err := s.DropRunner(ctx, "promo", "runner", "b"); err != nil {
		t.Fatal(err)
	}
	if got := leaseNames(t, s); got != "runner:a" {
		t.Errorf("dropped for the wrong holder: %s", got)
	}
	if err := s.DropRunner(ctx, "promo", "runner", "a"); err != nil {
		t.Fatal(err)
	}
	b, err := s.HoldRunner(ctx, Lease{App: "promo", Name: "runner", Holder: "b", Release: 2})
	if err != nil || b.Token <= r.Token {
		t.Errorf("the next holder: %+v, %v; want a token above %d", b, err, r.Token)
	}
}

// TestLeasesGoWithTheirApp: deleting an app ends its leases.
func TestLeasesGoWithTheirApp(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	if err := s.CreateApp(ctx, App{Name: "promo"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeLease(ctx, job("a", "x", 60)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteApp(ctx, "promo"); err != nil {
		t.Fatal(err)
	}
	if got := leaseNames(t, s); got != "" {
		t.Errorf("leases after the app was deleted: %s", got)
	}
}

// TestLeasesInAFullStore: a store at its quota keeps the leases that are
// held: a renewal at the same TTL, a look and a release still work; what
// would write (a fresh take, a move to another TTL, the single runner)
// fails with ErrFull, which the endpoint answers 507.
func TestLeasesInAFullStore(t *testing.T) {
	ctx := context.Background()
	s, err := Open(Options{Dir: t.TempDir(), QuotaBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	held, err := s.TakeLease(ctx, job("a", "held", 15))
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 256<<10)
	for n := 0; n < 200 && err == nil; n++ {
		err = s.putJSON(ctx, fmt.Sprintf("%sfiller/%d", prefix, n), big)
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("filling the store: %v, want ErrFull", err)
	}
	if got, err := s.TakeLease(ctx, job("a", "held", 15)); err != nil || got.Token != held.Token {
		t.Errorf("renewing at the same TTL: %+v, %v; want it renewed", got, err)
	}
	if _, err := s.TakeLease(ctx, job("a", "held", 20)); !errors.Is(err, ErrFull) {
		t.Errorf("moving it to another TTL: %v, want ErrFull", err)
	}
	if _, err := s.TakeLease(ctx, job("a", "fresh", 15)); !errors.Is(err, ErrFull) {
		t.Errorf("a fresh take: %v, want ErrFull", err)
	}
	if _, err := s.HoldRunner(ctx, Lease{App: "promo", Name: "runner", Holder: "a", Release: 1}); !errors.Is(err, ErrFull) {
		t.Errorf("the single runner: %v, want ErrFull", err)
	}
	if got, err := s.GetLease(ctx, "promo", "held"); err != nil || got.Holder != "a" {
		t.Errorf("reading it: %+v, %v", got, err)
	}
	if err := s.ReleaseLease(ctx, "promo", "held", "a"); err != nil {
		t.Errorf("giving it up: %v", err)
	}
}
