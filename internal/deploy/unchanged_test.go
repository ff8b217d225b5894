package deploy_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/settings"
)

// TestUnchangedMakesNothing: a change that changes nothing — live or
// for the next deployment, a settings change or a scale — makes no
// release and no deployment, stores nothing, and says why.
func TestUnchangedMakesNothing(t *testing.T) {
	h := newHarness(t, nil)
	h.deployLive(appConf{Version: "1"})
	ctx := context.Background()
	meta := deploy.Meta{Author: "test"}
	before, _ := h.store.App(ctx, testApp)
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"unset of a missing key", func() error {
			_, _, err := h.m.ChangeSettings(ctx, testApp, settings.Change{Unset: []string{"NOPE"}}, false, meta)
			return err
		}, "nothing changed: NOPE is not set"},
		{"the same value, for the next deployment", func() error {
			_, _, err := h.m.ChangeSettings(ctx, testApp, settings.Change{Set: map[string]string{ctlEnv: h.ctl}}, true, meta)
			return err
		}, "nothing changed: " + ctlEnv + " already has that value"},
		{"scale to the count it has", func() error {
			_, err := h.m.Scale(ctx, testApp, 1, meta)
			return err
		}, "nothing changed: the instance count is 1 already"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deps, _ := h.store.Deployments(ctx, testApp)
			rels, _ := h.store.Releases(ctx, testApp)
			err := tt.run()
			if !errors.Is(err, settings.ErrUnchanged) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrUnchanged saying %q", err, tt.want)
			}
			deps2, _ := h.store.Deployments(ctx, testApp)
			rels2, _ := h.store.Releases(ctx, testApp)
			if len(deps2) != len(deps) || len(rels2) != len(rels) {
				t.Errorf("deployments %d → %d, releases %d → %d; want no new one", len(deps), len(deps2), len(rels), len(rels2))
			}
			if holder, _ := h.store.LockHolder(ctx, testApp); holder != 0 {
				t.Errorf("the app is left locked by deployment %d", holder)
			}
		})
	}
	if after, _ := h.store.App(ctx, testApp); !reflect.DeepEqual(after.Settings, before.Settings) {
		t.Errorf("the app's settings changed: %+v, were %+v", after.Settings, before.Settings)
	}
	h.onlyInstancesRun()
}
