package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/store"
)

// Sentinel errors of joining.
var (
	// ErrBadToken refuses a join token that is mistyped, expired or of
	// another cluster.
	ErrBadToken = errors.New("the join token is not valid: it is mistyped, has expired, or is of another cluster; make a new one with 'slipway admin join-token' on a node of the cluster")
	// ErrBadJoin refuses a join request that is malformed.
	ErrBadJoin = errors.New("bad join request")
	// ErrNameTaken refuses a node name another node has.
	ErrNameTaken = errors.New("the node name is taken")
)

// Bounds of a join.
const (
	// DefaultTokenTTL is how long a join token is good for.
	DefaultTokenTTL = time.Hour
	// MaxTokenTTL bounds a join token's life.
	MaxTokenTTL = 7 * 24 * time.Hour
	// maxCSRBytes bounds a join request's certificate request.
	maxCSRBytes = 4 << 10
	// joinTimeout bounds the join call to the admitting node.
	joinTimeout = 30 * time.Second
)

// JoinRequest is the body of POST /api/v1/cluster/join: a node that
// asks to become a member, with a join token.
type JoinRequest struct {
	// Token is the join token, as 'slipway admin join-token' shows it.
	Token string `json:"token"`
	// Name is the joining node's name, unique in the cluster.
	Name string `json:"name"`
	// PeerURL is where the joining node takes peer traffic.
	PeerURL string `json:"peer_url"`
	// CSR is a PEM certificate request for the node's key.
	CSR string `json:"csr"`
}

// JoinResponse admits a node: the CA, its certificate, and the members
// its etcd member starts with.
type JoinResponse struct {
	CACert   string       `json:"ca_cert"`
	Cert     string       `json:"cert"`
	MemberID string       `json:"member_id"`
	Members  []JoinMember `json:"members"`
}

// JoinMember is a member in a JoinResponse.
type JoinMember struct {
	Name     string   `json:"name"`
	PeerURLs []string `json:"peer_urls"`
}

// token is a join token: an id to find its record by, a secret, and the
// fingerprint of the cluster CA, which the joining node checks the CA it
// is sent against (the API may be plain HTTP).
type token struct{ id, secret, fingerprint string }

func (t token) String() string { return t.id + "." + t.secret + "." + t.fingerprint }

func parseToken(s string) (token, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 || len(parts[0]) != 16 || len(parts[1]) != 64 || len(parts[2]) != 64 {
		return token{}, ErrBadToken
	}
	for _, p := range parts {
		if _, err := hex.DecodeString(p); err != nil {
			return token{}, ErrBadToken
		}
	}
	return token{parts[0], parts[1], parts[2]}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// ValidateName checks a node name: a DNS label, as app names are.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > 63 {
		return fmt.Errorf("%w: node name %q: want 1 to 63 characters", ErrBadJoin, name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0 && i < len(name)-1
		if !ok {
			return fmt.Errorf("%w: node name %q: want lowercase letters, digits and inner hyphens, like node-2", ErrBadJoin, name)
		}
	}
	return nil
}

// checkPeerURL checks a peer URL: https://HOST:PORT and nothing else.
func checkPeerURL(s string) (host string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Path != "" || u.User != nil || u.RawQuery != "" {
		return "", fmt.Errorf("%w: peer URL %q: want https://HOST:PORT", ErrBadJoin, s)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", fmt.Errorf("%w: peer URL %q: want https://HOST:PORT", ErrBadJoin, s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%w: peer URL %q: bad port", ErrBadJoin, s)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return "", fmt.Errorf("%w: peer URL %q: an unspecified address cannot be reached; give the node's address", ErrBadJoin, s)
	}
	return host, nil
}

