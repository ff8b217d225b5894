package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
)

// node starts a cluster node: its own data directory, ports and peer
// port on 127.0.0.1, named name. With join, it joins the cluster of the
// node whose API is at join.apiURL, with a token made there.
func startNode(t *testing.T, name string, join *daemon, extra ...string) *daemon {
	t.Helper()
	return startNodeWith(t, &daemon{}, name, join, extra...)
}

// startNodeWith is startNode for a daemon with its host or wrapper set.
func startNodeWith(t *testing.T, d *daemon, name string, join *daemon, extra ...string) *daemon {
	t.Helper()
	args := append([]string{"--node-name", name, "--peer-port", strconv.Itoa(freePort(t))}, extra...)
	d.t, d.dataDir = t, filepath.Join(passableTempDir(t), "data")
	if join != nil {
		d.joined, d.token = true, join.token
		args = append(args, "--join", join.apiURL, "--join-token", joinToken(t, join))
	}
	return launchWith(t, d, nil, args...)
}

// joinToken makes a join token at d, with the CLI.
func joinToken(t *testing.T, d *daemon) string {
	t.Helper()
	var tok api.JoinToken
	if err := json.Unmarshal([]byte(d.mustCLI("admin", "join-token", "-o", "json")), &tok); err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

func nodes(t *testing.T, d *daemon) map[string]api.Node {
	t.Helper()
	var ns []api.Node
	d.getJSON("/api/v1/nodes", &ns)
	out := make(map[string]api.Node)
	for _, n := range ns {
		out[n.Name] = n
	}
	return out
}

// waitNodeState waits until d lists node name in state.
func waitNodeState(t *testing.T, d *daemon, name, state string) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("node %s to be %s", name, state), func() bool {
		return nodes(t, d)[name].State == state
	})
}

