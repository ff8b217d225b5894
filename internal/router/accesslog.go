package router

import (
	"net"
	"net/http"
	"time"
)

// AccessRecord is one request in an app's access log.
type AccessRecord struct {
	Method   string
	Path     string
	Status   int
	Duration time.Duration
	Bytes    int64
	Instance string // empty when no instance took it
	Client   string
}

// countingWriter counts the bytes of an answer. Unwrap keeps flushing and
// hijacking (WebSocket) working through http.ResponseController.
type countingWriter struct {
	http.ResponseWriter
	bytes int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (r *Router) logAccess(app string, req *http.Request, a *attempt, w *countingWriter, d time.Duration) {
	client, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		client = req.RemoteAddr
	}
	r.accessLog(app, AccessRecord{Method: req.Method, Path: req.URL.Path, Status: a.status, Duration: d,
		Bytes: w.bytes, Instance: a.instance, Client: client})
}
