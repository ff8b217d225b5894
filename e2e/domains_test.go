package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testapp"
)

// TestCustomDomains: custom domains on one daemon with an HTTPS listener
// and Pebble as its ACME CA, and two apps, shop and other, running the
// test jar. A name is routed at once; a name of another app is refused,
// naming it; a wildcard stands for one label, after the exact names;
// removing a name stops its routing; a name added with --acme gets its
// certificate from the CA on the first handshake; deleting an app frees
// its names; the names are routed again after a restart.
func TestCustomDomains(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir)
	directory, management := startPebble(t, ca, dir)
	t.Setenv("SSL_CERT_FILE", ca.pem) // the daemon trusts Pebble's HTTPS through the system pool
	httpsPort := freePort(t)
	d := startDaemon(t, "--https-listen", fmt.Sprintf("127.0.0.1:%d", httpsPort),
		"--acme-directory", directory, "--acme-email", "ops@example.test")
	jar := testapp.Jar(t, "shop-1.0.jar", map[string]string{"version": "1"})
	for _, app := range []string{"shop", "other"} {
		d.mustCLI("apps", "create", app)
		d.mustCLI("deploy", "-a", app, jar)
	}

	t.Run("a custom name is routed at once", func(t *testing.T) {
		out := d.mustCLI("domains", "add", "-a", "shop", "Shop.Example.Test")
		if !strings.Contains(out, "App shop is served at shop.example.test now.") {
			t.Errorf("domains add said:\n%s", out)
		}
		for _, host := range []string{"shop.example.test", "SHOP.example.test.", "shop.example.test:80"} {
			d.wantApp(host, "shop")
		}
		d.wantApp("shop.localhost", "shop") // the default name stays
	})

	t.Run("a name of another app is refused, naming it", func(t *testing.T) {
		out, err := d.cli("domains", "add", "-a", "other", "shop.example.test")
		if err == nil || !strings.Contains(out, "shop.example.test is a domain of app shop") {
			t.Errorf("domains add of shop's name to other: %v\n%s", err, out)
		}
		code, body := d.send(http.MethodPost, "/api/v1/apps/other/domains", `{"name": "shop.example.test"}`)
		if code != http.StatusConflict || !strings.Contains(body, "app shop") {
			t.Errorf("the API: %d %s, want 409 naming shop", code, body)
		}
		d.wantApp("shop.example.test", "shop")
	})

	t.Run("a wildcard, after the exact names", func(t *testing.T) {
		d.mustCLI("domains", "add", "-a", "shop", "*.shop.example.test")
		d.mustCLI("domains", "add", "-a", "other", "api.shop.example.test")
		d.wantApp("a.shop.example.test", "shop")
		d.wantApp("api.shop.example.test", "other") // exact beats the wildcard
		d.wantApp("shop.example.test", "shop")
		d.wantApp("a.b.shop.example.test", "") // two labels under it: no app
		out := d.mustCLI("domains", "list", "-a", "shop")
		if !strings.Contains(out, "*.shop.example.test") || !strings.Contains(out, "shop.example.test") {
			t.Errorf("domains list:\n%s", out)
		}
	})

	t.Run("removing a name stops its routing at once", func(t *testing.T) {
		d.mustCLI("domains", "remove", "-a", "shop", "shop.example.test")
		d.wantApp("shop.example.test", "")
		d.wantApp("a.shop.example.test", "shop") // the wildcard stays
	})

	t.Run("a certificate from the ACME CA for a name added with --acme", func(t *testing.T) {
		if _, err := tlsDial(httpsPort, "tls.example.test"); err == nil {
			t.Fatal("a name not added yet got a certificate")
		}
		d.mustCLI("domains", "add", "-a", "shop", "--acme", "tls.example.test")
		conn, err := tlsDial(httpsPort, "tls.example.test")
		if err != nil {
			t.Fatalf("TLS to tls.example.test: %v", err)
		}
		chain := conn.ConnectionState().PeerCertificates
		conn.Close()
		if names := chain[0].DNSNames; len(names) != 1 || names[0] != "tls.example.test" {
			t.Fatalf("the certificate is for %v, want tls.example.test", names)
		}
		// Verified against Pebble's root, as a browser would, and routed.
		client := httpsClient(t, httpsPort, pebbleRoots(t, ca, management))
		resp, err := client.Get(fmt.Sprintf("https://tls.example.test:%d/", httpsPort))
		if err != nil {
			t.Fatalf("HTTPS to tls.example.test: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "instance=shop-") {
			t.Errorf("HTTPS to tls.example.test: %d %q, want 200 from shop", resp.StatusCode, body)
		}
		if _, err := tlsDial(httpsPort, "a.shop.example.test"); err == nil {
			t.Error("a name added without --acme got a certificate (there is no other)")
		}
		out := d.mustCLI("apps", "show", "shop")
		for _, url := range []string{
			fmt.Sprintf("http://shop.localhost:%s", port(d.httpURL)),
			fmt.Sprintf("http://*.shop.example.test:%s", port(d.httpURL)),
			fmt.Sprintf("https://tls.example.test:%d", httpsPort),
		} {
			if !strings.Contains(out, url) {
				t.Errorf("apps show lacks %s:\n%s", url, out)
			}
		}
		if strings.Contains(out, "https://shop.localhost") {
			t.Errorf("apps show has an https URL for a name without a certificate:\n%s", out)
		}
	})

	t.Run("deleting an app frees its names", func(t *testing.T) {
		if code, body := d.send(http.MethodDelete, "/api/v1/apps/other", ""); code != http.StatusNoContent {
			t.Fatalf("deleting other: %d %s", code, body)
		}
		d.wantApp("api.shop.example.test", "shop") // the wildcard's now
		d.mustCLI("domains", "add", "-a", "shop", "api.shop.example.test")
	})

	t.Run("the names are routed again after a restart", func(t *testing.T) {
		d.stop()
		d.start()
		for _, host := range []string{"api.shop.example.test", "b.shop.example.test", "tls.example.test"} {
			d.wantApp(host, "shop")
		}
		d.wantApp("shop.example.test", "")
		if _, err := tlsDial(httpsPort, "tls.example.test"); err != nil {
			t.Errorf("TLS to tls.example.test after the restart: %v", err)
		}
	})
}

