package api

import (
	"context"
	"fmt"
	"github.com/slipway-dev/slipway/internal/golden"
	"net/http"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/backup"
	"github.com/slipway-dev/slipway/internal/store"
)

// fixedOperator stands in for the daemon, which these tests do not run
// (the end-to-end tests upgrade and back up a real one): it answers with
// fixed values, so the wire format can be pinned.
type fixedOperator struct{ busy bool }

var fixedAt = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

func (fixedOperator) Version() Version {
	return Version{Version: "v1.2.3", Commit: "0123abc", GoVersion: "go1.26.8", PID: 4242, Started: fixedAt,
		Upgrade: &Upgrade{State: UpgradeFailed, Started: fixedAt, Finished: fixedAt.Add(time.Second), PID: 4242,
			Binary: "/usr/local/bin/slipway", Error: "upgrade failed: the new binary /usr/local/bin/slipway: child pid=4300 exited: exit status 3; this process (pid 4242) serves on"}}
}

func (o fixedOperator) Upgrade() (Upgrade, error) {
	if o.busy {
		return Upgrade{}, fmt.Errorf("%w: an upgrade started at 15:04:05 is still running", ErrUpgradeBusy)
	}
	return Upgrade{State: UpgradeRunning, Started: fixedAt, PID: 4242, Binary: "/usr/local/bin/slipway"}, nil
}

func (fixedOperator) Backup(context.Context) (*backup.Archive, error) {
	return nil, fmt.Errorf("no backup here")
}

// TestOperatorRoutes: the version is for any token and pinned; upgrades
// and backups are the admin's; a busy upgrade is a conflict.
func TestOperatorRoutes(t *testing.T) {
	for _, busy := range []bool{false, true} {
		a := newTestAPI(t, func(o *Options) { o.Operator = fixedOperator{busy: busy} })
		a.createApp(store.App{Name: "promo"})
		cred := a.credential("promo")
		if busy {
			if code, b := a.do("POST", "/api/v1/admin/upgrade", a.admin, ""); code != http.StatusConflict {
				t.Errorf("an upgrade while one runs: %d %s, want 409", code, b)
			}
			continue
		}
		code, b := a.do("GET", "/api/v1/version", cred.Token, "")
		if code != 200 {
			t.Fatalf("GET /api/v1/version with a deploy credential: %d %s", code, b)
		}
		golden.Check(t, "version.json", b)
		code, b = a.do("POST", "/api/v1/admin/upgrade", a.admin, "")
		if code != http.StatusAccepted {
			t.Fatalf("POST /api/v1/admin/upgrade: %d %s", code, b)
		}
		golden.Check(t, "upgrade.json", b)
		for _, route := range []string{"POST /api/v1/admin/upgrade", "GET /api/v1/admin/backup"} {
			var method, path string
			fmt.Sscan(route, &method, &path)
			if code, _ := a.do(method, path, cred.Token, ""); code != http.StatusForbidden {
				t.Errorf("%s with a deploy credential: %d, want 403", route, code)
			}
		}
		if code, _ := a.do("GET", "/api/v1/version", "", ""); code != http.StatusUnauthorized {
			t.Errorf("GET /api/v1/version without a token: %d, want 401", code)
		}
	}
}
