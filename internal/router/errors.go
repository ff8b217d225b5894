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
)

// discardLog silences ReverseProxy's own logging; proxyError decides.
var discardLog = log.New(io.Discard, "", 0)

// statusClientClosed is nginx's 499: the client went away first.
const statusClientClosed = 499

// proxyError answers a request the backend could not serve, unless it may
// be tried again on another backend: then ServeHTTP does that.
func proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if a, ok := r.Context().Value(attemptKey{}).(*attempt); ok && !a.retried && retryable(r, err, a) {
		a.err = err
		return
	}
	status := errorStatus(r, err)
	if a, ok := r.Context().Value(attemptKey{}).(*attempt); ok {
		a.status = status
	}
	w.WriteHeader(status)
}

// recordStatus notes the backend's status for the metrics.
func recordStatus(resp *http.Response) error {
	if a, ok := resp.Request.Context().Value(attemptKey{}).(*attempt); ok {
		a.status = resp.StatusCode
	}
	return nil
}

// attempt carries, through the request's context, what ServeHTTP needs to
// decide on a retry.
type attempt struct {
	status   int           // the answer's status, for the metrics
	instance string        // the backend that answered, for the access log
	err      error         // set by proxyError when the request may be retried
	retried  bool          // the request is on its second try
	body     *countingBody // nil without a body
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

// writePage writes a small HTML page for the router's own answers.
func writePage(w http.ResponseWriter, status int, title, text string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><title>%d %s</title><h1>%s</h1><p>%s</p>\n",
		status, html.EscapeString(title), html.EscapeString(title), html.EscapeString(text))
}