// TestClusterForm forms a cluster of three nodes with --join (the second
// joins the first, the third the second), checks that they share one
// state and one admin token, that a node without the cluster CA can
// neither join nor reach the peer link, that a node restarts into its
// cluster, and that a dead node is removed while the others go on.
func TestClusterForm(t *testing.T) {
	start := time.Now()
	a := startNode(t, "a", nil)
	b := startNode(t, "b", a)
	c := startNode(t, "c", b, "--label", "zone=west")
	t.Logf("three nodes formed a cluster in %s", time.Since(start).Round(100*time.Millisecond))

	for _, d := range []*daemon{a, b, c} {
		for _, name := range []string{"a", "b", "c"} {
			waitNodeState(t, d, name, "ready")
		}
	}
	if got := nodes(t, a)["c"].Labels["zone"]; got != "west" {
		t.Errorf("node c's label zone = %q, want west", got)
	}
	out := c.mustCLI("nodes")
	for _, want := range []string{"NAME", "a ", "b ", "c (this one)", "zone=west", "ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("slipway nodes at c: no %q in\n%s", want, out)
		}
	}
	// One state: an app made at one node is seen at the others, with the
	// first node's admin token.
	a.mustCLI("apps", "create", "shared")
	if got := c.mustCLI("apps", "list"); !strings.Contains(got, "shared") {
		t.Errorf("the app made at a is not listed at c:\n%s", got)
	}

	t.Run("dashboard at a node that does not coordinate", func(t *testing.T) {
		var at *daemon
		for _, d := range []*daemon{a, b, c} {
			name := map[*daemon]string{a: "a", b: "b", c: "c"}[d]
			if n := nodes(t, a)[name]; !n.Coordinator {
				at = d
				break
			}
		}
		// Signed in here, the session lives here; the form goes to the
		// coordinator over the peer link, and its note comes back.
		br := newFormClient(t, at.apiURL)
		br.signin(a.token)
		if code, loc := br.post("/apps", url.Values{"name": {"dashed"}}); code != http.StatusSeeOther || loc != "/apps/dashed" {
			t.Fatalf("creating an app in the dashboard: %d to %q", code, loc)
		}
		if page := br.get("/apps/dashed"); !strings.Contains(page, "App dashed created.") {
			t.Errorf("the coordinator's note is not shown:\n%s", page)
		}
		if got := a.mustCLI("apps", "list"); !strings.Contains(got, "dashed") {
			t.Errorf("the app made in the dashboard at another node is not listed at a:\n%s", got)
		}
	})

	t.Run("no CA, no entry", func(t *testing.T) {
		// A join token with a wrong secret: the node is refused, says why,
		// and exits.
		tok := joinToken(t, a)
		parts := strings.Split(tok, ".")
		parts[1] = strings.Repeat("0", len(parts[1]))
		out, err := a.cli("server", "--data-dir", filepath.Join(passableTempDir(t), "data"), "--node-name", "evil",
			"--api-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--http-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			"--peer-port", strconv.Itoa(freePort(t)), "--join", a.apiURL, "--join-token", strings.Join(parts, "."))
		if err == nil || !strings.Contains(out, "join token is not valid") {
			t.Errorf("a join with a wrong token: err %v, want a refusal that says the token is not valid; output:\n%s", err, out)
		}
		if _, ok := nodes(t, a)["evil"]; ok {
			t.Errorf("the refused node is listed")
		}
		// The peer link takes no client without a certificate of the
		// cluster CA: etcd's member list cannot be read.
		peer := nodes(t, a)["a"].PeerURL
		for name, cfg := range map[string]*tls.Config{
			"no certificate": {InsecureSkipVerify: true},
			"another CA's":   {InsecureSkipVerify: true, Certificates: []tls.Certificate{otherCACert(t)}},
		} {
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
			resp, err := client.Get(peer + "/members")
			if err == nil {
				resp.Body.Close()
				t.Errorf("%s: GET %s/members answered %s, want a refused handshake", name, peer, resp.Status)
			}
		}
	})

	t.Run("restart", func(t *testing.T) {
		b.stop()
		waitNodeState(t, a, "b", "down")
		b.start()
		waitNodeState(t, a, "b", "ready")
		if got := b.mustCLI("apps", "list"); !strings.Contains(got, "shared") {
			t.Errorf("after its restart, b does not list the app:\n%s", got)
		}
	})

	t.Run("remove a dead node", func(t *testing.T) {
		if out, err := a.cli("nodes", "remove", "c"); err == nil || !strings.Contains(out, "stop it first") {
			t.Errorf("removing a live node: err %v, want a refusal; output:\n%s", err, out)
		}
		c.kill()
		waitNodeState(t, a, "c", "down")
		a.mustCLI("nodes", "remove", "c")
		if _, ok := nodes(t, b)["c"]; ok {
			t.Errorf("node c is still listed after its removal")
		}
		// Two of two members: the cluster still takes changes.
		b.mustCLI("apps", "create", "after")
		if got := a.mustCLI("apps", "list"); !strings.Contains(got, "after") {
			t.Errorf("the app made at b after c's removal is not listed at a:\n%s", got)
		}
	})
}

// formClient is a browser of the dashboard without JavaScript: it keeps
// its cookies and the last page's CSRF token, and follows no redirect.
type formClient struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([A-Za-z0-9_-]+)"`)

func newFormClient(t *testing.T, base string) *formClient {
	jar, _ := cookiejar.New(nil)
	return &formClient{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *formClient) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp, string(b)
}

func (c *formClient) get(path string) string {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	_, body := c.do(req)
	return body
}

// post sends form with the CSRF token, and returns the status and the
// Location.
func (c *formClient) post(path string, form url.Values) (int, string) {
	c.t.Helper()
	form.Set("csrf", c.csrf)
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, _ := c.do(req)
	return resp.StatusCode, resp.Header.Get("Location")
}

func (c *formClient) signin(token string) {
	c.t.Helper()
	c.get("/signin")
	if code, loc := c.post("/signin", url.Values{"token": {token}, "next": {"/"}}); code != http.StatusSeeOther || loc != "/" {
		c.t.Fatalf("signing in: %d to %q", code, loc)
	}
	c.get("/") // the session's CSRF token
}

// otherCACert is a client certificate of a CA that is not the cluster's:
// a self-signed one.
func otherCACert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "evil"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// waitVersion waits until every node's router answers app with version.
func waitVersion(t *testing.T, app string, version int, nodes ...*daemon) {
	t.Helper()
	want := fmt.Sprintf("version=%d ", version)
	for _, d := range nodes {
		waitFor(t, 60*time.Second, fmt.Sprintf("%s at %s to answer %s", app, d.httpURL, want), func() bool {
			code, body, err := d.get(context.Background(), http.DefaultClient, app, "/")
			return err == nil && code == 200 && strings.HasPrefix(body, want)
		})
	}
}
