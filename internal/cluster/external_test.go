package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/slipway-dev/slipway/internal/store"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startTestEtcd starts an etcd server of one member for the nodes of a
// test to share as an external cluster, and returns its client URL.
func startTestEtcd(t *testing.T) string {
	t.Helper()
	client := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	peer := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(t.TempDir(), "etcd")
	cfg.LogLevel = "fatal"
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	srv, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	select {
	case <-srv.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("the test's etcd was not ready within 30s")
	}
	return client.String()
}

// startExternalNode starts a node named name on the external cluster at
// endpoint, from dataDir.
func startExternalNode(t *testing.T, endpoint, name, dataDir string) (*Cluster, error) {
	t.Helper()
	c, err := Prepare(t.Context(), Options{DataDir: dataDir, Name: name, Advertise: "127.0.0.1", PeerPort: freePort(t),
		External: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Node: name, External: &store.External{Endpoints: []string{endpoint}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(); c.Close() })
	return c, c.Start(st)
}

// TestExternalNodeNameTaken: on an external cluster, a node that starts
// with the name of one that runs, from another data directory, does not
// start (it would share its instance records, its registration and its
// place in the election), after waiting for the name to be freed by a
// node that died a moment ago; the node itself starts again.
func TestExternalNodeNameTaken(t *testing.T) {
	defer func(d time.Duration) { nameWait = d }(nameWait)
	nameWait = time.Second
	ep := startTestEtcd(t)
	dirA := t.TempDir()
	if _, err := startExternalNode(t, ep, "web-1", dirA); err != nil {
		t.Fatal(err)
	}
	_, err := startExternalNode(t, ep, "web-1", t.TempDir())
	if !errors.Is(err, store.ErrNameTaken) {
		t.Errorf("a second node named web-1: %v, want ErrNameTaken", err)
	}
	if _, err := startExternalNode(t, ep, "web-1", dirA); err != nil {
		t.Errorf("web-1 starting again from its data directory, while its earlier process's lease lives: %v", err)
	}
}

// TestDataDirKeepsItsStore: a data directory is of the embedded store or
// of an external cluster, for good: a node started the other way would
// start a store of its own with none of its apps, a new admin token, and
// the instances it left running unknown to it; it says so instead.
func TestDataDirKeepsItsStore(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	// A node of an external cluster, started without --etcd-endpoints.
	ext := t.TempDir()
	ep := startTestEtcd(t)
	if _, err := startExternalNode(t, ep, "web-1", ext); err != nil {
		t.Fatal(err)
	}
	_, err := Prepare(t.Context(), Options{DataDir: ext, Name: "web-1", Advertise: "127.0.0.1", PeerPort: freePort(t), Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "--etcd-endpoints") {
		t.Errorf("an external node's data directory without --etcd-endpoints: %v, want a refusal naming --etcd-endpoints", err)
	}
	// A node of its own, started with --etcd-endpoints.
	own := t.TempDir()
	st, err := store.Open(store.Options{Dir: own, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, err = Prepare(t.Context(), Options{DataDir: own, Name: "web-2", Advertise: "127.0.0.1", PeerPort: freePort(t), External: true, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "embedded") {
		t.Errorf("an embedded store's data directory with --etcd-endpoints: %v, want a refusal naming the embedded store", err)
	}
}
