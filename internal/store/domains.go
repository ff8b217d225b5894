package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// An app's custom domains are kept twice, written together in one
// transaction: the app's list, appDomainsKey(app), a JSON array, and one
// index key per name, domainKey(name), whose value is the owning app.
// Creating an index key only where none exists is what makes a name
// belong to one app; the list is what the app's views read.
func appDomainsKey(app string) string { return prefix + "appdomains/" + app }
func domainKey(name string) string    { return prefix + "domains/" + name }

// Domain is a custom host name an app is served at, besides its default
// NAME.<base-domain>. Domains are not part of a release: they take effect
// at once.
type Domain struct {
	// Name is lower case without a trailing dot; "*.shop.example.com" is
	// a wildcard (see settings.ParseDomain).
	Name string `json:"name"`
	App  string `json:"app"`
	// ACME gets the name its certificate from the daemon's ACME CA on the
	// first TLS handshake that asks for it.
	ACME    bool      `json:"acme,omitempty"`
	Created time.Time `json:"created"`
}

// DomainTakenError says which app has a name another app asked for. It
// wraps ErrExists.
type DomainTakenError struct {
	Name, Owner string
}

func (e *DomainTakenError) Error() string {
	return fmt.Sprintf("%s is a domain of app %s; a name belongs to one app only: remove it there first ('slipway domains remove -a %s %s')",
		e.Name, e.Owner, e.Owner, e.Name)
}

func (e *DomainTakenError) Unwrap() error { return ErrExists }

// ErrTooManyDomains is returned when an app has as many domains as it may.
var ErrTooManyDomains = errors.New("too many domains")

// Domains lists app's custom domains by name; none for an app that has
// none, or does not exist.
func (s *Store) Domains(ctx context.Context, app string) ([]Domain, error) {
	ds, _, err := s.appDomains(ctx, app)
	return ds, err
}

// AllDomains lists the custom domains of every app.
func (s *Store) AllDomains(ctx context.Context) ([]Domain, error) {
	lists, err := listJSON[[]Domain](ctx, s, prefix+"appdomains/")
	if err != nil {
		return nil, err
	}
	return slices.Concat(lists...), nil
}

// appDomains reads app's list with the revision it was last changed at
// (0 when it has none), for a transaction to compare.
func (s *Store) appDomains(ctx context.Context, app string) ([]Domain, int64, error) {
	resp, err := s.cli.Get(ctx, appDomainsKey(app))
	if err != nil {
		return nil, 0, fmt.Errorf("reading the domains of %s: %w", app, s.wrapCluster(err))
	}
	if len(resp.Kvs) == 0 {
		return []Domain{}, 0, nil
	}
	var ds []Domain
	if err := json.Unmarshal(resp.Kvs[0].Value, &ds); err != nil {
		return nil, 0, fmt.Errorf("decoding the domains of %s: %w", app, err)
	}
	return ds, resp.Kvs[0].ModRevision, nil
}

