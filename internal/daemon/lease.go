package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/slipway-dev/slipway/internal/store"
)

// checkLoopback refuses a lease endpoint address off loopback: the
// endpoint is for the instances on this machine, and its URLs carry
// their secrets in the clear.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--lease-listen %q: want host:port on loopback, like 127.0.0.1:0", addr)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("--lease-listen %q: the lease endpoint must listen on a loopback address (127.0.0.1 or ::1), not %q: it is for the instances on this machine", addr, host)
	}
	return nil
}

// leaseListener opens the lease endpoint's listener on addr. Port 0 (the
// default) reuses the address an earlier start chose, which the store
// keeps, so that instances that outlived that daemon still reach their
// leases at their SLIPWAY_LEASE_URL; if it is taken now, a new port is
// chosen, and the log says what that means.
func leaseListener(ctx context.Context, st *store.Store, addr string, log *slog.Logger) (net.Listener, error) {
	before, err := st.LeaseEndpoint(ctx)
	if err != nil {
		return nil, err
	}
	var ln net.Listener
	if _, port, _ := net.SplitHostPort(addr); port == "0" && before != "" && sameHost(before, addr) {
		if ln, err = net.Listen("tcp", before); err != nil {
			log.Warn("the lease endpoint's address of the last start is taken; instances that outlived that daemon cannot reach their leases until they are replaced ('slipway restart -a APP')",
				"addr", before, "err", err)
		}
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("lease endpoint: listening on %s: %w", addr, err)
		}
	}
	if now := ln.Addr().String(); now != before {
		if err := st.PutLeaseEndpoint(ctx, now); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return ln, nil
}

func sameHost(a, b string) bool {
	ha, _, errA := net.SplitHostPort(a)
	hb, _, errB := net.SplitHostPort(b)
	return errors.Join(errA, errB) == nil && ha == hb
}
