package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/slipway-dev/slipway/internal/cluster"
	"net/http"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/access"
	"github.com/slipway-dev/slipway/internal/atomicfile"
	"github.com/slipway-dev/slipway/internal/safego"
	"github.com/slipway-dev/slipway/internal/store"
)

// tokenPrefix starts every token, so that a leaked one is easy to find
// (in a repository, a log) and to tell from other secrets.
const tokenPrefix = "slw_"

// NewToken makes a token for the credential id: tokenPrefix, the id, "_",
// and 32 random bytes. It returns the token, shown once, and the hash the
// store keeps.
func NewToken(id string) (token, hash string) {
	secret := make([]byte, 32)
	rand.Read(secret) // never fails (crypto/rand)
	token = tokenPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(secret)
	return token, HashToken(token)
}

// HashToken is the hex SHA-256 of a token. Tokens are 256 random bits, so
// a plain hash is enough: there is nothing to guess.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// tokenID returns the credential id inside a token.
func tokenID(token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, "_")
	return id, ok && id != ""
}

// scope is who may call a route.
type scope int

const (
	// scopePublic needs no token: the liveness check only.
	scopePublic scope = iota
	// scopeAny takes any valid token.
	scopeAny
	// scopeApp takes the admin token, or a credential of the app the path
	// names.
	scopeApp
	// scopeDeploy is scopeApp, for the app's deploy endpoints: the app's
	// deploy access rules apply too.
	scopeDeploy
	// scopeAdmin takes the admin token only.
	scopeAdmin
)

// Principal is who a request's token belongs to.
type Principal struct {
	Credential string `json:"credential"`
	// App is the one app the token may touch; empty for the admin token.
	App   string `json:"app,omitempty"`
	Admin bool   `json:"admin"`
}

type principalKey struct{}

// route registers h at pattern for callers of scope sc. The checks go in
// an order that tells a caller only what it may know: the token (401, the
// same whatever the path names), then what the credential may touch (403,
// the same for an app that exists and one that does not), then the app's
// deploy access rules, and only then the handler, which may say that the
// app does not exist. Checking the rules first would tell an anonymous
// caller which apps exist and which are guarded.
func (s *Server) route(pattern string, sc scope, h handler) {
	s.mux.HandleFunc(pattern, s.adapt(s.guard(sc, h), writeJSONError))
}

// guard runs the checks of scope sc (see route) before h.
func (s *Server) guard(sc scope, h handler) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if sc == scopePublic {
			return h(w, r)
		}
		if err := crossOrigin.Check(r); err != nil {
			return errCrossSite
		}
		p, gen, err := s.authenticate(r)
		if err != nil {
			return err
		}
		if err := s.authorize(r, p, sc, r.PathValue("app")); err != nil {
			return err
		}
		if s.opts.Cluster != nil && changes(r) {
			// A node cut off from the majority says so at once, rather
			// than after its store's timeout.
			if err := s.opts.Cluster.CheckQuorum(); err != nil {
				return err
			}
			// The coordinator carries out every change.
			if forwarded, err := s.opts.Cluster.Forward(w, r); forwarded {
				return err
			}
		}
		ctx, cancel := s.WhileValid(r.Context(), p, gen)
		defer cancel()
		return h(w, r.WithContext(context.WithValue(ctx, principalKey{}, p)))
	}
}

// changes reports whether r asks to change an app, through the API or
// the SCM site: those requests go to the coordinator. A node's own
// matters (its tokens, upgrades, backups, join tokens) stay with it.
func changes(r *http.Request) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead &&
		(strings.HasPrefix(r.URL.Path, "/api/v1/apps") || strings.HasPrefix(r.URL.Path, "/scm/"))
}

// crossOrigin refuses a change (POST, PUT, PATCH, DELETE) that a browser
// sends from a page of another origin, as its Sec-Fetch-Site or Origin
// header says. A browser keeps the basic credentials it was asked for
// (the API's 401 offers basic auth, as App Service clients need) and
// sends them along with any site's form post, whose text/plain body can
// be JSON: without this check, any page an operator visits could create
// apps, change settings or rotate the admin token. Pipelines and the CLI
// send neither header and pass.
var crossOrigin = http.NewCrossOriginProtection()

