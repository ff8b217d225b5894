package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// pebbleVersion is the ACME test CA the ACME test runs: Let's Encrypt's
// Pebble. scripts/test installs this version (it reads it from here) before
// the tests run, so that no test reaches a network.
const pebbleVersion = "github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.1"

// pebbleBinary is where scripts/test installs Pebble: $SLIPWAY_PEBBLE, else
// .cache/bin/pebble in the repository.
func pebbleBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("SLIPWAY_PEBBLE")
	if bin == "" {
		bin = filepath.Join("..", ".cache", "bin", "pebble")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no Pebble (the ACME test CA) at %s: run `scripts/test install`, which builds %s into .cache/bin, or set SLIPWAY_PEBBLE to a pebble binary (%v)", bin, pebbleVersion, err)
	}
	return bin
}

// startPebble starts a Pebble ACME CA on loopback, serving its directory
// over HTTPS with a certificate from ca. It validates every challenge
// without looking (PEBBLE_VA_ALWAYS_VALID), since the host names it issues
// for do not resolve to the router here.
func startPebble(t *testing.T, ca *testCA, dir string) (directory, management string) {
	t.Helper()
	bin := pebbleBinary(t)
	crt, key := ca.issue(t, dir, "pebble", "127.0.0.1", "localhost")
	listen, mgmt := freePort(t), freePort(t)
	cfg, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":           fmt.Sprintf("127.0.0.1:%d", listen),
		"managementListenAddress": fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate":             crt, "privateKey": key,
		"httpPort": freePort(t), "tlsPort": freePort(t),
		"externalAccountBindingRequired": false,
	}})
	cfgPath := filepath.Join(dir, "pebble.json")
	os.WriteFile(cfgPath, cfg, 0o600)
	cmd := exec.Command(bin, "-config", cfgPath)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("pebble's log:\n%s", log.String())
		}
	})
	directory = fmt.Sprintf("https://127.0.0.1:%d/dir", listen)
	management = fmt.Sprintf("https://127.0.0.1:%d", mgmt)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	waitFor(t, 30*time.Second, "Pebble to answer", func() bool {
		resp, err := client.Get(directory)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return directory, management
}

// TestACME: a host listed in --acme-hosts gets its certificate from an
// ACME CA on the first handshake, and keeps it in the data directory.
func TestACME(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir)
	directory, management := startPebble(t, ca, dir)
	t.Setenv("SSL_CERT_FILE", ca.pem) // the daemon trusts Pebble's HTTPS through the system pool
	httpsPort := freePort(t)
	d := startDaemon(t, "--https-listen", fmt.Sprintf("127.0.0.1:%d", httpsPort),
		"--acme-hosts", "acme.localhost", "--acme-directory", directory, "--acme-email", "ops@example.test")

	conn, err := tls.DialWithDialer(&netDialer, "tcp", fmt.Sprintf("127.0.0.1:%d", httpsPort),
		&tls.Config{ServerName: "acme.localhost", InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS to acme.localhost: %v", err)
	}
	chain := conn.ConnectionState().PeerCertificates
	conn.Close()
	leaf := chain[0]
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "acme.localhost" {
		t.Fatalf("the certificate is for %v, want acme.localhost", leaf.DNSNames)
	}

	// It chains to Pebble's root.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	resp, err := client.Get(management + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "acme.localhost", Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("the certificate does not chain to Pebble's root: %v", err)
	}
	cached, _ := filepath.Glob(filepath.Join(d.dataDir, "acme", "*acme.localhost*"))
	if len(cached) == 0 {
		t.Errorf("no certificate for acme.localhost kept in %s", filepath.Join(d.dataDir, "acme"))
	}
}

// netDialer bounds a handshake that waits for an ACME order.
var netDialer = net.Dialer{Timeout: 60 * time.Second}
