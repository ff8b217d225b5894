package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// ErrNoACME is wrapped by the refusals of a domain bound with --acme that
// cannot get its certificate from an ACME CA.
var ErrNoACME = errors.New("no ACME certificate")

// domainTable mirrors the custom domains of the store for what must not
// wait for the store: the router's host sets and the TLS handshake.
type domainTable struct {
	// mu serialises changes of domains and of the apps that have them,
	// from the store's write to the router's host set, so that the last
	// change wins in both. It guards nothing in memory: snap is atomic.
	mu sync.Mutex
	// snap is replaced as a whole, never changed in place.
	snap atomic.Pointer[domainSnap]
}

type domainSnap struct {
	byApp map[string][]store.Domain
	// acme holds the names bound with ACME.
	acme map[string]bool
}

func newDomainSnap(byApp map[string][]store.Domain) *domainSnap {
	s := &domainSnap{byApp: byApp, acme: map[string]bool{}}
	for _, ds := range byApp {
		for _, d := range ds {
			if d.ACME {
				s.acme[d.Name] = true
			}
		}
	}
	return s
}

// with returns a copy of the snapshot in which app has ds (none when ds
// is nil).
func (s *domainSnap) with(app string, ds []store.Domain) *domainSnap {
	byApp := maps.Clone(s.byApp)
	if byApp == nil {
		byApp = map[string][]store.Domain{}
	}
	if len(ds) == 0 {
		delete(byApp, app)
	} else {
		byApp[app] = ds
	}
	return newDomainSnap(byApp)
}

// domainSnap is the table as it is now; empty until Recover loads it.
func (m *Manager) domainSnap() *domainSnap {
	if s := m.domains.snap.Load(); s != nil {
		return s
	}
	return newDomainSnap(nil)
}

// LoadDomains reads every app's custom domains from the store into the
// table Hosts and ACMEDomain read. Recover calls it before it routes the
// apps' hosts.
func (m *Manager) LoadDomains(ctx context.Context) error {
	all, err := m.opts.Store.AllDomains(ctx)
	if err != nil {
		return fmt.Errorf("reading the custom domains: %w", err)
	}
	byApp := map[string][]store.Domain{}
	for _, d := range all {
		byApp[d.App] = append(byApp[d.App], d)
	}
	m.domains.snap.Store(newDomainSnap(byApp))
	return nil
}

// Hosts are the host names app is served at: its default name first,
// then its custom domains by name.
func (m *Manager) Hosts(app string) []string {
	ds := m.domainSnap().byApp[app]
	hosts := make([]string, 0, 1+len(ds))
	hosts = append(hosts, m.defaultHost(app))
	for _, d := range ds {
		hosts = append(hosts, d.Name)
	}
	return hosts
}

// defaultHost is app's default name, NAME.<base-domain>: the Host of its
// warmup and health checks, and its WEBSITE_HOSTNAME.
func (m *Manager) defaultHost(app string) string { return app + "." + m.opts.BaseDomain }

// ACMEDomain reports whether name is a custom domain bound with ACME, whose
// certificate the daemon gets from its ACME CA on the first handshake.
func (m *Manager) ACMEDomain(name string) bool { return m.domainSnap().acme[name] }

// Domains lists app's custom domains, by name.
func (m *Manager) Domains(ctx context.Context, app string) ([]store.Domain, error) {
	if _, err := m.opts.Store.App(ctx, app); err != nil {
		return nil, err
	}
	return m.opts.Store.Domains(ctx, app)
}

