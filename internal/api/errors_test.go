package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/store"
)

// TestNotFoundNamesItsSubject checks that a 404 says what is missing: a
// missing deployment, release or credential of an app that exists is not
// a missing app.
func TestNotFoundNamesItsSubject(t *testing.T) {
	a := newTestAPI(t)
	ctx := context.Background()
	a.createApp(store.App{Name: "promo"})
	a.createApp(store.App{Name: "live", CurrentRelease: 1})
	if err := a.st.CreateRelease(ctx, &store.Release{App: "live"}); err != nil {
		t.Fatal(err)
	}
	if err := a.st.CreateCredential(ctx, store.Credential{ID: "0ther", App: "live", Hash: "x"}); err != nil {
		t.Fatal(err)
	}
	const noApp = "no app named nope; list apps with 'slipway apps list'"
	tests := []struct {
		name         string
		method, path string
		body         string
		want         string
	}{
		{"app", "GET", "/api/v1/apps/nope", "", noApp},
		{"deleted app", "DELETE", "/api/v1/apps/nope", "", noApp},
		{"app of its status", "GET", "/api/v1/apps/nope/status", "", noApp},
		{"app of its settings", "PATCH", "/api/v1/apps/nope/settings", "{}", noApp},
		{"app of its releases", "GET", "/api/v1/apps/nope/releases", "", noApp},
		{"app of a deploy", "POST", "/api/v1/apps/nope/deployments", "PK", noApp},
		{"app of a deployment", "GET", "/api/v1/apps/nope/deployments/1", "", noApp},
		{"deployment", "GET", "/api/v1/apps/promo/deployments/99", "",
			"app promo has no deployment 99; list them with 'slipway deployments -a promo'"},
		{"followed deployment", "GET", "/api/v1/apps/promo/deployments/99/events", "",
			"app promo has no deployment 99; list them with 'slipway deployments -a promo'"},
		{"release to roll back to", "POST", "/api/v1/apps/live/rollback", `{"to": 9}`,
			"app live has no release v9; list them with 'slipway releases -a live'"},
		{"release live before", "POST", "/api/v1/apps/live/rollback", `{}`,
			"no such release: no release was live before v1; name one with --to"},
		{"credential", "DELETE", "/api/v1/apps/promo/credentials/abc", "",
			"app promo has no credential abc; list them with 'slipway credentials list -a promo'"},
		{"another app's credential", "DELETE", "/api/v1/apps/promo/credentials/0ther", "",
			"app promo has no credential 0ther; list them with 'slipway credentials list -a promo'"},
		{"access rule", "DELETE", "/api/v1/apps/promo/access/rules/app/100", "",
			"there is no app rule of priority 100; see 'slipway access list -a promo'"},
		{"route", "GET", "/api/v1/nothing", "", "no API route GET /api/v1/nothing; the API lives under /api/v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b := a.do(tt.method, tt.path, a.admin, tt.body)
			var got Error
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%s %s: %d %s: %v", tt.method, tt.path, code, b, err)
			}
			if code != http.StatusNotFound || got.Error != tt.want {
				t.Errorf("%s %s:\ngot  %d %q\nwant 404 %q", tt.method, tt.path, code, got.Error, tt.want)
			}
		})
	}
	// The failed rollbacks left no deployment and no lock behind.
	if deps, err := a.st.Deployments(ctx, "live"); err != nil || len(deps) != 0 {
		t.Errorf("deployments of live after failed rollbacks: %+v, %v", deps, err)
	}
}

// TestDeployOnAFullDisk: an upload the disk cannot hold above the reserve
// is refused before it is read, with 507 and a message that says what is
// full and what to do. A reserve larger than any disk stands in for a full
// one here; e2e/disk_test.go fills a real (tmpfs) disk.
func TestDeployOnAFullDisk(t *testing.T) {
	a := newTestAPIWith(t, artifact.Options{MinFreeSpace: 1 << 60})
	a.createApp(store.App{Name: "promo"})
	code, b := a.do("POST", "/api/v1/apps/promo/deployments?filename=app.zip", a.admin, "PK not read")
	var got Error
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%d %s: %v", code, b, err)
	}
	if code != http.StatusInsufficientStorage {
		t.Errorf("status %d, want 507", code)
	}
	for _, want := range []string{"not enough free disk space", "artifacts has", "free", "--min-free-space", "1.0 EiB"} {
		if !strings.Contains(got.Error, want) {
			t.Errorf("message %q does not say %q", got.Error, want)
		}
	}
	if deps, err := a.st.Deployments(t.Context(), "promo"); err != nil || len(deps) != 0 {
		t.Errorf("deployments after the refusal: %+v, %v", deps, err)
	}
}
