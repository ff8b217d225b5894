package daemon

import (
	"context"
	"os"
	"path/filepath"
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
