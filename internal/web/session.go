package web

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
)

// sessionCookie names the cookie that holds a session's id.
const sessionCookie = "slipway_session"

// maxSessions bounds the session table; past it, the session that ends
// soonest goes first, so a flood of sign-ins cannot take the daemon's
// memory.
const maxSessions = 10000

// maxSessionsPerToken bounds the sessions of one token; past it, that
// token's session that ends soonest goes. Without it, one deploy
// credential signing in maxSessions times would push every other
// session, the admin's too, out of the table.
const maxSessionsPerToken = 50

// session is one signed-in browser. It records whose token signed in and
// the token's generation (api.Server.Authenticate), so that a credential
// revoked, or an admin token rotated, ends it at its next request.
type session struct {
	id      string
	p       api.Principal
	gen     string
	csrf    string // the token every form of the session carries
	expires time.Time
	flash   string // a note for the next page, shown once
	// peer marks the session of a change another node forwarded (see
	// peerSession): it is in no table here.
	peer bool
}

// author is who the session's changes are recorded as.
func (s *session) author() string {
	if s.p.Admin {
		return "admin (dashboard)"
	}
	return "credential " + s.p.Credential + " (dashboard)"
}

// sessions is the server-side session table, in memory: a daemon that
// restarts signs everyone out.
type sessions struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex // guards m and the sessions' flash
	m   map[string]*session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, m: make(map[string]*session)}
}

// randomID is 32 random bytes, URL-safe: a session id or a CSRF token.
func randomID() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for p, whose token has generation gen.
func (ss *sessions) create(p api.Principal, gen string) *session {
	s := &session{id: randomID(), p: p, gen: gen, csrf: randomID(), expires: ss.now().Add(ss.ttl)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.pruneLocked(p.Credential)
	ss.m[s.id] = s
	return s
}

// pruneLocked drops ended sessions; at maxSessionsPerToken sessions of
// credential, the one of them that ends soonest; and at maxSessions, the
// one that ends soonest of all. Call with ss.mu held.
func (ss *sessions) pruneLocked(credential string) {
	now := ss.now()
	var soonest, soonestOwn *session
	own := 0
	for id, s := range ss.m {
		if now.After(s.expires) {
			delete(ss.m, id)
			continue
		}
		if soonest == nil || s.expires.Before(soonest.expires) {
			soonest = s
		}
		if s.p.Credential == credential {
			own++
			if soonestOwn == nil || s.expires.Before(soonestOwn.expires) {
				soonestOwn = s
			}
		}
	}
	switch {
	case own >= maxSessionsPerToken:
		delete(ss.m, soonestOwn.id)
	case len(ss.m) >= maxSessions && soonest != nil:
		delete(ss.m, soonest.id)
	}
}

// get returns the request's session; nil when it has none, or it ended.
func (ss *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[c.Value]
	if s == nil || ss.now().After(s.expires) {
		delete(ss.m, c.Value)
		return nil
	}
	return s
}

// end ends a session.
func (ss *sessions) end(s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, s.id)
}

// setFlash leaves a note for the session's next page.
func (ss *sessions) setFlash(s *session, msg string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.flash = msg
}

// takeFlash returns the session's note, once.
func (ss *sessions) takeFlash(s *session) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	msg := s.flash
	s.flash = ""
	return msg
}

// cookie is the session cookie for s: not for scripts (HttpOnly), never
// sent by another site's page (SameSite=Strict), only over TLS where the
// dashboard is served so, and gone when the session ends.
func (d *Dashboard) cookie(r *http.Request, value string, expires time.Time) *http.Cookie {
	c := &http.Cookie{Name: sessionCookie, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: d.opts.Secure || r.TLS != nil, Expires: expires}
	if value == "" {
		c.MaxAge = -1
	}
	return c
}
