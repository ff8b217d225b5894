package deploy

import (
	"errors"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/settings"
)

// TestOutsideBaseDomain: the names under the base domain are the apps'
// own; an app may add only names under its own name there.
func TestOutsideBaseDomain(t *testing.T) {
	m := &Manager{opts: Options{BaseDomain: "apps.example.com"}}
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"shop.example.com", true},
		{"example.com", true},
		{"xapps.example.com", true},            // not under apps.example.com
		{"a.xapps.example.com", true},          // nor this
		{"www.promo.apps.example.com", true},   // under promo's own name
		{"*.promo.apps.example.com", true},     // so is this
		{"apps.example.com", false},            // the base domain itself
		{"*.apps.example.com", false},          // every app's name
		{"other.apps.example.com", false},      // another app's name
		{"promo.apps.example.com", false},      // promo's own name, already its
		{"www.other.apps.example.com", false},  // under another app's name
		{"a.b.promo2.apps.example.com", false}, // promo2 is not promo
		{"www.xpromo.apps.example.com", false}, // nor is xpromo
	} {
		err := m.outsideBaseDomain("promo", tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("%s for promo: got %v, want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && (!errors.Is(err, settings.ErrInvalidDomain) || !strings.Contains(err.Error(), "outside apps.example.com")) {
			t.Errorf("%s: the refusal %q does not say what to do", tt.name, err)
		}
	}
}

// TestCanACME: a domain gets an ACME certificate only where the daemon
// can get one; the refusal says what to start the daemon with.
func TestCanACME(t *testing.T) {
	for _, tt := range []struct {
		name        string
		https, acme bool
		domain      string
		says        string // "" for no refusal
	}{
		{"ready", true, true, "shop.example.com", ""},
		{"wildcard", true, true, "*.shop.example.com", "--tls-cert-dir"},
		{"no HTTPS listener", false, false, "shop.example.com", "no HTTPS listener; start it with --https-listen"},
		{"no ACME CA", true, false, "shop.example.com", "no ACME CA; start it with --acme-email"},
	} {
		m := &Manager{opts: Options{HTTPS: tt.https, ACME: tt.acme}}
		err := m.canACME(tt.domain)
		if tt.says == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrNoACME) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: got %v, want ErrNoACME saying %q", tt.name, err, tt.says)
		}
	}
}
