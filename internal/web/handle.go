package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/slipway-dev/slipway/internal/api"
)

// scopeSession is any signed-in session, whatever its token may touch.
const scopeSession api.Scope = -1

// call is what a handler knows of the request it serves.
type call struct {
	s   *session
	app string // the app the path names, "" for none
}

// handler serves a request of a signed-in session; a returned error is
// shown as the API would say it (see fail).
type handler func(w http.ResponseWriter, r *http.Request, c *call) error

// pageError is an error of the dashboard's own, with its status.
type pageError struct {
	status int
	msg    string
}

func (e *pageError) Error() string { return e.msg }

func badRequest(msg string) error { return &pageError{status: http.StatusBadRequest, msg: msg} }

// handle registers h at pattern for sessions that may do what the API
// route of scope sc does. The checks go in the API's order: the session
// (its token still valid), the CSRF token of anything but a GET, then
// what the token may touch and the app's deploy access rules (see
// api.Server.Authorize).
func (d *Dashboard) handle(pattern string, sc api.Scope, h handler) {
	d.handleWith(pattern, sc, h, false)
}

// handleUpload is handle for an upload, whose handler checks the CSRF
// token of the form's first field itself, so that the file is streamed
// to disk rather than read into memory first.
func (d *Dashboard) handleUpload(pattern string, sc api.Scope, h handler) {
	d.handleWith(pattern, sc, h, true)
}

func (d *Dashboard) handleWith(pattern string, sc api.Scope, h handler, ownCSRF bool) {
	d.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s := d.peerSession(r)
		if s == nil {
			if s = d.sessions.get(r); s == nil {
				d.toSignin(w, r, "")
				return
			}
		}
		if err := d.opts.API.Recheck(r.Context(), s.p, s.gen); err != nil {
			if status, _ := d.opts.API.ErrorAnswer(r.Context(), err); status == http.StatusUnauthorized {
				d.sessions.end(s)
				d.toSignin(w, r, noteEnded)
				return
			}
			d.fail(w, r, s, err)
			return
		}
		if r.Method != http.MethodGet && !(ownCSRF && r.Header.Get(csrfHeader) == "") {
			if err := d.checkCSRF(w, r, s); err != nil {
				d.fail(w, r, s, err)
				return
			}
		}
		c := &call{s: s, app: r.PathValue("app")}
		if sc != scopeSession {
			if err := d.opts.API.Authorize(r, s.p, sc, c.app); err != nil {
				d.fail(w, r, s, err)
				return
			}
		}
		// On a node of a cluster, the coordinator carries out every
		// change; the session's own matters (signing out) stay here.
		if r.Method != http.MethodGet && sc != scopeSession {
			if s.peer {
				w = &flashToPeer{ResponseWriter: w, d: d, s: s}
			} else if d.forward(w, r, s) {
				return
			}
		}
		ctx, cancel := d.opts.API.WhileValid(r.Context(), s.p, s.gen)
		defer cancel()
		if err := h(w, r.WithContext(ctx), c); err != nil {
			d.fail(w, r, s, err)
		}
	})
}

// toSignin sends a request without a valid session to the sign-in page,
// which brings it back to a page it asked for once signed in; note is a
// key of signinNotes, or "".
func (d *Dashboard) toSignin(w http.ResponseWriter, r *http.Request, note string) {
	q := url.Values{}
	if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" {
		q.Set("next", r.URL.RequestURI())
	}
	if note != "" {
		q.Set("note", note)
	}
	target := "/signin"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// safeNext is where to go after signing in: a path of this site, "/"
// for anything else (another site, a scheme, "//host"). A browser drops
// tabs and newlines from a URL and reads a backslash as a slash, so that
// "/\t/host" and "/\\host" are "//host" to it: a next with a control
// character or a backslash anywhere is refused too (the dashboard's own
// paths, escaped by RequestURI, have neither).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsFunc(next, func(r rune) bool {
		return r < 0x20 || r == 0x7f || r == '\\'
	}) {
		return "/"
	}
	return next
}

// answer is the status and message of err: the dashboard's own, or what
// the API answers it with.
func (d *Dashboard) answer(ctx context.Context, err error) (int, string) {
	var pe *pageError
	if errors.As(err, &pe) {
		return pe.status, pe.msg
	}
	return d.opts.API.ErrorAnswer(ctx, err)
}

// fail shows err on an error page, with the API's status and message.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, msg := d.answer(r.Context(), err)
	d.failMsg(w, r, s, status, msg)
}

func (d *Dashboard) failMsg(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	back := "/"
	if app := r.PathValue("app"); app != "" && status != http.StatusNotFound {
		back = "/apps/" + url.PathEscape(app)
	}
	d.render(w, r, s, status, "error", view{Title: http.StatusText(status), App: r.PathValue("app"), Error: msg,
		Data: struct{ Back string }{back}})
}

// home is the apps for the admin, and its app for a deploy credential.
func (d *Dashboard) home(w http.ResponseWriter, r *http.Request, c *call) error {
	if !c.s.p.Admin {
		http.Redirect(w, r, "/apps/"+url.PathEscape(c.s.p.App), http.StatusSeeOther)
		return nil
	}
	return d.appsPage(w, r, c)
}

// see redirects to a page after a change (303: the browser GETs it).
func see(w http.ResponseWriter, r *http.Request, format string, args ...any) {
	http.Redirect(w, r, pathf(format, args...), http.StatusSeeOther)
}
