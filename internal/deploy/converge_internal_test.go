package deploy

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/store"
)

// TestStillLive: a node that caught up to a release only serves it if,
// once started, it is still the live release with no rollout under way;
// else a rollout that ended while it started (or one that began) would
// see the node switch back to the release the cluster has just left.
func TestStillLive(t *testing.T) {
	st, err := store.Open(store.Options{Dir: filepath.Join(t.TempDir(), "store"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := New(Options{Store: st, Router: router.New(router.Options{}), BaseDomain: "test", Logger: slog.New(slog.DiscardHandler)})
	defer m.cancel()
	ctx := context.Background()
	if err := st.CreateApp(ctx, store.App{Name: "shop", CurrentRelease: 2}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		started int
		rollout bool
		want    bool
	}{
		{"the live release", 2, false, true},
		{"the release the cluster has left", 1, false, false},
		{"the live release, with a rollout under way", 2, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rollout {
				if err := st.PutRollout(ctx, store.Rollout{App: "shop", Deployment: 3, Release: 3, Instances: 1, Phase: store.PhaseWarm}); err != nil {
					t.Fatal(err)
				}
				defer st.EndRollout(ctx, "shop")
			}
			if got := m.stillLive(store.App{Name: "shop", CurrentRelease: tc.started}); got != tc.want {
				t.Errorf("stillLive of v%d: %v, want %v", tc.started, got, tc.want)
			}
		})
	}
}
