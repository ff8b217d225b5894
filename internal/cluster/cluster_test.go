package cluster

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
)

func TestSignedCertificateIsTheCAs(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, csrPEM, err := newKeyAndCSR("b")
	if err != nil {
		t.Fatal(err)
	}
	if len(keyPEM) == 0 {
		t.Fatal("no key")
	}
	for _, host := range []string{"10.0.0.6", "node-b.example.com"} {
		certPEM, err := ca.Sign(csrPEM, "b", host)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := parseCert(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("certificate for %s: %v", host, err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("certificate for %s as a client: %v", host, err)
		}
	}
	other, _ := NewCA()
	pool := x509.NewCertPool()
	pool.AddCert(other.Cert)
	certPEM, _ := ca.Sign(csrPEM, "b", "10.0.0.6")
	cert, _ := parseCert(certPEM)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool}); err == nil {
		t.Error("another CA verifies the certificate")
	}
	if _, err := ca.Sign([]byte("not a request"), "b", "10.0.0.6"); !errors.Is(err, ErrBadCertificate) {
		t.Errorf("signing garbage: err %v, want ErrBadCertificate", err)
	}
}

func TestParseToken(t *testing.T) {
	good := token{id: strings.Repeat("a", 16), secret: strings.Repeat("b", 64), fingerprint: strings.Repeat("c", 64)}.String()
	if _, err := parseToken(good); err != nil {
		t.Errorf("parseToken(%q): %v", good, err)
	}
	for name, s := range map[string]string{
		"empty":        "",
		"two parts":    strings.Repeat("a", 16) + "." + strings.Repeat("b", 64),
		"short secret": strings.Repeat("a", 16) + ".bb." + strings.Repeat("c", 64),
		"not hex":      strings.Repeat("z", 16) + "." + strings.Repeat("b", 64) + "." + strings.Repeat("c", 64),
		"four parts":   good + ".x",
	} {
		if _, err := parseToken(s); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: err %v, want ErrBadToken", name, err)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "node-2", "web01"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "A", "a.b", "a_b", strings.Repeat("a", 64)} {
		if err := ValidateName(bad); !errors.Is(err, ErrBadJoin) {
			t.Errorf("ValidateName(%q): err %v, want ErrBadJoin", bad, err)
		}
	}
}

func TestCheckPeerURL(t *testing.T) {
	if host, err := checkPeerURL("https://10.0.0.6:7071"); err != nil || host != "10.0.0.6" {
		t.Errorf("good URL: host %q, err %v", host, err)
	}
	for _, bad := range []string{"http://10.0.0.6:7071", "https://10.0.0.6", "https://0.0.0.0:7071", "https://10.0.0.6:7071/x",
		"https://u@10.0.0.6:7071", "https://10.0.0.6:99999", "https://10.0.0.6:7071?a=b"} {
		if _, err := checkPeerURL(bad); !errors.Is(err, ErrBadJoin) {
			t.Errorf("checkPeerURL(%q): err %v, want ErrBadJoin", bad, err)
		}
	}
}

func TestParseLabels(t *testing.T) {
	got, err := ParseLabels([]string{"zone=west", "disk=ssd", "empty="})
	if err != nil || got["zone"] != "west" || got["disk"] != "ssd" || len(got) != 3 {
		t.Errorf("ParseLabels: %v, %v", got, err)
	}
	for _, bad := range []string{"novalue", "=x", "a b=c", "k=" + strings.Repeat("v", 256)} {
		if _, err := ParseLabels([]string{bad}); err == nil {
			t.Errorf("ParseLabels(%q): no error", bad)
		}
	}
	if _, err := ParseLabels(make([]string, MaxLabels+1)); err == nil {
		t.Error("too many labels: no error")
	}
}

func TestEnsureCAKeepsTheFirst(t *testing.T) {
	dir := t.TempDir()
	first, err := EnsureCA(dir, "a", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := EnsureCA(dir, "a", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if first.Fingerprint() != again.Fingerprint() {
		t.Error("the second start made a new CA")
	}
	if _, err := serverTLS(Files(dir)); err != nil {
		t.Errorf("the peer link's TLS: %v", err)
	}
}
