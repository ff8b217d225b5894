package deploy

import (
	"context"
	"net"
	"slices"
	"testing"

	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/runtime"
)

// TestForwardingIsALiveSet: on a node of a cluster that runs none of an
// app, the forwarder is the app's router set; instances going live end the
// forwarding, through publishLocked like every other change of the set,
// and the node can forward again once the app's placement leaves it out.
func TestForwardingIsALiveSet(t *testing.T) {
	rt := router.New(router.Options{})
	rt.SetHosts("shop", []string{"shop.test"})
	m := New(Options{Router: rt, BaseDomain: "test", ForwardDial: func(context.Context) (net.Conn, error) { return nil, net.ErrClosed }})
	defer m.cancel()
	routerSet := func() []string {
		var ids []string
		for _, b := range rt.Backends("shop") {
			ids = append(ids, b.ID)
		}
		return ids
	}

	m.forward("shop")
	if got, want := routerSet(), []string{"forwarder"}; !slices.Equal(got, want) {
		t.Fatalf("forwarding: the router's set is %q, want %q", got, want)
	}
	fwd := rt.Backends("shop")[0]
	m.forward("shop") // converge's next round: nothing changes
	if got := rt.Backends("shop"); len(got) != 1 || got[0] != fwd {
		t.Errorf("forwarding again made a new forwarder: %v", got)
	}

	inst := &instance{Instance: &runtime.Instance{ID: "shop-v1-000000"}, app: "shop", release: 1,
		backend: router.NewBackend("shop-v1-000000", "127.0.0.1:2"), state: StateReady}
	m.mu.Lock()
	m.publishLocked("shop", []*instance{inst}, nil) // caught up
	m.mu.Unlock()
	if got, want := routerSet(), []string{"shop-v1-000000"}; !slices.Equal(got, want) {
		t.Errorf("caught up: the router's set is %q, want %q", got, want)
	}
	m.mu.Lock()
	m.publishLocked("shop", nil, nil) // the instance exited
	m.mu.Unlock()
	if got := routerSet(); len(got) != 0 {
		t.Errorf("after the only instance left: the router's set is %q, want none (forwarding ended when it went live)", got)
	}

	m.forward("shop") // the placement leaves the node out again
	if got, want := routerSet(), []string{"forwarder"}; !slices.Equal(got, want) {
		t.Errorf("forwarding once more: the router's set is %q, want %q", got, want)
	}
}
