package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/cloudflare/tableflip"

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

// leaseSocket is the process's socket of the lease endpoint. It outlives
// the cores, each of which serves a copy of it, and an upgrade passes it
// on to the new process (through tableflip, like the router's and the
// API's), so that the port stays open from one process to the next: a
// renewal that arrives while the old core closes and the new one opens
// waits in the accept queue instead of being refused, and no other
// program can take the port meanwhile, and with it the secrets in the
// URLs that instances call there.
type leaseSocket struct {
	// fds are the sockets an upgrade passes on; nil in tests.
	fds *tableflip.Fds
	// ln is the socket, once one is open.
	ln net.Listener
}

// open returns the socket on addr: the one the process has, the one the
// old process of an upgrade passed on, or a new one.
func (ls *leaseSocket) open(addr string) (net.Listener, error) {
	if ls.ln != nil && ls.ln.Addr().String() == addr {
		return ls.ln, nil
	}
	var ln net.Listener
	var err error
	if ls.fds != nil {
		if ln, err = ls.fds.Listener("tcp", addr); err != nil {
			return nil, err
		}
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, err
		}
		if ls.fds != nil {
			// Under the address it got, which the store keeps and the
			// next process asks for (not port 0).
			if err := ls.fds.AddListener("tcp", ln.Addr().String(), ln.(tableflip.Listener)); err != nil {
				ln.Close()
				return nil, err
			}
		}
	}
	if ls.ln != nil {
		ls.ln.Close()
	}
	ls.ln = ln
	return ln, nil
}

// leaseListener returns a copy of the lease endpoint's socket on addr,
// for a core to serve (closing it leaves the socket open). Port 0 (the
// default) reuses the address an earlier start chose, which the store
// keeps, so that instances that outlived that daemon still reach their
// leases at their SLIPWAY_LEASE_URL; if it is taken now, a new port is
// chosen, and the log says what that means.
func leaseListener(ctx context.Context, st *store.Store, ls *leaseSocket, addr string, log *slog.Logger) (net.Listener, error) {
	before, err := st.LeaseEndpoint(ctx)
	if err != nil {
		return nil, err
	}
	var ln net.Listener
	if _, port, _ := net.SplitHostPort(addr); port == "0" && before != "" && sameHost(before, addr) {
		if ln, err = ls.open(before); err != nil {
			log.Warn("the lease endpoint's address of the last start is taken; instances that outlived that daemon cannot reach their leases until they are replaced ('slipway restart -a APP')",
				"addr", before, "err", err)
		}
	}
	if ln == nil {
		if ln, err = ls.open(addr); err != nil {
			return nil, fmt.Errorf("lease endpoint: listening on %s: %w", addr, err)
		}
	}
	if now := ln.Addr().String(); now != before {
		if err := st.PutLeaseEndpoint(ctx, now); err != nil {
			return nil, err
		}
	}
	dup, err := dupListener(ln)
	if err != nil {
		return nil, fmt.Errorf("lease endpoint: %w", err)
	}
	return dup, nil
}

func sameHost(a, b string) bool {
	ha, _, errA := net.SplitHostPort(a)
	hb, _, errB := net.SplitHostPort(b)
	return errors.Join(errA, errB) == nil && ha == hb
}
