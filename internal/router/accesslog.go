package router

import (
	"net/http"
	"time"

	"github.com/slipway-dev/slipway/internal/access"
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
	client := access.ClientIP(req.RemoteAddr, req.Header.Values("X-Forwarded-For"), r.trusted)
	r.accessLog(app, AccessRecord{Method: req.Method, Path: req.URL.Path, Status: a.status, Duration: d,
		Bytes: w.bytes, Instance: a.instance, Client: client.String()})
}
