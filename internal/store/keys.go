package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func appKey(app string) string                { return prefix + "apps/" + app }
func releasePrefix(app string) string         { return prefix + "releases/" + app + "/" }
func deploymentPrefix(app string) string      { return prefix + "deployments/" + app + "/" }
func lockKey(app string) string               { return prefix + "locks/" + app }
func instanceKey(id string) string            { return prefix + "instances/" + id }
func deploymentKey(app string, id int) string { return numKey(deploymentPrefix(app), id) }

// CreateApp records a new app; ErrExists if the name is taken.
func (s *Store) CreateApp(ctx context.Context, a App) error {
	return s.createJSON(ctx, appKey(a.Name), a)
}

// App reads one app; a *NotFoundError if there is none of that name.
func (s *Store) App(ctx context.Context, name string) (App, error) {
	var a App
	return a, s.getJSON(ctx, appKey(name), &a, appNotFound(name))
}

// Apps lists all apps by name.
func (s *Store) Apps(ctx context.Context) ([]App, error) {
	return listJSON[App](ctx, s, prefix+"apps/")
}

// PutApp overwrites an app record. Only a holder of the app's lock calls
// it; a change made outside a deployment uses PutAppUnlocked.
func (s *Store) PutApp(ctx context.Context, a App) error { return s.putJSON(ctx, appKey(a.Name), a) }

// AppAt reads one app, with the revision of its record (for
// PutAppUnlocked).
func (s *Store) AppAt(ctx context.Context, name string) (App, int64, error) {
	var a App
	resp, err := s.cli.Get(ctx, appKey(name))
	if err != nil {
		return a, 0, fmt.Errorf("reading app %s: %w", name, s.wrapCluster(err))
	}
	if len(resp.Kvs) == 0 {
		return a, 0, appNotFound(name)
	}
	return a, resp.Kvs[0].ModRevision, jsonDecode(resp.Kvs[0].Value, &a)
}

// ErrChanged refuses a write made from a record that has changed since
// it was read, or while a deployment holds the app's lock: read again,
// once the lock is free.
var ErrChanged = errors.New("the app changed meanwhile, or a deployment of it runs")

// PutAppUnlocked writes a, read at revision rev (AppAt), only if its
// record is still at rev and no deployment holds the app's lock; it
// fails with ErrChanged otherwise. A deployment writes the app's record
// under its lock from what it read under it, so a write in between would
// be lost, or would undo the deployment's.
func (s *Store) PutAppUnlocked(ctx context.Context, a App, rev int64) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(appKey(a.Name)), "=", rev),
			clientv3.Compare(clientv3.CreateRevision(lockKey(a.Name)), "=", 0)).
		Then(clientv3.OpPut(appKey(a.Name), string(b))).Commit()
	if err != nil {
		return fmt.Errorf("writing app %s: %w", a.Name, s.wrapCluster(err))
	}
	if !resp.Succeeded {
		return ErrChanged
	}
	return nil
}

// DeleteApp removes an app with its releases, deployments, credentials
// and custom domains (which are free for other apps then), unless a
// deployment holds its lock.
func (s *Store) DeleteApp(ctx context.Context, name string) error {
	for {
		done, err := s.deleteApp(ctx, name)
		if done || err != nil {
			return err
		}
	}
}

// deleteApp is one attempt at DeleteApp; done is false when the app's
// domains changed between reading and deleting them, and it is to be
// tried again.
func (s *Store) deleteApp(ctx context.Context, name string) (done bool, err error) {
	creds, err := s.Credentials(ctx, name)
	if err != nil {
		return false, err
	}
	domainOps, domainsSame, err := s.deleteDomainsOps(ctx, name)
	if err != nil {
		return false, err
	}
	ops := []clientv3.Op{
		clientv3.OpDelete(appKey(name)),
		clientv3.OpDelete(releasePrefix(name), clientv3.WithPrefix()),
		clientv3.OpDelete(deploymentPrefix(name), clientv3.WithPrefix()),
		clientv3.OpDelete(policyKey(name)),
		// Their etcd leases run out on their own.
		clientv3.OpDelete(leasesPrefix(name), clientv3.WithPrefix()),
	}
	for _, c := range creds { // an app's credentials go with it, in the same step
		ops = append(ops, clientv3.OpDelete(credentialKey(c.ID)))
	}
	ops = append(ops, domainOps...) // and so do its domains
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(lockKey(name)), "=", 0), domainsSame).
		Then(ops...).
		Else(clientv3.OpGet(lockKey(name), clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return false, fmt.Errorf("deleting app %s: %w", name, s.wrapCluster(err))
	}
	if !resp.Succeeded {
		if len(resp.Responses[0].GetResponseRange().Kvs) > 0 {
			return false, ErrLocked
		}
		return false, nil // a domain was added or removed meanwhile
	}
	if resp.Responses[0].GetResponseDeleteRange().Deleted == 0 {
		return false, appNotFound(name)
	}
	return true, nil
}