var errCrossSite = errorf(http.StatusForbidden,
	"this request came from a page of another site, through a browser: it was refused, whatever its credentials; call the API from a pipeline, the CLI or curl, or use the dashboard")

var errNoToken = errorf(http.StatusUnauthorized,
	"this API needs a token: run 'slipway login', set SLIPWAY_TOKEN, or send 'Authorization: Bearer TOKEN'; the admin token is in admin.token in the server's data directory")

// authenticate finds the credential of the request's token, given as a
// bearer token or as the password of basic auth (the user is not
// checked: pipelines send "$APPNAME" or anything else).
func (s *Server) authenticate(r *http.Request) (Principal, string, error) {
	var token string
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		token = h[7:]
	} else {
		_, token, _ = r.BasicAuth()
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return Principal{}, "", errNoToken
	}
	return s.Authenticate(r.Context(), token)
}

// errBadToken answers a token that is no credential's.
var errBadToken = errorf(http.StatusUnauthorized, "the token is not valid: it is mistyped, or was revoked; ask for a new one")

// Authenticate finds the credential of a token, as every API request's
// token is checked. It returns who the token belongs to, and the token's
// generation: the hash the store keeps of it, which changes when the
// token is replaced (the admin token rotated) and is gone when the
// credential is revoked (see Recheck).
func (s *Server) Authenticate(ctx context.Context, token string) (Principal, string, error) {
	id, ok := tokenID(token)
	if !ok {
		return Principal{}, "", errBadToken
	}
	c, err := s.opts.Store.Credential(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, "", errBadToken
	}
	if err != nil {
		return Principal{}, "", err
	}
	if subtle.ConstantTimeCompare([]byte(HashToken(token)), []byte(c.Hash)) != 1 {
		return Principal{}, "", errBadToken
	}
	return Principal{Credential: c.ID, App: c.App, Admin: c.App == ""}, c.Hash, nil
}

// Recheck says whether p's token is still the one Authenticate accepted
// with generation gen: a credential revoked since, or an admin token
// rotated since, fails with the API's 401 for a token that is not valid.
// p must be what Authenticate made of the credential, its app and its
// being the admin's both: a principal that comes from elsewhere (a
// change a peer forwards) is believed only as far as the credential's
// record goes.
func (s *Server) Recheck(ctx context.Context, p Principal, gen string) error {
	c, err := s.opts.Store.Credential(ctx, p.Credential)
	if errors.Is(err, store.ErrNotFound) {
		return errBadToken
	}
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(c.Hash), []byte(gen)) != 1 || c.App != p.App || p.Admin != (c.App == "") {
		return errBadToken
	}
	return nil
}

// RecheckEvery is how often a request still running checks its token
// again (see WhileValid).
const RecheckEvery = 2 * time.Second

// WhileValid returns ctx, ended as well once p's token fails Recheck with
// generation gen, and its cancel, to call when the request ends. A
// request that lasts — a log stream, a dashboard's live part, an upload —
// runs in it, so that it ends within RecheckEvery of its credential being
// revoked or the admin token rotated, rather than serving a stranger for
// as long as it stays open. A store that fails to answer ends nothing.
func (s *Server) WhileValid(ctx context.Context, p Principal, gen string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	safego.Go(s.logger, "rechecking a request's token", func() {
		tick := time.NewTicker(RecheckEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if err := s.Recheck(ctx, p, gen); err == errBadToken {
				cancel()
				return
			}
		}
	})
	return ctx, cancel
}

// authorize is the decision for a caller p of a route of scope sc about
// app, after its token was found (see route): what p may touch, then, for
// a deploy endpoint, the app's deploy access rules for r's client.
func (s *Server) authorize(r *http.Request, p Principal, sc scope, app string) error {
	if err := p.may(sc, app); err != nil {
		return err
	}
	// A request forwarded by a peer had its client's address checked at
	// the node it reached first.
	if sc == scopeDeploy && !cluster.FromPeer(r) {
		return s.checkDeployAccess(r, app)
	}
	return nil
}

