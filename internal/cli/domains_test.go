package cli

import (
	"context"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// TestDomainsVerbs pins what the domains verbs print, and the URLs of
// apps show, against a real API.
func TestDomainsVerbs(t *testing.T) {
	d := newTestDaemon(t)
	ctx := context.Background()
	created := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	for _, app := range []string{"promo", "other", "empty"} {
		if err := d.st.CreateApp(ctx, store.App{Name: app, Created: created}); err != nil {
			t.Fatal(err)
		}
	}
	added := time.Now().Add(-3 * time.Hour) // "3h ago"
	for _, dom := range []store.Domain{{Name: "shop.example.com", App: "promo", ACME: true, Created: added}, {Name: "*.shop.example.com", App: "promo", Created: added}} {
		if _, _, err := d.st.AddDomain(ctx, dom, settings.MaxDomains); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.mgr.LoadDomains(ctx); err != nil {
		t.Fatal(err)
	}
	s := d.session()
	for _, args := range [][]string{
		{"domains", "list", "-a", "promo"},
		{"domains", "list", "-a", "empty"},
		{"domains", "add", "-a", "other", "Shop.Example.com"},
		{"domains", "add", "-a", "other", "api.example.com"},
		{"domains", "add", "-a", "other", "--acme", "tls.example.com"},
		{"domains", "add", "-a", "other", "--acme", "*.example.com"},
		{"domains", "add", "-a", "other", "bad_name.example.com"},
		{"domains", "add", "-a", "other", "www.promo.example.test"},
		{"domains", "remove", "-a", "promo", "*.shop.example.com"},
		{"domains", "remove", "-a", "promo", "*.shop.example.com"},
		{"domains", "list", "-a", "nobody"},
		{"apps", "show", "promo"},
	} {
		s.run(nil, "", args...)
	}
	s.golden("domains")
}
