package router

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// discardLog silences ReverseProxy's own logging; proxyError decides.
var discardLog = log.New(io.Discard, "", 0)

// statusClientClosed is nginx's 499: the client went away first.
const statusClientClosed = 499

// proxyError answers a request the backend could not serve, unless it may
// be tried again on another backend: then ServeHTTP does that.
func proxyError(w http.ResponseWriter, r *http.Request, err error) {
	a, _ := r.Context().Value(attemptKey{}).(*attempt)
	if a != nil && !a.retried && retryable(r, err, a) {
		a.err = err
		return
	}
	status := errorStatus(r, err)
	if a != nil {
		a.status = status
		if a.body != nil && r.ProtoMajor == 1 {
			// What is left of the body may be large or slow to come:
			// net/http would read it before this answer, unless the
			// connection is to close after it. (HTTP/2 has no such
			// header, nor the need.)
			w.Header().Set("Connection", "close")
		}
	}
	writePage(w, status)
}

// attempt carries, through the request's context, what ServeHTTP needs to
// decide on a retry, and what forward needs to end a try.
type attempt struct {
	status   int           // the answer's status, for the metrics
	instance string        // the backend that answered, for the access log
	err      error         // set by proxyError when the request may be retried
	retried  bool          // the request is on its second try
	body     *countingBody // nil without a body
	// backend is the one this try is on, and cancel ends the try with a
	// cause (see forward); client is its side of the client's connection.
	backend *Backend
	cancel  context.CancelCauseFunc
	client  *clientSide
	// hooks are the drain callbacks of this try, unregistered when it ends.
	hooks []func() bool
	// trustedPeer is set when the peer is a trusted proxy, whose
	// X-Forwarded-* headers are passed on.
	trustedPeer bool
}

type attemptKey struct{}

// countingBody remembers whether any of the body was read, and keeps the
// body open across a failed try (the transport closes it on error; the
// server closes the real one when the handler returns).
type countingBody struct {
	io.ReadCloser
	read bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.read = true
	}
	return n, err
}

func (b *countingBody) Close() error { return nil }

// retryable reports whether a failed request can go to another backend
// without risk of doing it twice: the connection could not be made at all,
// or it failed before any answer and the request is safe to repeat (GET,
// HEAD, OPTIONS) or its body was not sent.
func retryable(r *http.Request, err error, a *attempt) bool {
	var opErr *net.OpError
	switch {
	case r.Context().Err() != nil:
		return false // the client is gone
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return a.body == nil || !a.body.read
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return false // the app is slow, not gone; a retry would double its load
	case r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions:
		return a.body == nil || !a.body.read
	default:
		return a.body != nil && !a.body.read
	}
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// errorStatus maps an upstream error to the status the client gets.
func errorStatus(r *http.Request, err error) int {
	switch {
	case errors.Is(context.Cause(r.Context()), ErrDrainTimeout):
		// Cut off by the platform: the instance is being retired.
		return http.StatusBadGateway
	case errors.Is(r.Context().Err(), context.Canceled):
		// The client is gone; nobody will read this status, but the
		// access log should not blame the app.
		return statusClientClosed
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		// The app did not answer in time.
		return http.StatusGatewayTimeout
	default:
		// Connection refused or reset, a malformed answer: the app is
		// broken or gone.
		return http.StatusBadGateway
	}
}

// pages are the router's own answers, for anyone: they say what happened
// without naming the app, the platform or what an operator should do (that
// goes to the log).
var pages = map[int][2]string{
	http.StatusNotFound:           {"Not found", "There is no site at this address."},
	http.StatusForbidden:          {"Forbidden", "You do not have access to this site."},
	http.StatusBadGateway:         {"Bad gateway", "The site could not answer this request. Please try again."},
	http.StatusServiceUnavailable: {"Service unavailable", "The site is not available right now. Please try again in a moment."},
	http.StatusGatewayTimeout:     {"Gateway timeout", "The site took too long to answer. Please try again."},
}

// writePage answers with status and its neutral page. A status without a
// page (499: the client is gone) gets no body.
func writePage(w http.ResponseWriter, status int) {
	p, ok := pages[status]
	if !ok {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><title>%d %s</title><h1>%s</h1><p>%s</p>\n",
		status, html.EscapeString(p[0]), html.EscapeString(p[0]), html.EscapeString(p[1]))
}

// logLimit lets a log line through at most once per logEvery.
type logLimit struct{ last atomic.Int64 }

const logEvery = 10 * time.Second

func (l *logLimit) shouldLog(now time.Time) bool {
	last := l.last.Load()
	return now.UnixNano()-last >= int64(logEvery) && l.last.CompareAndSwap(last, now.UnixNano())
}
