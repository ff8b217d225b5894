package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// testEtcd is an etcd server of one member that the stores of a test
// reach as an external cluster, over plain loopback (the daemon takes no
// such endpoint; the store does not check).
type testEtcd struct {
	t            *testing.T
	dir          string
	client, peer url.URL
	srv          *embed.Etcd
}

// startTestEtcd starts a testEtcd and returns its client URL.
func startTestEtcd(t *testing.T) string {
	t.Helper()
	return newTestEtcd(t).client.String()
}

func newTestEtcd(t *testing.T) *testEtcd {
	t.Helper()
	free := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	e := &testEtcd{t: t, dir: filepath.Join(t.TempDir(), "etcd"),
		client: url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", free())},
		peer:   url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", free())}}
	e.start()
	t.Cleanup(e.stop)
	return e
}

// start starts the server, on the same data and addresses each time.
func (e *testEtcd) start() {
	e.t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = e.dir
	cfg.LogLevel = "fatal"
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{e.client}, []url.URL{e.client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{e.peer}, []url.URL{e.peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	srv, err := embed.StartEtcd(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	select {
	case <-srv.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		srv.Close()
		e.t.Fatal("the test's etcd was not ready within 30s")
	}
	e.srv = srv
}

func (e *testEtcd) stop() {
	if e.srv != nil {
		e.srv.Close()
		e.srv = nil
	}
}

func openExternalStore(t *testing.T, endpoint, node string) *Store {
	t.Helper()
	s, err := Open(Options{Node: node, External: &External{Endpoints: []string{endpoint}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestNodeNameClaimed: on an external cluster nothing admits a node, so
// a node's name is its claim: a node from another data directory that
// takes the name of one that runs is refused (it would share its
// instance records, its registration and its place in the election), and
// so is a name whose member id another name's hash already is. The same
// node (its upgrade's new process, a restart) takes its name again, as
// does a node of an earlier version, which said nothing of its data
// directory.
func TestNodeNameClaimed(t *testing.T) {
	ctx := t.Context()
	ep := startTestEtcd(t)
	a := openExternalStore(t, ep, "web-1")
	if err := a.RegisterNode(ctx, Node{Name: "web-1", DirID: "dir-a", State: NodeReady}); err != nil {
		t.Fatal(err)
	}
	again := openExternalStore(t, ep, "web-1")
	if err := again.RegisterNode(ctx, Node{Name: "web-1", DirID: "dir-a", State: NodeReady}); err != nil {
		t.Errorf("the same node registering again: %v", err)
	}
	other := openExternalStore(t, ep, "web-1")
	err := other.RegisterNode(ctx, Node{Name: "web-1", DirID: "dir-b", State: NodeReady})
	if !errors.Is(err, ErrNameTaken) {
		t.Errorf("another node taking a running node's name: %v, want ErrNameTaken", err)
	}
	nodes, _ := a.Nodes(ctx)
	if len(nodes) != 1 || nodes[0].DirID != "dir-a" {
		t.Errorf("after the refusal the registration is %+v, want dir-a's", nodes)
	}

	// An earlier version's registration names no data directory.
	old := openExternalStore(t, ep, "web-2")
	if err := old.RegisterNode(ctx, Node{Name: "web-2", State: NodeReady}); err != nil {
		t.Fatal(err)
	}
	if err := openExternalStore(t, ep, "web-2").RegisterNode(ctx, Node{Name: "web-2", DirID: "dir-c", State: NodeReady}); err != nil {
		t.Errorf("taking over a registration of an earlier version: %v", err)
	}

	// Two names whose hashes are one member id: the second is refused.
	if _, err := a.cli.Put(ctx, memberNameKey(fmt.Sprintf("%x", nodeID("web-3"))), "web-x"); err != nil {
		t.Fatal(err)
	}
	err = openExternalStore(t, ep, "web-3").RegisterNode(ctx, Node{Name: "web-3", DirID: "dir-d", State: NodeReady})
	if !errors.Is(err, ErrNameTaken) {
		t.Errorf("a name whose member id is another node's: %v, want ErrNameTaken", err)
	}
}

// TestForgetNodeThatCameBack: 'nodes remove' forgets a node it saw down;
// on an external cluster nothing stops that node from coming back in the
// meantime (no member of its was removed), and then its registration and
// its instance records stay: it runs.
func TestForgetNodeThatCameBack(t *testing.T) {
	ctx := t.Context()
	ep := startTestEtcd(t)
	b := openExternalStore(t, ep, "web-2")
	if err := b.RegisterNode(ctx, Node{Name: "web-2", DirID: "dir-b", State: NodeReady}); err != nil {
		t.Fatal(err)
	}
	if err := b.PutInstance(ctx, InstanceRecord{ID: "i-1", App: "shop", Release: 1, PID: 42}); err != nil {
		t.Fatal(err)
	}
	a := openExternalStore(t, ep, "web-1")
	err := a.ForgetNode(ctx, "web-2", fmt.Sprintf("%x", nodeID("web-2")))
	if !errors.Is(err, ErrRegistered) {
		t.Errorf("forgetting a registered node: %v, want ErrRegistered", err)
	}
	if nodes, _ := a.Nodes(ctx); len(nodes) != 1 {
		t.Errorf("the registration of the node that came back is gone: %+v", nodes)
	}
	if recs, _ := a.AllInstances(ctx); len(recs) != 1 {
		t.Errorf("the instance records of the node that came back are gone: %+v", recs)
	}
	if names, _ := a.MemberNames(ctx); len(names) != 1 {
		t.Errorf("the name of the node that came back is gone: %+v", names)
	}
}

// TestExternalSnapshotHoldsSlipwaysOnly: a backup of a store on an
// external etcd cluster holds Slipway's keys, and nothing else of that
// cluster (another system's secrets, etcd's own users): the admin token
// opens Slipway, not the etcd cluster it shares. Keys that live under a
// lease (registrations, locks) are of the running cluster and are left
// out. The snapshot restores into a node of its own.
func TestExternalSnapshotHoldsSlipwaysOnly(t *testing.T) {
	ctx := t.Context()
	ep := startTestEtcd(t)
	s, err := Open(Options{Dir: t.TempDir(), Node: "web-1", External: &External{Endpoints: []string{ep}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// More apps than one page of the copy holds.
	apps := 2*snapshotPage + 3
	for i := range apps {
		if err := s.CreateApp(ctx, App{Name: fmt.Sprintf("app-%03d", i), CurrentRelease: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RegisterNode(ctx, Node{Name: "web-1", DirID: "dir-a", State: NodeReady}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"/registry/secrets/default/db", "/slipwayx", "/slipway"} {
		if _, err := s.cli.Put(ctx, k, "not Slipway's"); err != nil {
			t.Fatal(err)
		}
	}
	var snap bytes.Buffer
	if n, err := s.Snapshot(ctx, &snap); err != nil || n != int64(snap.Len()) {
		t.Fatalf("Snapshot: %d bytes (buffer %d), %v", n, snap.Len(), err)
	}
	if bytes.Contains(snap.Bytes(), []byte("not Slipway's")) {
		t.Errorf("the snapshot holds keys of the etcd cluster that are not Slipway's")
	}
	file := filepath.Join(t.TempDir(), "etcd.snapshot")
	if err := os.WriteFile(file, snap.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Restore(dir, file); err != nil {
		t.Fatal(err)
	}
	restored := openStore(t, dir)
	defer restored.Close()
	if got, err := restored.Apps(ctx); err != nil || len(got) != apps || got[apps-1].Name != fmt.Sprintf("app-%03d", apps-1) {
		t.Errorf("restored %d apps, %v; want %d", len(got), err, apps)
	}
	if nodes, err := restored.Nodes(ctx); err != nil || len(nodes) != 0 {
		t.Errorf("restored registrations %+v, %v; want none", nodes, err)
	}
	if resp, err := restored.cli.Get(ctx, "/", clientv3.WithPrefix(), clientv3.WithKeysOnly()); err != nil {
		t.Fatal(err)
	} else {
		for _, kv := range resp.Kvs {
			if !strings.HasPrefix(string(kv.Key), prefix) {
				t.Errorf("the restored store holds %s", kv.Key)
			}
		}
	}
}

// TestExternalCutOffFailsFast: a node that has lost its external cluster
// says so within seconds, for every call (a token's check too, which
// the cluster's majority answers: no member of its own holds a copy),
// rather than after callTimeout, long after its client gave up.
func TestExternalCutOffFailsFast(t *testing.T) {
	ctx := t.Context()
	etcd := newTestEtcd(t)
	s := openExternalStore(t, etcd.client.String(), "web-1")
	if err := s.CreateApp(ctx, App{Name: "promo"}); err != nil {
		t.Fatal(err)
	}
	etcd.stop()
	// The last keep-alive answer was long ago.
	s.contact.at.Store(time.Now().Add(-time.Minute).UnixNano())
	start := time.Now()
	_, err := s.App(ctx, "promo")
	if took := time.Since(start); err == nil || took > lostCallTimeout+2*time.Second {
		t.Errorf("a read while cut off: %v after %s, want a failure within %s", err, took, lostCallTimeout)
	}
	if !errors.Is(err, ErrNoQuorum) {
		t.Errorf("a read while cut off: %v, want ErrNoQuorum, which says why", err)
	}
}

// TestExternalComesBackSoon: a node reaches its external cluster within
// seconds of the cluster coming back, however long it was down (gRPC's
// own backoff between two dials grows to two minutes).
func TestExternalComesBackSoon(t *testing.T) {
	etcd := newTestEtcd(t)
	s := openExternalStore(t, etcd.client.String(), "web-1")
	etcd.stop()
	// Down for 15 s, gRPC's backoff would wait about 10 s more before its
	// next dial.
	time.Sleep(15 * time.Second)
	etcd.start()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		_, err := s.cli.Get(ctx, prefix+"probe")
		cancel()
		if err == nil {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("the cluster is not reached a minute after it came back: %v", err)
		}
	}
	if took := time.Since(start); took > externalRedialMax+2*time.Second {
		t.Errorf("the cluster was reached %s after it came back, want within %s", took.Round(100*time.Millisecond), externalRedialMax+2*time.Second)
	}
}

// fakeKV answers every call, or fails every one with err.
type fakeKV struct {
	clientv3.KV
	err error
}

func (f fakeKV) Put(context.Context, string, string, ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	return &clientv3.PutResponse{}, f.err
}

func (f fakeKV) Get(context.Context, string, ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	return &clientv3.GetResponse{}, f.err
}

// TestAnswerFindsTheCluster: a node that had lost its external cluster
// counts it found again as soon as the cluster's majority answers a call
// (a change that works at once must not be refused as cut off until the
// next keep-alive); a serializable read, which one member answers, or a
// call that fails does not count.
func TestAnswerFindsTheCluster(t *testing.T) {
	ctx := t.Context()
	c := &contact{}
	lose := func() { c.at.Store(time.Now().Add(-time.Minute).UnixNano()) }
	put := func(g guardedKV) { g.Put(ctx, "k", "v") }
	for _, tc := range []struct {
		name  string
		kv    fakeKV
		call  func(g guardedKV)
		found bool
	}{
		{"a read", fakeKV{}, func(g guardedKV) { g.Get(ctx, "k") }, true},
		{"a write", fakeKV{}, put, true},
		{"a serializable read", fakeKV{}, func(g guardedKV) { g.Get(ctx, "k", clientv3.WithSerializable()) }, false},
		{"a failed write", fakeKV{err: context.DeadlineExceeded}, put, false},
	} {
		lose()
		tc.call(guardedKV{KV: tc.kv, stopped: newStopCause(), contact: c})
		if found := !c.lost(); found != tc.found {
			t.Errorf("after %s the cluster is found: %v, want %v", tc.name, found, tc.found)
		}
	}
}

// TestExternalCutOffEndsCallsUnderWay: a call under way when the node
// loses its external cluster fails, saying why, once the node counts
// itself cut off, rather than waiting callTimeout for the cluster: a
// change whose client has given up would otherwise be carried out when
// the cluster comes back within it (a handler that reads no body does
// not learn that its client left).
func TestExternalCutOffEndsCallsUnderWay(t *testing.T) {
	etcd := newTestEtcd(t)
	s := openExternalStore(t, etcd.client.String(), "web-1")
	etcd.stop()
	start := time.Now()
	_, err := s.App(context.Background(), "promo")
	if took := time.Since(start); took > externalQuorumLapse+lostWatchEvery+2*time.Second {
		t.Errorf("a call under way when the cluster went: %v after %s, want a failure within %s", err, took.Round(100*time.Millisecond), externalQuorumLapse+lostWatchEvery)
	}
	if !errors.Is(err, ErrNoQuorum) {
		t.Errorf("a call under way when the cluster went: %v, want ErrNoQuorum, which says why", err)
	}
}
