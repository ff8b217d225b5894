package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/slipway-dev/slipway/internal/atomicfile"
)

// TLSConfig is where the router's HTTPS listener finds its certificates.
type TLSConfig struct {
	// CertFile and KeyFile are the default certificate, for a host no
	// other certificate names.
	CertFile, KeyFile string
	// CertDir holds more certificates, as NAME.crt with NAME.key; each is
	// used for the host names it lists.
	CertDir string
	// ACMEHosts get certificates from an ACME CA (Let's Encrypt unless
	// ACMEDirectory says otherwise), kept in the data directory; so do the
	// custom domains added with ACME (slipway domains add --acme).
	ACMEHosts     []string
	ACMEEmail     string
	ACMEDirectory string
}

// Enabled reports whether any certificate source is set.
func (c TLSConfig) Enabled() bool {
	return c.CertFile != "" || c.CertDir != "" || c.ACMEEnabled()
}

// ACMEEnabled reports whether certificates come from an ACME CA: for the
// ACME hosts, and for the custom domains added with ACME. Any of the ACME
// flags turns it on, so that --acme-email alone serves custom domains.
func (c TLSConfig) ACMEEnabled() bool {
	return len(c.ACMEHosts) > 0 || c.ACMEEmail != "" || c.ACMEDirectory != ""
}

// Validate checks that the flags go together.
func (c TLSConfig) Validate() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	return nil
}

// certSet picks a certificate by the name the client asks for (SNI).
type certSet struct {
	byName map[string]*tls.Certificate // lower-case DNS name, maybe "*.example.com"
	def    *tls.Certificate
	acme   *autocert.Manager
	hosts  []string // the ACME hosts
	// acmeDomain reports whether a name is a custom domain added with
	// ACME; set before the listeners serve, never changed after.
	acmeDomain func(name string) bool
}

// loadCerts reads every certificate the configuration names, so that a
// missing or broken file stops the start with a clear error.
func loadCerts(c TLSConfig, dataDir string) (*certSet, error) {
	cs := &certSet{byName: map[string]*tls.Certificate{}}
	if c.CertFile != "" {
		cert, err := loadPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		cs.def = cert
	}
	if c.CertDir != "" {
		if err := cs.loadDir(c.CertDir); err != nil {
			return nil, err
		}
	}
	if c.ACMEEnabled() {
		for _, h := range c.ACMEHosts {
			cs.hosts = append(cs.hosts, strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), "."))
		}
		cs.acme = &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			Cache:      certCache{autocert.DirCache(filepath.Join(dataDir, "acme"))},
			HostPolicy: cs.acmePolicy,
			Email:      c.ACMEEmail,
		}
		if c.ACMEDirectory != "" {
			cs.acme.Client = &acme.Client{DirectoryURL: c.ACMEDirectory}
		}
	}
	return cs, nil
}

// errNotACME refuses an ACME certificate for a name that is neither an
// ACME host nor a custom domain added with ACME.
var errNotACME = errors.New("not an ACME host, nor a custom domain added with --acme")

// isACME reports whether name, lower case without a trailing dot, gets
// its certificate from the ACME CA.
func (cs *certSet) isACME(name string) bool {
	return cs.acme != nil && (slices.Contains(cs.hosts, name) || cs.acmeDomain != nil && cs.acmeDomain(name))
}

// acmePolicy is the ACME manager's host policy: it asks the CA only for
// the ACME hosts and the custom domains added with ACME, as they are at
// the moment of the handshake.
func (cs *certSet) acmePolicy(_ context.Context, host string) error {
	if !cs.isACME(strings.TrimSuffix(strings.ToLower(host), ".")) {
		return fmt.Errorf("%w: %s", errNotACME, host)
	}
	return nil
}

// certCache keeps ACME certificates and the account key in a folder, as
// autocert.DirCache does, but writes them through atomicfile: DirCache
// renames without a sync, so a power cut could leave an empty key behind.
type certCache struct{ autocert.DirCache }

func (c certCache) Put(ctx context.Context, name string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(string(c.DirCache), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(string(c.DirCache), filepath.Clean("/"+name)), data, 0o600)
}

func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading certificate %s with key %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parsing certificate %s: %w", certFile, err)
		}
	}
	return &cert, nil
}

func (cs *certSet) loadDir(dir string) error {
	crts, err := filepath.Glob(filepath.Join(dir, "*.crt"))
	if err != nil {
		return err
	}
	if len(crts) == 0 {
		return fmt.Errorf("--tls-cert-dir %s holds no NAME.crt files", dir)
	}
	for _, crt := range crts {
		cert, err := loadPair(crt, strings.TrimSuffix(crt, ".crt")+".key")
		if err != nil {
			return err
		}
		for _, name := range cert.Leaf.DNSNames {
			cs.byName[strings.ToLower(name)] = cert
		}
	}
	return nil
}

// getCertificate answers the TLS handshake: an ACME host or a custom
// domain added with ACME gets its ACME certificate (the first handshake
// waits while the CA issues it), a host a loaded certificate names gets
// that one (an exact name before a wildcard), any other the default.
func (cs *certSet) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
	if cs.isACME(name) {
		return cs.acme.GetCertificate(hello)
	}
	if c := cs.loaded(name); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("no certificate for %q", name)
}

// loaded is the loaded certificate for name: the one that names it
// exactly, else one whose wildcard covers it, else the default; nil when
// there is none. A wildcard name ("*.example.com", an app's custom
// domain) finds the wildcard certificate for it.
func (cs *certSet) loaded(name string) *tls.Certificate {
	if c := cs.byName[name]; c != nil {
		return c
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c := cs.byName["*"+name[i:]]; c != nil {
			return c
		}
	}
	return cs.def
}

// covers reports whether the HTTPS listener has a certificate for host,
// or gets one from the ACME CA on the first handshake.
func (cs *certSet) covers(host string) bool {
	return cs.isACME(host) || cs.loaded(host) != nil
}

func (cs *certSet) tlsConfig() *tls.Config {
	cfg := &tls.Config{GetCertificate: cs.getCertificate, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if cs.acme != nil {
		cfg.NextProtos = append(cfg.NextProtos, acme.ALPNProto) // the tls-alpn-01 challenge
	}
	return cfg
}

// httpHandler wraps the router on the plain HTTP listener: with ACME, it
// answers the http-01 challenge first.
func (cs *certSet) httpHandler(h http.Handler) http.Handler {
	if cs == nil || cs.acme == nil {
		return h
	}
	return cs.acme.HTTPHandler(h)
}

// apiTLS loads the API listener's certificate, if it has one.
func apiTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("--api-tls-cert and --api-tls-key go together: give both or neither")
	}
	cert, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}, nil
}
