package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/acme/autocert"
)

// TestCertCache: what Put keeps, Get returns, readable by the daemon's
// user only, with no temporary file left beside it.
func TestCertCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "acme")
	c := certCache{autocert.DirCache(dir)}
	ctx := context.Background()
	if _, err := c.Get(ctx, "acme.localhost"); err != autocert.ErrCacheMiss {
		t.Fatalf("Get before Put = %v, want ErrCacheMiss", err)
	}
	if err := c.Put(ctx, "acme.localhost", []byte("key and chain")); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "acme.localhost")
	if err != nil || string(got) != "key and chain" {
		t.Errorf("Get = %q, %v; want what Put kept", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("the cache folder holds %v, want one file", entries)
	}
	if fi, _ := entries[0].Info(); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if err := c.Delete(ctx, "acme.localhost"); err != nil {
		t.Fatal(err)
	}
}

// TestACMEPolicy: the ACME CA is asked only for the ACME hosts and the
// custom domains added with ACME, as they are at the handshake; the
// others keep the loaded certificates.
func TestACMEPolicy(t *testing.T) {
	ctx := context.Background()
	acmeDomains := map[string]bool{"shop.example.com": true}
	var mu sync.Mutex
	cs, err := loadCerts(TLSConfig{ACMEEmail: "ops@example.test", ACMEHosts: []string{"Static.Example.com."}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cs.acmeDomain = func(name string) bool { mu.Lock(); defer mu.Unlock(); return acmeDomains[name] }
	for _, tt := range []struct {
		host string
		acme bool
	}{
		{"static.example.com", true},
		{"shop.example.com", true},
		{"SHOP.example.com.", true},
		{"other.example.com", false},
		{"a.shop.example.com", false},
	} {
		err := cs.acmePolicy(ctx, tt.host)
		if (err == nil) != tt.acme || err != nil && !errors.Is(err, errNotACME) {
			t.Errorf("%s: policy says %v, want ACME %v", tt.host, err, tt.acme)
		}
		if got := cs.covers(strings.TrimSuffix(strings.ToLower(tt.host), ".")); got != tt.acme {
			t.Errorf("%s: covered %v, want %v (no certificate is loaded)", tt.host, got, tt.acme)
		}
	}
	mu.Lock()
	delete(acmeDomains, "shop.example.com") // removed: no more certificates for it
	mu.Unlock()
	if err := cs.acmePolicy(ctx, "shop.example.com"); err == nil {
		t.Error("a removed domain still gets certificates")
	}
	if _, err := cs.getCertificate(&tls.ClientHelloInfo{ServerName: "shop.example.com"}); err == nil {
		t.Error("a removed domain, with no loaded certificate, got one")
	}
}

// TestACMEEnabled: any ACME flag turns ACME on, and with it an HTTPS
// listener may start with no other certificate.
func TestACMEEnabled(t *testing.T) {
	for _, tt := range []struct {
		c    TLSConfig
		want bool
	}{
		{TLSConfig{}, false},
		{TLSConfig{CertFile: "a.crt", KeyFile: "a.key"}, false},
		{TLSConfig{ACMEEmail: "ops@example.test"}, true},
		{TLSConfig{ACMEDirectory: "https://127.0.0.1:14000/dir"}, true},
		{TLSConfig{ACMEHosts: []string{"a.example.com"}}, true},
	} {
		if got := tt.c.ACMEEnabled(); got != tt.want || tt.want && !tt.c.Enabled() {
			t.Errorf("%+v: ACME enabled %v, want %v", tt.c, got, tt.want)
		}
	}
}
