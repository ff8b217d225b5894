package router

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"sync/atomic"
	"time"
)

// Causes of a request's end that the router decides, named in the log.
var (
	// ErrRetired ends upgraded connections and streams on a backend whose
	// drain has started: they would otherwise hold it for the whole drain
	// timeout.
	ErrRetired = errors.New("the instance was retired by a deployment; upgraded connections and streams are asked to close")
	// ErrDrainTimeout cuts off what is still in flight on a retired
	// backend at the drain deadline.
	ErrDrainTimeout = errors.New("the instance was retired and its drain timeout passed")
)

const (
	// drainPoll is how often Drain looks at the in-flight counters.
	drainPoll = 10 * time.Millisecond
	// cutoffWait bounds the wait for requests cut off at the drain
	// deadline to unwind; they do at once, as their context is cancelled.
	cutoffWait = 2 * time.Second
	// cutoffGrace is how long a request cut off at the drain deadline may
	// still write to its client (its error page); a write blocked on a
	// client that does not read fails then. Shorter than cutoffWait, so
	// Drain sees it unwind.
	cutoffGrace = time.Second
)

// Drain retires backends the way the best proxies do: it tells their
// upgraded connections (WebSocket) and streams (server-sent events) to
// close at once, waits until no request is in flight or the timeout
// passes, and then cuts off what remains with ErrDrainTimeout. It returns
// how many requests were in flight at the deadline, 0 if none. When ctx
// ends first (the daemon stops), Drain returns without cutting anything.
func Drain(ctx context.Context, backends []*Backend, timeout time.Duration) int64 {
	for _, b := range backends {
		b.startDrain(ErrRetired)
	}
	left := waitIdle(ctx, backends, timeout)
	if left == 0 || ctx.Err() != nil {
		return left
	}
	for _, b := range backends {
		b.stop(ErrDrainTimeout)
	}
	waitIdle(ctx, backends, cutoffWait)
	return left
}

// CloseStreams tells the upgraded connections and streams of every
// backend to close, as a drain does (see Drain), for cause: the daemon
// stops, and they would hold its shutdown.
func (r *Router) CloseStreams(cause error) {
	for _, rt := range r.table.Load().apps {
		for _, b := range *rt.backends.Load() {
			b.startDrain(cause)
		}
	}
}

// waitIdle waits until no request is in flight on backends, or timeout, or
// ctx; it returns the requests in flight then.
func waitIdle(ctx context.Context, backends []*Backend, timeout time.Duration) int64 {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		var n int64
		for _, b := range backends {
			n += b.InFlight()
		}
		if n == 0 {
			return 0
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return n
		case <-ctx.Done():
			return n
		}
	}
}

// forward sends req to b, on which acquire counted it, and gives that
// count back on every way out, a panic included: ReverseProxy panics with
// http.ErrAbortHandler when copying an answer fails (a backend that closes
// in the middle of its body, a client that goes away). At the backend's
// drain deadline the try's context ends, and so does its client's side
// (see clientSide.cutOff): cancelling the backend's side alone leaves a
// write to a client that does not read, or a read from a silent client of
// a hijacked connection, blocked for ever.
func (r *Router) forward(app string, b *Backend, w http.ResponseWriter, req *http.Request, a *attempt) {
	defer b.inflight.Add(-1)
	ctx, cancel := context.WithCancelCause(req.Context())
	cs := &clientSide{ResponseWriter: w, a: a, ws: isWebSocket(req)}
	a.backend, a.cancel, a.instance, a.client = b, cancel, b.ID, cs
	a.hooks = append(a.hooks[:0], context.AfterFunc(b.stopped, func() {
		cancel(context.Cause(b.stopped))
		cs.cutOff()
	}))
	defer func() {
		cs.finish()
		for _, stop := range a.hooks {
			stop()
		}
		if cause := context.Cause(ctx); errors.Is(cause, ErrDrainTimeout) {
			r.logger.Warn("request cut off", "app", app, "instance", b.ID, "method", req.Method, "path", req.URL.Path, "cause", cause)
		}
		cancel(nil)
	}()
	b.proxy.ServeHTTP(cs, req.WithContext(ctx))
}

// onResponse notes the backend's status for the metrics, and has a stream
// end cleanly when its backend's drain starts.
func onResponse(resp *http.Response) error {
	a, ok := resp.Request.Context().Value(attemptKey{}).(*attempt)
	if !ok {
		return nil
	}
	a.status = resp.StatusCode
	switch {
	case resp.StatusCode == http.StatusSwitchingProtocols && !isWebSocket(resp.Request):
		// An upgrade other than WebSocket: its frames are unknown, so it
		// is closed when the drain starts.
		a.hooks = append(a.hooks, context.AfterFunc(a.backend.draining, func() {
			a.cancel(ErrRetired)
			a.client.closeConn()
		}))
	case isEventStream(resp):
		body := &streamBody{ReadCloser: resp.Body}
		resp.Body = body
		a.hooks = append(a.hooks, context.AfterFunc(a.backend.draining, func() {
			body.ending.Store(true)
			a.cancel(ErrRetired)
		}))
	}
	return nil
}

func isEventStream(resp *http.Response) bool {
	t, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return t == "text/event-stream"
}

// streamBody is a streamed answer's body that ends cleanly, as if the app
// had finished it, once its backend drains: the client (an EventSource)
// sees the end of the stream and reconnects, to the new release.
type streamBody struct {
	io.ReadCloser
	ending atomic.Bool
}

func (b *streamBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.ending.Load() {
		return n, io.EOF
	}
	return n, err
}
