package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testapp"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	pem  string // the CA certificate's file
}

func newCA(t *testing.T, dir string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "slipway test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pool: x509.NewCertPool(), pem: filepath.Join(dir, "ca.pem")}
	ca.pool.AddCert(cert)
	writePEM(t, ca.pem, "CERTIFICATE", der)
	return ca
}

// issue writes NAME.crt and NAME.key for the given DNS names and IPs.
func (ca *testCA) issue(t *testing.T, dir, name string, hosts ...string) (crt, key string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	crt, key = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writePEM(t, crt, "CERTIFICATE", der)
	writePEM(t, key, "EC PRIVATE KEY", kb)
	return crt, key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLS: the router serves HTTPS with a certificate per host (from a
// folder) and a default one; an HTTPS-only app redirects plain HTTP; the
// API serves TLS, and the CLI trusts it through --ca-cert.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir)
	certDir := filepath.Join(dir, "certs")
	os.Mkdir(certDir, 0o700)
	ca.issue(t, certDir, "secure", "secure.localhost")
	ca.issue(t, certDir, "wild", "*.example.test")
	defCrt, defKey := ca.issue(t, dir, "default", "default.invalid")
	apiCrt, apiKey := ca.issue(t, dir, "api", "127.0.0.1")

	httpsPort := freePort(t)
	apiClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	d := launch(t, apiClient, "--https-listen", fmt.Sprintf("127.0.0.1:%d", httpsPort),
		"--tls-cert", defCrt, "--tls-key", defKey, "--tls-cert-dir", certDir,
		"--api-tls-cert", apiCrt, "--api-tls-key", apiKey)

	withCA := []string{"SLIPWAY_CA_CERT=" + ca.pem}
	if out, err := d.cli("apps", "list"); err == nil || !strings.Contains(out, "certificate") {
		t.Errorf("the CLI trusted the API's certificate without --ca-cert: %v\n%s", err, out)
	}
	if out, err := d.cliEnv(withCA, "apps", "create", "secure"); err != nil {
		t.Fatalf("apps create over TLS: %v\n%s", err, out)
	}
	if out, err := d.cliEnv(withCA, "deploy", "-a", "secure", testapp.Jar(t, "app.jar", map[string]string{"version": "1"})); err != nil {
		t.Fatalf("deploy over TLS: %v\n%s", err, out)
	}

	// The client dials the HTTPS listener whatever the host name.
	dialer := &net.Dialer{}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", httpsPort))
		}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(fmt.Sprintf("https://secure.localhost:%d/", httpsPort))
	if err != nil {
		t.Fatalf("HTTPS to secure.localhost: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS.PeerCertificates[0].DNSNames[0] != "secure.localhost" {
		t.Errorf("HTTPS to secure.localhost: %d with a certificate for %v", resp.StatusCode, resp.TLS.PeerCertificates[0].DNSNames)
	}
	for host, want := range map[string]string{"app.example.test": "*.example.test", "unknown.localhost": "default.invalid"} {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", httpsPort), &tls.Config{ServerName: host, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("TLS to %s: %v", host, err)
		}
		if got := conn.ConnectionState().PeerCertificates[0].DNSNames[0]; got != want {
			t.Errorf("TLS to %s got the certificate for %s, want %s", host, got, want)
		}
		conn.Close()
	}

	// HTTPS only: plain HTTP is redirected, HTTPS served.
	if out, err := d.cliEnv(withCA, "access", "https-only", "-a", "secure", "on"); err != nil {
		t.Fatalf("https-only on: %v\n%s", err, out)
	}
	req, _ := http.NewRequest("GET", d.httpURL+"/?x=1", nil)
	req.Host = "secure.localhost"
	plain := &http.Client{CheckRedirect: client.CheckRedirect}
	resp, err = plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantLoc := fmt.Sprintf("https://secure.localhost:%d/?x=1", httpsPort)
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != wantLoc {
		t.Errorf("plain HTTP to an HTTPS-only app: %d to %q, want 308 to %s", resp.StatusCode, resp.Header.Get("Location"), wantLoc)
	}
	resp, err = client.Get(wantLoc)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("following the redirect: %d, want 200", resp.StatusCode)
	}
}
