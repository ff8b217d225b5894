package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/testapp"
)

// externalEtcd is an etcd cluster of one member that Slipway does not
// run: a real etcd server, started in the test's process, that takes
// clients over TLS with a certificate of its CA only.
type externalEtcd struct {
	url                 string
	ca, cert, key       string // the client's files
	otherCert, otherKey string // a client certificate of another CA

	dir, serverCert, serverKey string
	client, peer               url.URL
	srv                        *embed.Etcd
}

func startExternalEtcd(t *testing.T) *externalEtcd {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := newTestCA(t, "etcd CA")
	e := &externalEtcd{ca: filepath.Join(dir, "ca.pem")}
	writePEM(t, e.ca, "CERTIFICATE", ca.Raw)
	serverCert, serverKey := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	issueTestCert(t, ca, caKey, "etcd", x509.ExtKeyUsageServerAuth, serverCert, serverKey)
	e.cert, e.key = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	issueTestCert(t, ca, caKey, "slipway", x509.ExtKeyUsageClientAuth, e.cert, e.key)
	other, otherKey := newTestCA(t, "another CA")
	e.otherCert, e.otherKey = filepath.Join(dir, "other.pem"), filepath.Join(dir, "other-key.pem")
	issueTestCert(t, other, otherKey, "slipway", x509.ExtKeyUsageClientAuth, e.otherCert, e.otherKey)

	e.dir, e.serverCert, e.serverKey = dir, serverCert, serverKey
	e.client = url.URL{Scheme: "https", Host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	e.peer = url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	e.start(t)
	t.Cleanup(e.stop)
	e.url = e.client.String()
	return e
}

// start starts the member, on the same data and addresses each time.
func (e *externalEtcd) start(t *testing.T) {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(e.dir, "etcd")
	cfg.LogLevel = "error"
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{e.client}, []url.URL{e.client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{e.peer}, []url.URL{e.peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = e.serverCert, e.serverKey
	cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = e.ca, true
	srv, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		srv.Close()
		t.Fatal("the external etcd was not ready within 30s")
	}
	e.srv = srv
}

func (e *externalEtcd) stop() {
	if e.srv != nil {
		e.srv.Close()
		e.srv = nil
	}
}

func newTestCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// issueTestCert writes a certificate of ca for 127.0.0.1, and its key.
func issueTestCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
}

// TestClusterExternalEtcd: two nodes keep their state in an etcd cluster
// they do not run (--etcd-endpoints, client certificates), and are one
// Slipway: one admin token, one deploy that reaches both, a shared
// cluster CA on their peer link, join tokens refused as needless. A node
// with a certificate of another CA does not start, and says why; a dead
// node is listed down and removed.
func TestClusterExternalEtcd(t *testing.T) {
	etcd := startExternalEtcd(t)
	flags := []string{"--etcd-endpoints", etcd.url, "--etcd-cacert", etcd.ca, "--etcd-cert", etcd.cert, "--etcd-key", etcd.key}
	x := startNode(t, "x", nil, flags...)
	x.name = "x"
	// The second node's admin token is the first one's: it is the
	// cluster's, in the store.
	y := startNodeWith(t, &daemon{joined: true, token: x.token, name: "y"}, "y", nil, flags...)
	for _, d := range []*daemon{x, y} {
		for _, name := range []string{"x", "y"} {
			waitNodeState(t, d, name, "ready")
		}
	}
	if _, err := os.Stat(filepath.Join(x.dataDir, "etcd")); err == nil {
		t.Errorf("a node on an external etcd made an embedded member in %s", x.dataDir)
	}
	if x.log.String() == "" || !strings.Contains(x.log.String(), "the external etcd cluster") {
		t.Errorf("the log does not say that the store is the external cluster:\n%s", x.log)
	}
	// Both nodes' peer certificates come from one cluster CA, the one in
	// the store.
	caX, _ := os.ReadFile(filepath.Join(x.dataDir, "cluster", "ca.crt"))
	caY, _ := os.ReadFile(filepath.Join(y.dataDir, "cluster", "ca.crt"))
	if len(caX) == 0 || string(caX) != string(caY) {
		t.Errorf("the nodes' cluster CAs differ (or are missing): %d and %d bytes", len(caX), len(caY))
	}
	if out, err := x.cli("admin", "join-token"); err == nil || !strings.Contains(out, "--etcd-endpoints") {
		t.Errorf("a join token on an external etcd: err %v, want a refusal that names --etcd-endpoints; output:\n%s", err, out)
	}

	// One deploy, at y, reaches both nodes.
	y.mustCLI("apps", "create", "ext")
	y.mustCLI("deploy", "-a", "ext", testapp.Jar(t, "ext.jar", map[string]string{"version": "1"}))
	waitVersion(t, "ext", 1, x, y)
	var st api.Status
	x.getJSON("/api/v1/apps/ext/status", &st)
	if len(st.Nodes) != 2 {
		t.Errorf("status at x lists the instances of %d nodes, want 2: %+v", len(st.Nodes), st.Nodes)
	}

	t.Run("etcd down", func(t *testing.T) {
		// Both nodes serve what they have while the cluster is down,
		// refuse changes saying why, and go on once it is back.
		etcd.stop()
		waitFor(t, 60*time.Second, "x to refuse changes", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, "restart", "-a", "ext")
			cmd.Env = append(os.Environ(), "SLIPWAY_URL="+x.apiURL, "SLIPWAY_TOKEN="+x.token)
			out, err := cmd.CombinedOutput()
			return err != nil && strings.Contains(string(out), "cannot reach a majority")
		})
		waitVersion(t, "ext", 1, x, y)
		etcd.start(t)
		// Until x reaches the cluster again (within seconds), it
		// refuses, saying why, even to read.
		waitFor(t, 30*time.Second, "x to reach the etcd cluster again", func() bool {
			resp, err := x.api(http.MethodGet, "/api/v1/nodes", nil)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		for _, name := range []string{"x", "y"} {
			waitNodeState(t, x, name, "ready")
		}
		if out := x.mustCLI("restart", "-a", "ext"); !strings.Contains(out, "succeeded") {
			t.Errorf("a restart once etcd is back:\n%s", out)
		}
		waitVersion(t, "ext", 1, x, y)
	})

	t.Run("another CA's certificate", func(t *testing.T) {
		out, err := x.cli("server", "--data-dir", filepath.Join(passableTempDir(t), "data"), "--node-name", "evil",
			"--api-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--http-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			"--peer-port", fmt.Sprint(freePort(t)), "--lease-listen", "127.0.0.1:0",
			"--etcd-endpoints", etcd.url, "--etcd-cacert", etcd.ca, "--etcd-cert", etcd.otherCert, "--etcd-key", etcd.otherKey)
		if err == nil || !strings.Contains(out, "reaching the etcd cluster at "+etcd.url) {
			t.Errorf("a node with another CA's certificate: err %v, want a refusal that names the cluster; output:\n%s", err, out)
		}
		if _, ok := nodes(t, x)["evil"]; ok {
			t.Errorf("the refused node is listed")
		}
	})

	t.Run("a dead node", func(t *testing.T) {
		killNode(t, y)
		waitNodeState(t, x, "y", "down")
		x.mustCLI("nodes", "remove", "y")
		if _, ok := nodes(t, x)["y"]; ok {
			t.Errorf("node y is still listed after its removal")
		}
		// x goes on alone: a change is carried out.
		x.mustCLI("deploy", "-a", "ext", testapp.Jar(t, "ext2.jar", map[string]string{"version": "2"}))
		waitVersion(t, "ext", 2, x)
	})
}