// AddDomain serves app at name from now on, without a deployment; with
// acme, the daemon gets name's certificate from its ACME CA on the first
// TLS handshake that asks for it. Adding a name the app has already
// changes its acme flag (added is false then). A name another app has is
// a *store.DomainTakenError.
func (m *Manager) AddDomain(ctx context.Context, app, name string, acme bool) (d store.Domain, added bool, err error) {
	if name, err = settings.ParseDomain(name); err != nil {
		return store.Domain{}, false, err
	}
	if err := m.outsideBaseDomain(app, name); err != nil {
		return store.Domain{}, false, err
	}
	if acme {
		if err := m.canACME(name); err != nil {
			return store.Domain{}, false, err
		}
	}
	m.domains.mu.Lock()
	defer m.domains.mu.Unlock()
	d, added, err = m.opts.Store.AddDomain(ctx, store.Domain{Name: name, App: app, ACME: acme, Created: time.Now().UTC()}, settings.MaxDomains)
	if err != nil {
		return store.Domain{}, false, err
	}
	if err := m.routeDomainsLocked(ctx, app); err != nil {
		return store.Domain{}, false, err
	}
	how := ""
	if acme {
		how = ", its certificate from the ACME CA"
	}
	m.opts.Logs.Platform(app, 0, "Domain %s added%s", name, how)
	return d, added, nil
}

// RemoveDomain stops serving app at name, at once.
func (m *Manager) RemoveDomain(ctx context.Context, app, name string) error {
	n, err := settings.ParseDomain(name)
	if err != nil {
		return err
	}
	m.domains.mu.Lock()
	defer m.domains.mu.Unlock()
	if err := m.opts.Store.RemoveDomain(ctx, app, n); err != nil {
		return err
	}
	if err := m.routeDomainsLocked(ctx, app); err != nil {
		return err
	}
	m.opts.Logs.Platform(app, 0, "Domain %s removed", n)
	return nil
}

// routeDomainsLocked reads app's domains from the store into the table
// and gives the router app's hosts. Call with m.domains.mu held.
func (m *Manager) routeDomainsLocked(ctx context.Context, app string) error {
	ds, err := m.opts.Store.Domains(ctx, app)
	if err != nil {
		// The store has the change, the router not yet: say so rather than
		// serve what the store no longer says.
		return fmt.Errorf("reading the domains of %s back; the change is stored and the router takes it at the next daemon start: %w", app, err)
	}
	m.domains.snap.Store(m.domainSnap().with(app, ds))
	m.opts.Router.SetHosts(app, m.Hosts(app))
	return nil
}

// outsideBaseDomain refuses a name under the base domain, where the names
// are the apps' own (NAME.<base-domain>), unless it is under app's own
// name: promo may have www.promo.<base-domain>, no app may have
// other.<base-domain> or *.<base-domain>.
func (m *Manager) outsideBaseDomain(app, name string) error {
	base := strings.ToLower(strings.TrimSuffix(m.opts.BaseDomain, "."))
	own := app + "." + base
	if name != base && !strings.HasSuffix(name, "."+base) || strings.HasSuffix(name, "."+own) {
		return nil
	}
	return fmt.Errorf("%w %q: the names under the base domain %s are the apps' own (NAME.%s), and only names under an app's own name may be added to it (like www.%s); add a name outside %s",
		settings.ErrInvalidDomain, name, base, base, own, base)
}

// canACME refuses name with --acme when no certificate can come for it.
func (m *Manager) canACME(name string) error {
	switch {
	case settings.IsWildcard(name):
		return fmt.Errorf("%w for %s: an ACME CA issues a wildcard certificate only through a DNS-01 challenge, and Slipway answers HTTP-01 and TLS-ALPN-01; add it without --acme and give the router a wildcard certificate in --tls-cert-dir", ErrNoACME, name)
	case !m.opts.HTTPS:
		return fmt.Errorf("%w for %s: the daemon has no HTTPS listener; start it with --https-listen and an ACME CA (--acme-email, and --acme-directory for one other than Let's Encrypt), or add the domain without --acme", ErrNoACME, name)
	case !m.opts.ACME:
		return fmt.Errorf("%w for %s: the daemon has no ACME CA; start it with --acme-email (Let's Encrypt), or --acme-directory URL for another CA, or add the domain without --acme", ErrNoACME, name)
	}
	return nil
}
