// Package cluster makes several nodes one Slipway: the cluster CA and the
// peer link's mutual TLS, joining a node to a running one's etcd cluster,
// and the nodes' registration.
package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/slipway-dev/slipway/internal/atomicfile"
)

// Files of a node's peer TLS, in <data dir>/cluster.
const (
	caCertFile   = "ca.crt"
	caKeyFile    = "ca.key"
	nodeCertFile = "node.crt"
	nodeKeyFile  = "node.key"
)

// caValidity and nodeValidity are how long the cluster CA and a node's
// certificate are good for.
const (
	caValidity   = 20 * 365 * 24 * time.Hour
	nodeValidity = 10 * 365 * 24 * time.Hour
)

// ErrBadCertificate says that a certificate request or a certificate sent
// by a joining node or an admitting one is not what it must be.
var ErrBadCertificate = errors.New("bad certificate")

// CA is the cluster's certificate authority: every node's peer
// certificate is signed by it, and nothing is accepted on the peer link
// without one.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
	KeyPEM  []byte
}

// Fingerprint is the hex SHA-256 of the CA certificate; a join token
// carries it, so that a joining node knows it talks to the right cluster.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.Cert.Raw) }

// Fingerprint is the hex SHA-256 of a DER certificate.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// NewCA makes a new cluster CA.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "slipway cluster CA", Organization: []string{"slipway"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return ParseCA(pemOf("CERTIFICATE", der), pemOf("EC PRIVATE KEY", keyDER))
}

// ParseCA reads a CA from its PEM certificate and key.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, fmt.Errorf("%w: the CA key is no PEM", ErrBadCertificate)
	}
	key, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: the CA key: %v", ErrBadCertificate, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%w: the CA certificate is no CA", ErrBadCertificate)
	}
	return &CA{Cert: cert, CertPEM: certPEM, key: key, KeyPEM: keyPEM}, nil
}

// Sign issues a node certificate for the public key of a PEM certificate
// request, good for serving and dialling the peer link at host (an IP
// address or a DNS name).
func (ca *CA) Sign(csrPEM []byte, name, host string) ([]byte, error) {
	b, _ := pem.Decode(csrPEM)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("%w: the certificate request is no PEM CERTIFICATE REQUEST", ErrBadCertificate)
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCertificate, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: the request's signature: %v", ErrBadCertificate, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"slipway"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(nodeValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	return pemOf("CERTIFICATE", der), nil
}

// newKeyAndCSR makes a node's key and a certificate request for it.
func newKeyAndCSR(name string) (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemOf("EC PRIVATE KEY", keyDER), pemOf("CERTIFICATE REQUEST", csr), nil
}

func parseCert(certPEM []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: no PEM CERTIFICATE", ErrBadCertificate)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCertificate, err)
	}
	return c, nil
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// TLSFiles are the paths of a node's peer TLS files, as etcd takes them.
type TLSFiles struct {
	CA, Cert, Key string
}

// Files returns the peer TLS files of the node whose data directory is
// dataDir.
func Files(dataDir string) TLSFiles {
	d := filepath.Join(dataDir, "cluster")
	return TLSFiles{CA: filepath.Join(d, caCertFile), Cert: filepath.Join(d, nodeCertFile), Key: filepath.Join(d, nodeKeyFile)}
}

func (f TLSFiles) dir() string              { return filepath.Dir(f.CA) }
func (f TLSFiles) caKey() string            { return filepath.Join(f.dir(), caKeyFile) }
func (f TLSFiles) exist() bool              { _, err := os.Stat(f.CA); return err == nil }
func (f TLSFiles) hasCert() bool            { _, err := os.Stat(f.Cert); return err == nil }
func writeFile(path string, b []byte) error { return atomicfile.WriteFile(path, b, 0o600) }

// EnsureCA makes the cluster CA in the data directory at the node's
// first start, and a certificate of its own for host: a node that starts
// alone is the first of its cluster, should it grow. It returns the CA.
func EnsureCA(dataDir, name, host string) (*CA, error) {
	f := Files(dataDir)
	if err := os.MkdirAll(f.dir(), 0o700); err != nil {
		return nil, err
	}
	if f.exist() {
		certPEM, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, err
		}
		keyPEM, err := os.ReadFile(f.caKey())
		if errors.Is(err, os.ErrNotExist) {
			// A node that joined: the CA's key is in the store.
			cert, err := parseCert(certPEM)
			if err != nil {
				return nil, err
			}
			return &CA{Cert: cert, CertPEM: certPEM}, nil
		}
		if err != nil {
			return nil, err
		}
		return ParseCA(certPEM, keyPEM)
	}
	ca, err := NewCA()
	if err != nil {
		return nil, err
	}
	if err := writeFile(f.caKey(), ca.KeyPEM); err != nil {
		return nil, err
	}
	if err := issueOwn(ca, f, name, host); err != nil {
		return nil, err
	}
	return ca, writeFile(f.CA, ca.CertPEM) // last: its presence says the rest is there
}

// issueOwn writes a new key and certificate for this node, signed by ca.
// etcd reads them at every handshake, so a new one takes effect at once.
func issueOwn(ca *CA, f TLSFiles, name, host string) error {
	keyPEM, csrPEM, err := newKeyAndCSR(name)
	if err != nil {
		return err
	}
	certPEM, err := ca.Sign(csrPEM, name, host)
	if err != nil {
		return err
	}
	if err := writeFile(f.Key, keyPEM); err != nil {
		return err
	}
	return writeFile(f.Cert, certPEM)
}

// serverTLS is the peer listener's TLS: a certificate signed by the
// cluster CA is required of every client.
func serverTLS(f TLSFiles) (*tls.Config, error) {
	pool, err := caPool(f)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  pool,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
			return &c, err
		},
	}, nil
}

// clientTLS is the TLS of a call to a peer: its certificate must be
// signed by the cluster CA, and ours is shown.
func clientTLS(f TLSFiles) (*tls.Config, error) {
	pool, err := caPool(f)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
			return &c, err
		},
	}, nil
}

func caPool(f TLSFiles) (*x509.CertPool, error) {
	b, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%w: %s holds no certificate", ErrBadCertificate, f.CA)
	}
	return pool, nil
}