// AddDomain gives d.App the name d.Name, or changes its ACME flag if the
// app has the name already (added is false then). A name another app has
// is a *DomainTakenError; a missing app a *NotFoundError; an app with max
// domains ErrTooManyDomains. Two apps that claim one name at once: one
// gets it, the other a *DomainTakenError.
func (s *Store) AddDomain(ctx context.Context, d Domain, max int) (stored Domain, added bool, err error) {
	for {
		ds, rev, err := s.appDomains(ctx, d.App)
		if err != nil {
			return Domain{}, false, err
		}
		owner, ownerRev, err := s.domainOwner(ctx, d.Name)
		if err != nil {
			return Domain{}, false, err
		}
		if owner != "" && owner != d.App {
			return Domain{}, false, &DomainTakenError{Name: d.Name, Owner: owner}
		}
		i := slices.IndexFunc(ds, func(x Domain) bool { return x.Name == d.Name })
		switch {
		case i >= 0:
			d.Created = ds[i].Created
			ds[i] = d
		case len(ds) >= max:
			return Domain{}, false, fmt.Errorf("%w: app %s has %d custom domains, the most an app may have; remove one first", ErrTooManyDomains, d.App, len(ds))
		default:
			ds = append(ds, d)
			slices.SortFunc(ds, func(a, b Domain) int { return strings.Compare(a.Name, b.Name) })
		}
		b, err := json.Marshal(ds)
		if err != nil {
			return Domain{}, false, err
		}
		// Neither the app's list nor the name's index changed since they
		// were read, and the app still exists.
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(appDomainsKey(d.App)), "=", rev),
				clientv3.Compare(clientv3.ModRevision(domainKey(d.Name)), "=", ownerRev),
				clientv3.Compare(clientv3.CreateRevision(appKey(d.App)), ">", 0)).
			Then(clientv3.OpPut(appDomainsKey(d.App), string(b)), clientv3.OpPut(domainKey(d.Name), d.App)).
			Else(clientv3.OpGet(appKey(d.App), clientv3.WithKeysOnly())).
			Commit()
		if err != nil {
			return Domain{}, false, fmt.Errorf("adding domain %s to %s: %w", d.Name, d.App, s.wrapCluster(err))
		}
		if resp.Succeeded {
			return d, i < 0, nil
		}
		if len(resp.Responses[0].GetResponseRange().Kvs) == 0 {
			return Domain{}, false, appNotFound(d.App)
		}
		// Another change came between: read both again.
	}
}

// RemoveDomain takes name from app; a *NotFoundError when app does not
// have it.
func (s *Store) RemoveDomain(ctx context.Context, app, name string) error {
	for {
		ds, rev, err := s.appDomains(ctx, app)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(ds, func(x Domain) bool { return x.Name == name })
		if i < 0 {
			return s.blameApp(ctx, app, &NotFoundError{Kind: "domain", App: app, ID: name})
		}
		ds = slices.Delete(ds, i, i+1)
		b, err := json.Marshal(ds)
		if err != nil {
			return err
		}
		put := clientv3.OpPut(appDomainsKey(app), string(b))
		if len(ds) == 0 {
			put = clientv3.OpDelete(appDomainsKey(app))
		}
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(appDomainsKey(app)), "=", rev)).
			Then(put, clientv3.OpDelete(domainKey(name))).
			Commit()
		if err != nil {
			return fmt.Errorf("removing domain %s from %s: %w", name, app, s.wrapCluster(err))
		}
		if resp.Succeeded {
			return nil
		}
	}
}

// DomainOwner returns the app that has name, "" when none has.
func (s *Store) DomainOwner(ctx context.Context, name string) (string, error) {
	owner, _, err := s.domainOwner(ctx, name)
	return owner, err
}

// domainOwner returns the app that has name with the revision its index
// key was last changed at; "" and 0 when no app has it.
func (s *Store) domainOwner(ctx context.Context, name string) (string, int64, error) {
	resp, err := s.cli.Get(ctx, domainKey(name))
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", domainKey(name), s.wrapCluster(err))
	}
	if len(resp.Kvs) == 0 {
		return "", 0, nil
	}
	return string(resp.Kvs[0].Value), resp.Kvs[0].ModRevision, nil
}

// deleteDomainsOps are the operations that free app's domains, for the
// transaction that deletes it, and the comparison that keeps them exact:
// the list must not have changed since it was read.
func (s *Store) deleteDomainsOps(ctx context.Context, app string) ([]clientv3.Op, clientv3.Cmp, error) {
	ds, rev, err := s.appDomains(ctx, app)
	if err != nil {
		return nil, clientv3.Cmp{}, err
	}
	ops := []clientv3.Op{clientv3.OpDelete(appDomainsKey(app))}
	for _, d := range ds {
		ops = append(ops, clientv3.OpDelete(domainKey(d.Name)))
	}
	return ops, clientv3.Compare(clientv3.ModRevision(appDomainsKey(app)), "=", rev), nil
}
