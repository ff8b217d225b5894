package web

import (
	"crypto/subtle"
	"mime"
	"net/http"
)

// csrfField names the form field, and csrfHeader the header of a script's
// request, that carry a session's CSRF token. Every request but a GET
// must carry it: another site can make a browser send a form here, but
// cannot read the token that would make it count.
const (
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
)

// maxFormBytes bounds a form's body, read before its token is checked:
// the settings form holds at most 256 KiB of variables.
const maxFormBytes = 2 << 20

// errCSRF is the refusal of a request without the session's token.
var errCSRF = &pageError{status: http.StatusForbidden,
	msg: "This form did not come from this session of the dashboard (its CSRF token is missing or wrong), so it was refused. Reload the page and send it again."}

// checkCSRF reads a form's body (bounded) and checks its token, or the
// header's. A multipart form (an upload) is read by its handler, which
// checks its first field with sameToken.
func (d *Dashboard) checkCSRF(w http.ResponseWriter, r *http.Request, s *session) error {
	if h := r.Header.Get(csrfHeader); h != "" {
		return sameToken(h, s)
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		return errCSRF
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return &pageError{status: http.StatusBadRequest, msg: "The form could not be read: " + err.Error()}
	}
	return sameToken(r.PostForm.Get(csrfField), s)
}

// sameToken checks a token against the session's, in constant time.
func sameToken(token string, s *session) error {
	if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) != 1 {
		return errCSRF
	}
	return nil
}
