package deploy_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// TestCreateAppOverACustomDomain: a custom domain added under another
// --base-domain may be the default name of an app created now; that app
// is refused (409, naming the owner) rather than taking the name from
// its owner in the router.
func TestCreateAppOverACustomDomain(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	// As a daemon with another base domain added it: the manager refuses
	// names under its own base domain.
	if _, _, err := h.store.AddDomain(ctx, store.Domain{Name: "promo." + baseDomain, App: testApp, Created: time.Now()}, settings.MaxDomains); err != nil {
		t.Fatal(err)
	}
	if err := h.m.LoadDomains(ctx); err != nil {
		t.Fatal(err)
	}
	h.router.SetHosts(testApp, h.m.Hosts(testApp))
	_, err := h.m.CreateApp(ctx, "promo", settings.Settings{})
	var taken *store.DomainTakenError
	if !errors.As(err, &taken) || taken.Owner != testApp || !errors.Is(err, store.ErrExists) {
		t.Fatalf("creating app promo while %s has promo.%s: %v, want a DomainTakenError naming %s", testApp, baseDomain, err, testApp)
	}
	if _, err := h.store.App(ctx, "promo"); err == nil {
		t.Errorf("app promo was stored")
	}
	if got := h.m.Hosts(testApp); !slices.Contains(got, "promo."+baseDomain) {
		t.Errorf("hosts of %s: %v, want promo.%s still among them", testApp, got, baseDomain)
	}
	if _, err := h.m.CreateApp(ctx, "other", settings.Settings{}); err != nil {
		t.Errorf("creating app other: %v", err)
	}
}
