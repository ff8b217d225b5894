package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// plainEtcd starts an etcd server of its own on loopback, as a cluster
// Slipway does not run, and returns its client URL and a stop function.
func plainEtcd(t *testing.T, dir string, client, peer url.URL) func() {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.LogLevel = "fatal"
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd was not ready within 30s")
	}
	return e.Close
}

func loopbackURL(t *testing.T) url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// TestExternalCutOff: a store on an external cluster that stops
// answering counts itself cut off once its keep-alives have gone
// unanswered for a while, and its calls then fail within seconds with
// ErrNoQuorum, not after the store's 30 s; once the cluster is back, it
// works again.
func TestExternalCutOff(t *testing.T) {
	dir := t.TempDir()
	client, peer := loopbackURL(t), loopbackURL(t)
	stop := plainEtcd(t, filepath.Join(dir, "etcd"), client, peer)
	s, err := Open(Options{Node: "x", Logger: slog.New(slog.DiscardHandler), External: &External{Endpoints: []string{client.String()}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.CreateApp(ctx, App{Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	if !s.HasQuorum() || !s.Clustered() {
		t.Fatalf("a store on a cluster that answers: quorum %v, clustered %v", s.HasQuorum(), s.Clustered())
	}
	stop()
	deadline := time.Now().Add(externalQuorumLapse + 5*time.Second)
	for s.HasQuorum() {
		if time.Now().After(deadline) {
			t.Fatalf("still counting itself in touch %s after the cluster stopped", externalQuorumLapse+5*time.Second)
		}
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	_, err = s.App(ctx, "shop")
	if !errors.Is(err, ErrNoQuorum) || time.Since(start) > 5*time.Second {
		t.Errorf("a read while cut off: %v after %s, want ErrNoQuorum within 5s", err, time.Since(start).Round(time.Millisecond))
	}
	stop = plainEtcd(t, filepath.Join(dir, "etcd"), client, peer)
	defer stop()
	deadline = time.Now().Add(30 * time.Second)
	for {
		_, err := s.App(ctx, "shop")
		if err == nil && s.HasQuorum() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(fmt.Errorf("not back 30 s after the cluster was: %v, quorum %v", err, s.HasQuorum()))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
