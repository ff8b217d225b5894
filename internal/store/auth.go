package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/slipway-dev/slipway/internal/access"
)

func policyKey(app string) string    { return prefix + "access/" + app }
func credentialKey(id string) string { return prefix + "credentials/" + id }

// Policy reads app's access restrictions; none when it has none.
func (s *Store) Policy(ctx context.Context, app string) (access.Policy, error) {
	var p access.Policy
	return p, s.getJSON(ctx, policyKey(app), &p, nil)
}

// UpdatePolicy changes app's access restrictions with fn and stores the
// result if it is valid. Concurrent changes are applied one after the
// other, none lost.
func (s *Store) UpdatePolicy(ctx context.Context, app string, fn func(*access.Policy) error) (access.Policy, error) {
	for {
		resp, err := s.cli.Get(ctx, policyKey(app))
		if err != nil {
			return access.Policy{}, fmt.Errorf("reading access rules of %s: %w", app, err)
		}
		var p access.Policy
		var rev int64
		if len(resp.Kvs) > 0 {
			if err := json.Unmarshal(resp.Kvs[0].Value, &p); err != nil {
				return access.Policy{}, err
			}
			rev = resp.Kvs[0].ModRevision
		}
		if err := fn(&p); err != nil {
			return access.Policy{}, err
		}
		if err := p.Validate(); err != nil {
			return access.Policy{}, err
		}
		b, _ := json.Marshal(p)
		txn, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(policyKey(app)), "=", rev)).
			Then(clientv3.OpPut(policyKey(app), string(b))).
			Commit()
		if err != nil {
			return access.Policy{}, fmt.Errorf("writing access rules of %s: %w", app, s.wrapCluster(err))
		}
		if txn.Succeeded {
			return p, nil
		}
	}
}

// AdminCredential is the id of the admin token's record.
const AdminCredential = "admin"

// Credential is an API token as the store keeps it: its hash, never the
// token itself.
type Credential struct {
	ID string `json:"id"`
	// App is the one app the token may deploy and read; empty for the
	// admin token, which may do anything.
	App string `json:"app,omitempty"`
	// Hash is the hex SHA-256 of the token.
	Hash    string    `json:"hash"`
	Created time.Time `json:"created"`
	Author  string    `json:"author,omitempty"`
	Name    string    `json:"name,omitempty"`
}

// CreateCredential records c; ErrExists if its id is taken.
func (s *Store) CreateCredential(ctx context.Context, c Credential) error {
	return s.createJSON(ctx, credentialKey(c.ID), c)
}

// PutCredential overwrites c, as when its token is replaced.
func (s *Store) PutCredential(ctx context.Context, c Credential) error {
	return s.putJSON(ctx, credentialKey(c.ID), c)
}

// Credential reads one; a *NotFoundError when there is none (or it was
// revoked).
//
// On a node of a cluster it is read from the node's own copy of the
// state (a serializable read), which a node cut off from the majority
// still has: it tells such a caller why it refuses a change, instead of
// waiting for the majority to check the token.
func (s *Store) Credential(ctx context.Context, id string) (Credential, error) {
	var c Credential
	return c, s.getJSON(ctx, credentialKey(id), &c, &NotFoundError{Kind: "credential", ID: id}, clientv3.WithSerializable())
}

// Credentials lists the credentials of app, or all of them for app "".
func (s *Store) Credentials(ctx context.Context, app string) ([]Credential, error) {
	all, err := listJSON[Credential](ctx, s, prefix+"credentials/")
	if err != nil || app == "" {
		return all, err
	}
	out := all[:0]
	for _, c := range all {
		if c.App == app {
			out = append(out, c)
		}
	}
	return out, nil
}

// DeleteCredential revokes one; a *NotFoundError when there is none.
func (s *Store) DeleteCredential(ctx context.Context, id string) error {
	resp, err := s.cli.Delete(ctx, credentialKey(id))
	if err != nil {
		return fmt.Errorf("deleting credential %s: %w", id, err)
	}
	if resp.Deleted == 0 {
		return &NotFoundError{Kind: "credential", ID: id}
	}
	return nil
}