// CreateRelease gives r the next release number of its app and records it.
func (s *Store) CreateRelease(ctx context.Context, r *Release) error {
	for {
		n, err := s.nextNumber(ctx, releasePrefix(r.App))
		if err != nil {
			return err
		}
		r.Number = n
		err = s.createJSON(ctx, numKey(releasePrefix(r.App), n), r)
		if !errors.Is(err, ErrExists) {
			return err
		}
	}
}

// Release reads release n of app; a *NotFoundError names the release, or
// the app if that is missing too.
func (s *Store) Release(ctx context.Context, app string, n int) (Release, error) {
	var r Release
	err := s.getJSON(ctx, numKey(releasePrefix(app), n), &r, &NotFoundError{Kind: "release", App: app, ID: strconv.Itoa(n)})
	return r, s.blameApp(ctx, app, err)
}

// Releases lists an app's releases, oldest first.
func (s *Store) Releases(ctx context.Context, app string) ([]Release, error) {
	return listJSON[Release](ctx, s, releasePrefix(app))
}

// CreateDeployment gives d the next deployment id of its app and records it.
func (s *Store) CreateDeployment(ctx context.Context, d *Deployment) error {
	for {
		n, err := s.nextNumber(ctx, deploymentPrefix(d.App))
		if err != nil {
			return err
		}
		d.ID = n
		err = s.createJSON(ctx, deploymentKey(d.App, n), d)
		if !errors.Is(err, ErrExists) {
			return err
		}
	}
}

// PutDeployment overwrites a deployment record.
func (s *Store) PutDeployment(ctx context.Context, d Deployment) error {
	return s.putJSON(ctx, deploymentKey(d.App, d.ID), d)
}

// Deployment reads one deployment of app; a *NotFoundError names the
// deployment, or the app if that is missing too.
func (s *Store) Deployment(ctx context.Context, app string, id int) (Deployment, error) {
	var d Deployment
	err := s.getJSON(ctx, deploymentKey(app, id), &d, deploymentNotFound(app, id))
	return d, s.blameApp(ctx, app, err)
}

func deploymentNotFound(app string, id int) error {
	return &NotFoundError{Kind: "deployment", App: app, ID: strconv.Itoa(id)}
}

// blameApp turns err, a record of app not found, into the app's own
// *NotFoundError when the app is missing too: "no app named x" helps
// more than "app x has no deployment 3". It reads the app only on that
// error path.
func (s *Store) blameApp(ctx context.Context, app string, err error) error {
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	if _, aerr := s.App(ctx, app); aerr != nil {
		return aerr
	}
	return err
}

// Deployments lists an app's deployments, oldest first.
func (s *Store) Deployments(ctx context.Context, app string) ([]Deployment, error) {
	return listJSON[Deployment](ctx, s, deploymentPrefix(app))
}

// AllDeployments lists the deployments of every app.
func (s *Store) AllDeployments(ctx context.Context) ([]Deployment, error) {
	return listJSON[Deployment](ctx, s, prefix+"deployments/")
}

// WatchDeployment calls fn with the deployment now and after every change,
// until fn returns false, the deployment is deleted (a *NotFoundError), or
// ctx ends.
func (s *Store) WatchDeployment(ctx context.Context, app string, id int, fn func(Deployment) bool) error {
	key := deploymentKey(app, id)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, s.wrapCluster(err))
	}
	if len(resp.Kvs) == 0 {
		return s.blameApp(ctx, app, deploymentNotFound(app, id))
	}
	var d Deployment
	if err := jsonDecode(resp.Kvs[0].Value, &d); err != nil || !fn(d) {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range s.cli.Watch(ctx, key, clientv3.WithRev(resp.Header.Revision+1)) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypeDelete {
				return deploymentNotFound(app, id)
			}
			var d Deployment
			if err := jsonDecode(ev.Kv.Value, &d); err != nil || !fn(d) {
				return err
			}
		}
	}
	return ctx.Err()
}

