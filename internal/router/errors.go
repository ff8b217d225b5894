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

// proxyError answers a request the backend could not serve.
func proxyError(w http.ResponseWriter, r *http.Request, err error) {
	w.WriteHeader(errorStatus(r, err))
}

// errorStatus maps an upstream error to the status the client gets.
func errorStatus(r *http.Request, err error) int {
	var netErr net.Error
	switch {
	case errors.Is(r.Context().Err(), context.Canceled):
		// The client is gone; nobody will read this status, but the
		// access log should not blame the app.
		return statusClientClosed
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
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
