package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestDomains: a name belongs to one app; adding it again changes its
// flag; a bound holds; removing and deleting the app free it.
func TestDomains(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	for _, app := range []string{"promo", "other"} {
		if err := s.CreateApp(ctx, App{Name: app}); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	add := func(app, name string, acme bool) (Domain, bool, error) {
		return s.AddDomain(ctx, Domain{Name: name, App: app, ACME: acme, Created: at}, 3)
	}
	if _, added, err := add("promo", "shop.example.com", false); err != nil || !added {
		t.Fatalf("adding shop.example.com: added %v, %v", added, err)
	}
	_, _, err := add("other", "shop.example.com", false)
	var taken *DomainTakenError
	if !errors.As(err, &taken) || taken.Owner != "promo" || !errors.Is(err, ErrExists) {
		t.Fatalf("another app adding shop.example.com: got %v, want a DomainTakenError naming promo", err)
	}
	// Again on the same app: its flag changes, its creation time stays.
	d, added, err := s.AddDomain(ctx, Domain{Name: "shop.example.com", App: "promo", ACME: true, Created: at.Add(time.Hour)}, 3)
	if err != nil || added || !d.ACME || !d.Created.Equal(at) {
		t.Fatalf("adding shop.example.com again: %+v added %v, %v; want its ACME flag set, created kept, not added", d, added, err)
	}
	for _, n := range []string{"b.example.com", "*.example.com"} {
		if _, _, err := add("promo", n, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := add("promo", "d.example.com", false); !errors.Is(err, ErrTooManyDomains) {
		t.Errorf("a fourth domain with a bound of 3: got %v, want ErrTooManyDomains", err)
	}
	if _, _, err := add("promo", "b.example.com", true); err != nil {
		t.Errorf("changing a domain of an app at its bound: %v", err)
	}
	if _, _, err := add("nope", "n.example.com", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("a domain for a missing app: got %v, want ErrNotFound", err)
	}
	ds, err := s.Domains(ctx, "promo")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(names(ds)); got != "[*.example.com b.example.com shop.example.com]" {
		t.Errorf("promo's domains: %s", got)
	}

	if err := s.RemoveDomain(ctx, "other", "shop.example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing a domain of another app: got %v, want ErrNotFound", err)
	}
	if err := s.RemoveDomain(ctx, "promo", "b.example.com"); err != nil {
		t.Fatal(err)
	}
	if owner, _ := s.DomainOwner(ctx, "b.example.com"); owner != "" {
		t.Errorf("b.example.com still belongs to %q after its removal", owner)
	}
	if _, _, err := add("other", "b.example.com", false); err != nil {
		t.Errorf("another app adding a removed name: %v", err)
	}

	// Deleting the app frees its names in the same step.
	if err := s.DeleteApp(ctx, "promo"); err != nil {
		t.Fatal(err)
	}
	if ds, _ := s.Domains(ctx, "promo"); len(ds) != 0 {
		t.Errorf("a deleted app keeps domains %v", names(ds))
	}
	if _, _, err := add("other", "shop.example.com", false); err != nil {
		t.Errorf("adding a name of a deleted app: %v", err)
	}
	all, err := s.AllDomains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(names(all)); got != "[b.example.com shop.example.com]" {
		t.Errorf("all domains after the delete: %s, want other's two", got)
	}
}

// TestDomainClaimsRace: apps claiming the same names at once, while one
// of them is deleted and created again: each name ends with at most one
// owner, whose list has it, and no list has a name it does not own.
func TestDomainClaimsRace(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	apps := []string{"a", "b", "c", "d"}
	for _, app := range apps {
		if err := s.CreateApp(ctx, App{Name: app}); err != nil {
			t.Fatal(err)
		}
	}
	const names = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := map[string][]string{} // name -> the apps AddDomain told it was theirs
	for _, app := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range names {
				name := fmt.Sprintf("n%d.example.com", i)
				_, _, err := s.AddDomain(ctx, Domain{Name: name, App: app}, 100)
				var taken *DomainTakenError
				switch {
				case err == nil:
					mu.Lock()
					won[name] = append(won[name], app)
					mu.Unlock()
				case errors.As(err, &taken) && taken.Owner != app:
				case errors.Is(err, ErrNotFound) && app == "d": // deleted meanwhile
				default:
					t.Errorf("%s claiming %s: %v", app, name, err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // d goes and comes back while the claims run
		defer wg.Done()
		for range 5 {
			if err := s.DeleteApp(ctx, "d"); err != nil && !errors.Is(err, ErrNotFound) {
				t.Errorf("deleting d: %v", err)
			}
			if err := s.CreateApp(ctx, App{Name: "d"}); err != nil {
				t.Errorf("creating d again: %v", err)
			}
		}
	}()
	wg.Wait()

	listed := map[string]string{}
	for _, app := range apps {
		ds, err := s.Domains(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if prev, ok := listed[d.Name]; ok {
				t.Errorf("%s is in the lists of %s and %s", d.Name, prev, app)
			}
			listed[d.Name] = app
		}
	}
	for i := range names {
		name := fmt.Sprintf("n%d.example.com", i)
		owner, err := s.DomainOwner(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if owner != listed[name] {
			t.Errorf("%s: the index says %q, the lists %q", name, owner, listed[name])
		}
		// Of the apps never deleted, one at most was given the name, and
		// keeps it; d may have had it before, and lost it with its delete.
		var kept []string
		for _, app := range won[name] {
			if app != "d" {
				kept = append(kept, app)
			}
		}
		if len(kept) > 1 || len(kept) == 1 && owner != kept[0] {
			t.Errorf("%s was given to %v, and belongs to %q", name, won[name], owner)
		}
	}
}

func names(ds []Domain) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return out
}
