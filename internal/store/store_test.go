package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAppsReleasesDeployments(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.CreateApp(ctx, App{Name: "promo"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApp(ctx, App{Name: "promo"}); !errors.Is(err, ErrExists) {
		t.Errorf("second CreateApp: got %v, want ErrExists", err)
	}
	if _, err := s.App(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("App(nope): got %v, want ErrNotFound", err)
	}
	for want := 1; want <= 12; want++ { // past 9 and 10: keys sort as numbers
		r := Release{App: "promo"}
		if err := s.CreateRelease(ctx, &r); err != nil {
			t.Fatal(err)
		}
		if r.Number != want {
			t.Errorf("release number %d, want %d", r.Number, want)
		}
	}
	d := Deployment{App: "promo", State: StateRunning}
	if err := s.CreateDeployment(ctx, &d); err != nil || d.ID != 1 {
		t.Fatalf("CreateDeployment: id %d, err %v", d.ID, err)
	}
	s.Close()

	s = openStore(t, dir) // state survives a restart
	defer s.Close()
	rels, err := s.Releases(ctx, "promo")
	if err != nil || len(rels) != 12 || rels[11].Number != 12 {
		t.Fatalf("after reopening: %d releases, err %v", len(rels), err)
	}
	if err := s.DeleteApp(ctx, "promo"); err != nil {
		t.Fatal(err)
	}
	if rels, _ := s.Releases(ctx, "promo"); len(rels) != 0 {
		t.Errorf("DeleteApp left %d releases", len(rels))
	}
}

func TestLock(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	if err := s.Lock(ctx, "promo", 4); err != nil {
		t.Fatal(err)
	}
	err := s.Lock(ctx, "promo", 5)
	var locked *LockedError
	if !errors.As(err, &locked) || locked.Deployment != 4 || !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: got %v, want a LockedError naming 4", err)
	}
	if err := s.DeleteApp(ctx, "promo"); !errors.Is(err, ErrLocked) {
		t.Errorf("DeleteApp while locked: got %v, want ErrLocked", err)
	}
	s.Unlock(ctx, "promo", 5) // not the holder: no effect
	if h, _ := s.LockHolder(ctx, "promo"); h != 4 {
		t.Errorf("holder %d after a wrong Unlock, want 4", h)
	}
	s.Unlock(ctx, "promo", 4)
	if err := s.Lock(ctx, "promo", 6); err != nil {
		t.Errorf("Lock after Unlock: %v", err)
	}
	s.ClearLocks(ctx)
	if h, _ := s.LockHolder(ctx, "promo"); h != 0 {
		t.Errorf("holder %d after ClearLocks", h)
	}
}

// TestLockIsExclusive races many lockers; exactly one wins.
func TestLockIsExclusive(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	var wg sync.WaitGroup
	wins := make(chan int, 20)
	for i := 1; i <= 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.Lock(context.Background(), "app", i) == nil {
				wins <- i
			}
		}()
	}
	wg.Wait()
	close(wins)
	if n := len(wins); n != 1 {
		t.Errorf("%d lockers won, want 1", n)
	}
}

func TestWatchDeployment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := openStore(t, t.TempDir())
	defer s.Close()
	d := Deployment{App: "a", State: StateRunning}
	d.AddEvent(StepReceived, "received")
	s.CreateDeployment(ctx, &d)
	var seen []int
	done := make(chan error)
	go func() {
		done <- s.WatchDeployment(ctx, "a", d.ID, func(d Deployment) bool {
			seen = append(seen, len(d.Events))
			return !d.Done()
		})
	}()
	for _, step := range []string{StepStarting, StepWarmingUp} {
		d.AddEvent(step, step)
		s.PutDeployment(ctx, d)
	}
	d.State = StateSucceeded
	s.PutDeployment(ctx, d)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if last := seen[len(seen)-1]; last != 3 {
		t.Errorf("watch saw event counts %v, want to end at 3", seen)
	}
}

func TestNotFoundNamesWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	if err := s.CreateApp(ctx, App{Name: "promo"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		read func() error
		want NotFoundError
	}{
		{"app", func() error { _, err := s.App(ctx, "nope"); return err }, NotFoundError{Kind: "app", App: "nope"}},
		{"deployment", func() error { _, err := s.Deployment(ctx, "promo", 7); return err }, NotFoundError{Kind: "deployment", App: "promo", ID: "7"}},
		{"deployment of a missing app", func() error { _, err := s.Deployment(ctx, "nope", 7); return err }, NotFoundError{Kind: "app", App: "nope"}},
		{"release", func() error { _, err := s.Release(ctx, "promo", 3); return err }, NotFoundError{Kind: "release", App: "promo", ID: "3"}},
		{"release of a missing app", func() error { _, err := s.Release(ctx, "nope", 3); return err }, NotFoundError{Kind: "app", App: "nope"}},
		{"watched deployment", func() error { return s.WatchDeployment(ctx, "promo", 7, func(Deployment) bool { return false }) }, NotFoundError{Kind: "deployment", App: "promo", ID: "7"}},
		{"credential", func() error { _, err := s.Credential(ctx, "abc"); return err }, NotFoundError{Kind: "credential", ID: "abc"}},
		{"deleted credential", func() error { return s.DeleteCredential(ctx, "abc") }, NotFoundError{Kind: "credential", ID: "abc"}},
		{"deleted app", func() error { return s.DeleteApp(ctx, "nope") }, NotFoundError{Kind: "app", App: "nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.read()
			var nf *NotFoundError
			if !errors.As(err, &nf) || !errors.Is(err, ErrNotFound) {
				t.Fatalf("got %v, want a *NotFoundError that is ErrNotFound", err)
			}
			if *nf != tc.want {
				t.Errorf("got %+v, want %+v", *nf, tc.want)
			}
		})
	}
	// Reading what may be absent is no error.
	if p, err := s.Policy(ctx, "promo"); err != nil || len(p.App) != 0 {
		t.Errorf("Policy of an app without one: %+v, %v", p, err)
	}
	if id, err := s.LockHolder(ctx, "promo"); err != nil || id != 0 {
		t.Errorf("LockHolder of an unlocked app: %d, %v", id, err)
	}
}