// wantApp requests / at host through the router and checks that app
// answers it; app "" wants the router's 404 for a host it does not know.
func (d *daemon) wantApp(host, app string) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.httpURL+"/", nil)
	req.Host = host
	resp, err := d.httpClient().Do(req)
	if err != nil {
		d.t.Errorf("GET / at %s: %v", host, err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case app == "" && resp.StatusCode != http.StatusNotFound:
		d.t.Errorf("GET / at %s: %d %q, want the router's 404", host, resp.StatusCode, body)
	case app != "" && (resp.StatusCode != 200 || !strings.Contains(string(body), "instance="+app+"-")):
		d.t.Errorf("GET / at %s: %d %q, want 200 from %s", host, resp.StatusCode, body, app)
	}
}

// tlsDial makes a TLS handshake with the router's HTTPS listener, asking
// for name (SNI), without verifying the certificate.
func tlsDial(port int, name string) (*tls.Conn, error) {
	return tls.DialWithDialer(&netDialer, "tcp", fmt.Sprintf("127.0.0.1:%d", port),
		&tls.Config{ServerName: name, InsecureSkipVerify: true})
}

// pebbleRoots is Pebble's root, which issues its certificates.
func pebbleRoots(t *testing.T, ca *testCA, management string) *x509.CertPool {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	resp, err := client.Get(management + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	pem, _ := io.ReadAll(resp.Body)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("Pebble's root is no PEM: %q", pem)
	}
	return roots
}

// httpsClient reaches the router's HTTPS listener on loopback whatever
// the URL's host, verifying its certificates against roots.
func httpsClient(t *testing.T, port int, roots *x509.CertPool) *http.Client {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
}