// WaitDeployment returns deployment id of app once it has ended. It
// fails if ctx ends first (the deployment goes on), or the deployment is
// deleted (a *NotFoundError). It is how every caller that answers when a
// deployment ends waits: the API's wait=1, the App Service endpoints'
// synchronous calls.
func (s *Store) WaitDeployment(ctx context.Context, app string, id int) (Deployment, error) {
	var end Deployment
	err := s.WatchDeployment(ctx, app, id, func(d Deployment) bool {
		end = d
		return !d.Done()
	})
	if err == nil && !end.Done() {
		err = ctx.Err()
	}
	return end, err
}

// LockedError says which deployment holds an app's lock.
type LockedError struct {
	App        string
	Deployment int
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("deployment %d of app %s is running", e.Deployment, e.App)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// Lock takes app's deployment lock for deployment id. The lock hangs on the
// daemon's session lease, so it cannot outlive the daemon. A *LockedError
// names the holder when the lock is taken.
func (s *Store) Lock(ctx context.Context, app string, id int) error {
	err := s.createJSON(ctx, lockKey(app), id, clientv3.WithLease(s.leaseID()))
	if errors.Is(err, ErrExists) {
		holder, herr := s.LockHolder(ctx, app)
		if herr != nil {
			return herr
		}
		return &LockedError{App: app, Deployment: holder}
	}
	return err
}

// LockHolder returns the deployment holding app's lock, or 0 if none does.
func (s *Store) LockHolder(ctx context.Context, app string) (int, error) {
	var id int
	return id, s.getJSON(ctx, lockKey(app), &id, nil)
}

// Unlock releases app's lock if deployment id holds it.
func (s *Store) Unlock(ctx context.Context, app string, id int) error {
	key := lockKey(app)
	_, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(key), "=", strconv.Itoa(id))).
		Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return fmt.Errorf("unlocking app %s: %w", app, s.wrapCluster(err))
	}
	return nil
}

// ClearLocks removes the locks that hang on no live node's lease: those
// an earlier process of this node left (its lease may not have lapsed
// yet), and on a single node every lock. Call it once the node is
// registered (RegisterNode), or on a single node at start: the locks of
// the deployments other nodes run stay.
func (s *Store) ClearLocks(ctx context.Context) error {
	nodes, err := s.cli.Get(ctx, prefix+"nodes/", clientv3.WithPrefix())
	if err != nil {
		return err
	}
	live := map[int64]bool{int64(s.leaseID()): true}
	for _, kv := range nodes.Kvs {
		live[kv.Lease] = true
	}
	locks, err := s.cli.Get(ctx, prefix+"locks/", clientv3.WithPrefix())
	if err != nil {
		return err
	}
	for _, kv := range locks.Kvs {
		if live[kv.Lease] && kv.Lease != int64(s.leaseID()) {
			continue
		}
		if _, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)).
			Then(clientv3.OpDelete(string(kv.Key))).Commit(); err != nil {
			return err
		}
	}
	return nil
}

// PutInstance records a running instance.
func (s *Store) PutInstance(ctx context.Context, r InstanceRecord) error {
	r.Node = s.node
	return s.putJSON(ctx, instanceKey(r.ID), r)
}

// DeleteInstance forgets an instance.
func (s *Store) DeleteInstance(ctx context.Context, id string) error {
	_, err := s.cli.Delete(ctx, instanceKey(id))
	return err
}

// Instances lists the recorded instances of this node. A record without
// a node is of a daemon from before there were clusters: a single node,
// this one (a node joins only with an empty data directory).
func (s *Store) Instances(ctx context.Context) ([]InstanceRecord, error) {
	all, err := s.AllInstances(ctx)
	return slices.DeleteFunc(all, func(r InstanceRecord) bool { return r.Node != s.node && r.Node != "" }), err
}

// AllInstances lists the recorded instances of every node.
func (s *Store) AllInstances(ctx context.Context) ([]InstanceRecord, error) {
	return listJSON[InstanceRecord](ctx, s, prefix+"instances/")
}

// DeleteDeployment removes a deployment record; only for one that never ran.
func (s *Store) DeleteDeployment(ctx context.Context, app string, id int) error {
	_, err := s.cli.Delete(ctx, deploymentKey(app, id))
	return err
}
