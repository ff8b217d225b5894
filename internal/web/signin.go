package web

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"time"
)

// signinCookie holds the sign-in form's CSRF token, before there is a
// session to hold one: the form's field must match it (a double submit),
// so that another site cannot sign a browser in with its own token.
const signinCookie = "slipway_signin"

// maxTokenBytes bounds what the sign-in form takes as a token; a real one
// is under 80 bytes.
const maxTokenBytes = 1 << 10

// signinNotes are the notes the sign-in page shows, by the key its note
// parameter gives. Only the dashboard's own words are shown: a note taken
// from the URL as text would let any link put a message of a stranger's
// ("paste your token at …") on this page.
var signinNotes = map[string]string{
	noteEnded:     "Your session ended: its token was revoked or replaced. Sign in with a valid one.",
	noteSignedOut: "You are signed out.",
}

// Keys of signinNotes.
const (
	noteEnded     = "ended"
	noteSignedOut = "signed-out"
)

type signinData struct {
	Next, Note, CSRF string
}

func (d *Dashboard) signinPage(w http.ResponseWriter, r *http.Request) {
	if s := d.sessions.get(r); s != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	d.showSignin(w, r, http.StatusOK, "")
}

// showSignin renders the sign-in form with a fresh token in its cookie.
func (d *Dashboard) showSignin(w http.ResponseWriter, r *http.Request, status int, errMsg string) {
	token := randomID()
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Value: token, Path: "/signin", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: d.opts.Secure || r.TLS != nil, MaxAge: int(time.Hour / time.Second)})
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		next = r.PostForm.Get("next")
	}
	d.render(w, r, nil, status, "signin", view{Title: "Sign in", Error: errMsg,
		Data: signinData{Next: safeNext(next), Note: signinNotes[r.URL.Query().Get("note")], CSRF: token}})
}

// signin takes the admin token or an app's deploy credential, checks it
// as the API checks a request's token, and starts a session.
func (d *Dashboard) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		d.showSignin(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
		return
	}
	c, err := r.Cookie(signinCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get(csrfField))) != 1 {
		d.showSignin(w, r, http.StatusForbidden, "This sign-in form is out of date or did not come from this dashboard. Sign in again on this page.")
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" || len(token) > maxTokenBytes {
		d.showSignin(w, r, http.StatusUnauthorized, "Paste the admin token (admin.token in the server's data directory) or an app's deploy credential.")
		return
	}
	p, gen, err := d.opts.API.Authenticate(r.Context(), token)
	if err != nil {
		status, msg := d.answer(r.Context(), err)
		d.showSignin(w, r, status, msg)
		return
	}
	s := d.sessions.create(p, gen)
	http.SetCookie(w, d.cookie(r, s.id, s.expires))
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Path: "/signin", MaxAge: -1})
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (d *Dashboard) signout(w http.ResponseWriter, r *http.Request, c *call) error {
	d.sessions.end(c.s)
	http.SetCookie(w, d.cookie(r, "", time.Time{}))
	http.Redirect(w, r, "/signin?note="+noteSignedOut, http.StatusSeeOther)
	return nil
}