// may says whether p may call a route of scope sc about app.
func (p Principal) may(sc scope, app string) error {
	switch {
	case p.Admin || sc == scopeAny:
		return nil
	case (sc == scopeApp || sc == scopeDeploy) && app == p.App:
		return nil
	case sc == scopeAdmin:
		return errorf(http.StatusForbidden, "this token may only deploy, and read the status and logs of, app %s; this needs the admin token", p.App)
	default:
		return errorf(http.StatusForbidden, "this token belongs to app %s and may not touch app %s", p.App, app)
	}
}

// checkDeployAccess applies the app's deploy access rules to the client.
// The client is the connection's peer unless that is a trusted proxy (see
// access.ClientIP); headers such as X-Real-IP are never read.
func (s *Server) checkDeployAccess(r *http.Request, app string) error {
	p, err := s.opts.Store.Policy(r.Context(), app)
	if err != nil {
		return err
	}
	client := access.ClientIP(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), s.opts.TrustedProxies)
	if !p.Deploy.Compile().Allows(client) {
		return errorf(http.StatusForbidden, "address %s may not reach the deploy endpoints of app %s; ask an operator to allow it with 'slipway access add -a %s --scope deploy'", client, app, app)
	}
	return nil
}

// EnsureAdminToken makes the admin token on the first start and writes it
// to file: it returns the new token, to be shown once (even if writing the
// file failed), or "" when there is one already.
func EnsureAdminToken(ctx context.Context, st *store.Store, file string) (string, error) {
	token, hash := NewToken(store.AdminCredential)
	err := st.CreateCredential(ctx, store.Credential{ID: store.AdminCredential, Hash: hash, Created: now()})
	if errors.Is(err, store.ErrExists) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("creating the admin token: %w", err)
	}
	return token, writeTokenFile(file, token)
}

// AdminToken is the answer to rotating the admin token: shown this once.
type AdminToken struct {
	Token string `json:"token"`
	// File is where the daemon keeps it too, for the operator on its
	// machine; empty when it could not be written there.
	File string `json:"file,omitempty"`
}

// rotateAdminToken replaces the admin token: the old one stops working at
// once.
func (s *Server) rotateAdminToken(w http.ResponseWriter, r *http.Request) error {
	token, err := ReplaceAdminToken(r.Context(), s.opts.Store, s.opts.AdminTokenFile)
	if token == "" {
		return err
	}
	answer := AdminToken{Token: token, File: s.opts.AdminTokenFile}
	if err != nil {
		// The old token is gone already: this answer is the only place
		// left for the new one, so it is an answer, not an error.
		s.logger.Warn("the new admin token is only in the answer to its rotation", "err", err)
		answer.File = ""
	}
	writeJSON(w, http.StatusOK, answer)
	return nil
}

// ReplaceAdminToken makes a new admin token, stores its hash in place of
// the old one's, so the old token is refused from now on, and writes it
// to file (if one is set). It returns the new token, to be shown once: it
// is returned with the error when only writing the file failed, or
// nobody would have it. A store without an admin token gets one.
func ReplaceAdminToken(ctx context.Context, st *store.Store, file string) (string, error) {
	c, err := st.Credential(ctx, store.AdminCredential)
	if errors.Is(err, store.ErrNotFound) {
		c, err = store.Credential{ID: store.AdminCredential}, nil
	}
	if err != nil {
		return "", err
	}
	token, hash := NewToken(store.AdminCredential)
	c.Hash, c.Created = hash, now()
	if err := st.PutCredential(ctx, c); err != nil {
		return "", fmt.Errorf("storing the new admin token: %w", err)
	}
	if err := writeTokenFile(file, token); err != nil {
		return token, fmt.Errorf("the admin token was replaced, but not written to %s: %w", file, err)
	}
	return token, nil
}

// writeTokenFile writes token to file (if one is set), readable by its
// owner only, through a temporary file, fsync and rename.
func writeTokenFile(file, token string) error {
	if file == "" {
		return nil
	}
	return atomicfile.WriteFile(file, []byte(token+"\n"), 0o600)
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, r.Context().Value(principalKey{}))
	return nil
}
