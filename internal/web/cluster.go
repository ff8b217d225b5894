package web

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/cluster"
)

// Cluster is the node's part in its cluster, as the dashboard sees it:
// on a node of a cluster, the coordinator carries out every change, as
// it does for the API.
type Cluster interface {
	// Forward carries a request to the coordinator, unless this node is
	// the coordinator (false: the request is this node's to handle).
	Forward(w http.ResponseWriter, r *http.Request) (bool, error)
	// CheckQuorum fails on a node cut off from its cluster's majority.
	CheckQuorum() error
}

// The headers a forwarded change carries to the coordinator's dashboard:
// the session's principal, its token's generation and its CSRF token.
// Sessions live in the memory of the node the browser signed in at, so
// the coordinator knows none: it believes these headers from a peer (over
// the peer link's mutual TLS) only, checks the principal again as the
// API would, and checks the form's CSRF token against the session's. Its
// note for the next page comes back in peerFlashHeader.
const (
	peerPrincipalHeader = "X-Slipway-Session-Principal"
	peerGenHeader       = "X-Slipway-Session-Gen"
	peerCSRFHeader      = "X-Slipway-Session-Csrf"
	peerFlashHeader     = "X-Slipway-Session-Flash"
)

// forward carries a change of session s to the coordinator when this
// node is not it, and reports whether it did (then the answer is
// written). A form the CSRF check has read is sent on as it was read.
func (d *Dashboard) forward(w http.ResponseWriter, r *http.Request, s *session) bool {
	if d.opts.Cluster == nil {
		return false
	}
	if err := d.opts.Cluster.CheckQuorum(); err != nil {
		d.fail(w, r, s, err)
		return true
	}
	if r.PostForm != nil {
		body := r.PostForm.Encode()
		r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	p, _ := json.Marshal(s.p)
	r.Header.Set(peerPrincipalHeader, base64.RawURLEncoding.EncodeToString(p))
	r.Header.Set(peerGenHeader, s.gen)
	r.Header.Set(peerCSRFHeader, s.csrf)
	fw := &flashFromPeer{ResponseWriter: w, d: d, s: s}
	forwarded, err := d.opts.Cluster.Forward(fw, r)
	if forwarded && err != nil && !fw.wrote {
		d.fail(w, r, s, err)
	}
	return forwarded
}

// peerSession is the session a peer forwarded a change of (see
// forward); nil for any other request, whatever its headers say.
func (d *Dashboard) peerSession(r *http.Request) *session {
	if d.opts.Cluster == nil || !cluster.FromPeer(r) {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(r.Header.Get(peerPrincipalHeader))
	if err != nil || len(b) == 0 {
		return nil
	}
	var p api.Principal
	if json.Unmarshal(b, &p) != nil {
		return nil
	}
	return &session{p: p, gen: r.Header.Get(peerGenHeader), csrf: r.Header.Get(peerCSRFHeader), peer: true}
}

// flashToPeer sends a forwarded change's note for the next page back to
// the node that forwarded it, whose session shows it.
type flashToPeer struct {
	http.ResponseWriter
	d     *Dashboard
	s     *session
	wrote bool
}

func (f *flashToPeer) WriteHeader(code int) {
	if f.wrote {
		return
	}
	f.wrote = true
	if msg := f.d.sessions.takeFlash(f.s); msg != "" {
		f.Header().Set(peerFlashHeader, url.QueryEscape(msg))
	}
	f.ResponseWriter.WriteHeader(code)
}

func (f *flashToPeer) Write(b []byte) (int, error) {
	f.WriteHeader(http.StatusOK)
	return f.ResponseWriter.Write(b)
}

func (f *flashToPeer) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// flashFromPeer keeps the coordinator's note in the session here.
type flashFromPeer struct {
	http.ResponseWriter
	d     *Dashboard
	s     *session
	wrote bool
}

func (f *flashFromPeer) WriteHeader(code int) {
	if f.wrote {
		return
	}
	f.wrote = true
	if msg, err := url.QueryUnescape(f.Header().Get(peerFlashHeader)); err == nil && msg != "" {
		f.d.sessions.setFlash(f.s, msg)
	}
	f.Header().Del(peerFlashHeader)
	f.ResponseWriter.WriteHeader(code)
}

func (f *flashFromPeer) Write(b []byte) (int, error) {
	f.WriteHeader(http.StatusOK)
	return f.ResponseWriter.Write(b)
}

func (f *flashFromPeer) Unwrap() http.ResponseWriter { return f.ResponseWriter }
