package web

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/store"
)

// toCoordinator is a node's cluster whose coordinator is another node:
// it hands every change to that node's dashboard as the peer link does
// (cluster.PeerRequest). The peer link itself (mutual TLS between two
// daemons) is the e2e cluster tests'; here both dashboards share one API.
type toCoordinator struct {
	coord   http.Handler
	reached atomic.Int32
	isCoord bool
}

func (c *toCoordinator) Forward(w http.ResponseWriter, r *http.Request) (bool, error) {
	if c.isCoord {
		return false, nil
	}
	c.reached.Add(1)
	c.coord.ServeHTTP(w, cluster.PeerRequest(r))
	return true, nil
}

func (c *toCoordinator) CheckQuorum() error { return nil }

// TestChangesGoToTheCoordinator: on a node that does not coordinate, a
// change made in the dashboard is carried out by the coordinator's
// dashboard, for the session signed in here, whose note for the next page
// comes back here; its CSRF token is checked (an upload's by the
// coordinator, against this session's); and the coordinator believes the
// session headers from a peer only.
func TestChangesGoToTheCoordinator(t *testing.T) {
	d := newTestDash(t)
	logger := slog.New(slog.DiscardHandler)
	coord := New(Options{API: d.srv, Deploys: d.mgr, Cluster: &toCoordinator{isCoord: true}, Logger: logger})
	coordSrv := httptest.NewServer(coord)
	t.Cleanup(coordSrv.Close)
	link := &toCoordinator{coord: coord}
	here := httptest.NewServer(New(Options{API: d.srv, Deploys: d.mgr, Cluster: link, Logger: logger}))
	t.Cleanup(here.Close)
	d.url = here.URL

	c := d.client()
	c.signin(d.admin)
	code, loc, body := c.post("/apps", c.form("name", "fwd"))
	if code != http.StatusSeeOther || loc != "/apps/fwd" {
		t.Fatalf("creating an app: %d to %q:\n%s", code, loc, body)
	}
	if link.reached.Load() != 1 {
		t.Errorf("the change reached the coordinator %d times, want 1", link.reached.Load())
	}
	if _, err := d.st.App(t.Context(), "fwd"); err != nil {
		t.Fatalf("the coordinator did not create the app: %v", err)
	}
	if _, _, page := c.get("/apps/fwd"); !strings.Contains(page, "App fwd created.") {
		t.Errorf("the coordinator's note is not shown by the session here:\n%s", page)
	}

	// A form without the session's token stops here.
	if code, _, _ := c.post("/apps", url.Values{"name": {"evil"}, "csrf": {"wrong"}}); code != http.StatusForbidden {
		t.Errorf("a form with a wrong CSRF token: %d, want 403", code)
	}
	if link.reached.Load() != 1 {
		t.Errorf("a refused form reached the coordinator")
	}
	// An upload's token is read by the coordinator, which checks it
	// against the session here: a wrong one is refused there, the right
	// one passes (and the file, not an archive, is refused then).
	for _, tc := range []struct {
		csrf string
		want int
	}{{"wrong", http.StatusForbidden}, {c.csrf, http.StatusBadRequest}} {
		form := "--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n" + tc.csrf + "\r\n" +
			"--x\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nfrom another node\r\n" +
			"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.zip\"\r\n\r\nnot a zip\r\n--x--\r\n"
		req, _ := http.NewRequest(http.MethodPost, here.URL+"/apps/fwd/deploy", strings.NewReader(form))
		req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("an upload with csrf %q: %d, want %d", tc.csrf, resp.StatusCode, tc.want)
		}
		if tc.want == http.StatusForbidden {
			if deps, _ := d.st.Deployments(t.Context(), "fwd"); len(deps) != 0 {
				t.Errorf("an upload with a wrong token made %d deployments", len(deps))
			}
		}
	}

	// The session headers from anyone but a peer are not believed: a
	// change sent straight to the coordinator with them is sent to sign
	// in.
	req, _ := http.NewRequest(http.MethodPost, coordSrv.URL+"/apps", strings.NewReader("name=evil&csrf=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(peerPrincipalHeader, "eyJjcmVkZW50aWFsIjoiIiwiYWRtaW4iOnRydWV9") // {"credential":"","admin":true}
	req.Header.Set(peerCSRFHeader, "x")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
		t.Errorf("forged session headers at the coordinator: %d to %q, want 303 to /signin", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := d.st.App(t.Context(), "evil"); err == nil {
		t.Errorf("forged session headers created an app")
	}
}

// TestPeerPrincipalIsTheCredentials: the principal a peer forwards is
// believed only as far as its credential's record says: an app's deploy
// credential said to be the admin's (a peer's mistake, or a forged header
// on the peer link) is refused at the coordinator, not made an admin.
func TestPeerPrincipalIsTheCredentials(t *testing.T) {
	d := newTestDash(t)
	d.createApp(store.App{Name: "shop"})
	id, _ := d.credential("shop")
	cred, err := d.st.Credential(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	coord := New(Options{API: d.srv, Deploys: d.mgr, Cluster: &toCoordinator{isCoord: true}, Logger: slog.New(slog.DiscardHandler)})
	p, _ := json.Marshal(api.Principal{Credential: id, App: "shop", Admin: true})
	req := httptest.NewRequest(http.MethodPost, "/apps", strings.NewReader("name=widened&csrf=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(peerPrincipalHeader, base64.RawURLEncoding.EncodeToString(p))
	req.Header.Set(peerGenHeader, cred.Hash)
	req.Header.Set(peerCSRFHeader, "x")
	w := httptest.NewRecorder()
	coord.ServeHTTP(w, cluster.PeerRequest(req))
	if _, err := d.st.App(t.Context(), "widened"); err == nil {
		t.Errorf("a deploy credential forwarded as the admin created an app (%d)", w.Code)
	}
}