// join asks the node at apiURL to admit this one, and writes what it
// answers: the CA, the node's key and certificate, and the state with
// the members to start with.
func join(ctx context.Context, f TLSFiles, apiURL, tok, name, peerURL string) (state, error) {
	t, err := parseToken(tok)
	if err != nil {
		return state{}, err
	}
	keyPEM, csrPEM, err := newKeyAndCSR(name)
	if err != nil {
		return state{}, err
	}
	body, _ := json.Marshal(JoinRequest{Token: tok, Name: name, PeerURL: peerURL, CSR: string(csrPEM)})
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(apiURL, "/")+"/api/v1/cluster/join", bytes.NewReader(body))
	if err != nil {
		return state{}, fmt.Errorf("--join %q: %w", apiURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return state{}, fmt.Errorf("--join: asking %s to admit this node: %w", apiURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return state{}, fmt.Errorf("--join: reading the answer of %s: %w", apiURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		return state{}, fmt.Errorf("--join: %s refused this node (%s): %s", apiURL, resp.Status, e.Error)
	}
	var jr JoinResponse
	if err := json.Unmarshal(b, &jr); err != nil {
		return state{}, fmt.Errorf("--join: the answer of %s: %w", apiURL, err)
	}
	if err := checkAdmission(jr, t, f, keyPEM); err != nil {
		return state{}, err
	}
	return stateOf(name, peerURL, jr), nil
}

// checkAdmission checks that the CA is the one the token names and that
// the certificate is the node's, signed by it; then writes them.
func checkAdmission(jr JoinResponse, t token, f TLSFiles, keyPEM []byte) error {
	ca, err := parseCert([]byte(jr.CACert))
	if err != nil {
		return fmt.Errorf("--join: the CA sent: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(Fingerprint(ca.Raw)), []byte(t.fingerprint)) != 1 {
		return fmt.Errorf("--join: %w: the node answered with a CA other than the one the token names (is the URL right?)", ErrBadCertificate)
	}
	cert, err := parseCert([]byte(jr.Cert))
	if err != nil {
		return fmt.Errorf("--join: the certificate sent: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("--join: %w: the certificate sent is not the CA's: %v", ErrBadCertificate, err)
	}
	if err := os.MkdirAll(f.dir(), 0o700); err != nil {
		return err
	}
	for _, w := range []struct {
		path string
		b    []byte
	}{{f.Key, keyPEM}, {f.Cert, []byte(jr.Cert)}, {f.CA, []byte(jr.CACert)}} {
		if err := writeFile(w.path, w.b); err != nil {
			return err
		}
	}
	return nil
}

// admit checks a join request and admits the node: a certificate signed
// by the CA, and a place in etcd's membership as a learner.
func (c *Cluster) admit(ctx context.Context, req JoinRequest) (JoinResponse, error) {
	t, err := parseToken(req.Token)
	if err != nil {
		return JoinResponse{}, err
	}
	rec, err := c.st.JoinToken(ctx, t.id)
	if errors.Is(err, store.ErrNotFound) || err == nil && (subtle.ConstantTimeCompare([]byte(rec.Hash), []byte(hashSecret(t.secret))) != 1 || time.Now().After(rec.Expires)) {
		return JoinResponse{}, ErrBadToken
	}
	if err != nil {
		return JoinResponse{}, err
	}
	if err := ValidateName(req.Name); err != nil {
		return JoinResponse{}, err
	}
	host, err := checkPeerURL(req.PeerURL)
	if err != nil {
		return JoinResponse{}, err
	}
	if len(req.CSR) > maxCSRBytes {
		return JoinResponse{}, fmt.Errorf("%w: the certificate request is over %d bytes", ErrBadJoin, maxCSRBytes)
	}
	if err := c.checkFree(ctx, req.Name, req.PeerURL); err != nil {
		return JoinResponse{}, err
	}
	ca, err := c.ca(ctx)
	if err != nil {
		return JoinResponse{}, err
	}
	if ca.Fingerprint() != t.fingerprint {
		return JoinResponse{}, ErrBadToken
	}
	cert, err := ca.Sign([]byte(req.CSR), req.Name, host)
	if err != nil {
		return JoinResponse{}, err
	}
	id, members, err := c.st.AddLearner(ctx, req.PeerURL)
	if err != nil {
		return JoinResponse{}, err
	}
	c.log.Info("cluster: admitted a node as a learner; it votes once it has caught up", "node", req.Name, "peer_url", req.PeerURL)
	jr := JoinResponse{CACert: string(ca.CertPEM), Cert: string(cert), MemberID: strconv.FormatUint(id, 16)}
	for _, m := range members {
		name := m.Name
		if m.ID == id {
			name = req.Name
		}
		if name == "" { // another node admitted and not started: it is not in the initial cluster
			continue
		}
		jr.Members = append(jr.Members, JoinMember{Name: name, PeerURLs: m.PeerURLs})
	}
	return jr, nil
}

// checkFree refuses a name or a peer URL that a member or a node has.
func (c *Cluster) checkFree(ctx context.Context, name, peerURL string) error {
	ms, err := c.st.Members(ctx)
	if err != nil {
		return err
	}
	nodes, err := c.st.Nodes(ctx)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if n.Name == name {
			return fmt.Errorf("%w: node %s is in the cluster; give this one another --node-name, or remove the old one with 'slipway nodes remove %s' if it is gone", ErrNameTaken, name, name)
		}
	}
	for _, m := range ms {
		if m.Name == name || c.memberNode(m) == name {
			return fmt.Errorf("%w: a member named %s is in the cluster; give this one another --node-name, or remove the old one with 'slipway nodes remove %s' if it is gone", ErrNameTaken, name, name)
		}
		for _, u := range m.PeerURLs {
			if u == peerURL {
				return fmt.Errorf("%w: a member has the peer URL %s; a node that rejoins is removed first with 'slipway nodes remove'", ErrNameTaken, peerURL)
			}
		}
	}
	return nil
}
