package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/logs"
)

// DefaultTail is how many recent lines a log request returns by default.
const DefaultTail = 100

// DefaultHeartbeat is how long a followed log stream may stay silent
// before the server sends a heartbeat line, so that proxies and clients
// can tell a quiet app from a dead connection.
const DefaultHeartbeat = time.Minute

// streamLogs writes app's recent log lines and, with follow=1, keeps
// streaming new ones until the client goes away. A client that accepts
// text/event-stream gets server-sent events (one "log" event per line,
// "heartbeat" events in silence); any other gets NDJSON, heartbeats being
// lines of stream "heartbeat".
func (s *Server) streamLogs(w http.ResponseWriter, r *http.Request) error {
	return s.StreamLogs(w, r, r.PathValue("app"))
}

// StreamLogs answers r with app's log as GET …/logs does, r's query and
// Accept header saying how (see streamLogs).
func (s *Server) StreamLogs(w http.ResponseWriter, r *http.Request, app string) error {
	if _, err := s.opts.Store.App(r.Context(), app); err != nil {
		return err
	}
	n := DefaultTail
	if t := r.URL.Query().Get("tail"); t != "" {
		v, err := strconv.Atoi(t)
		if err != nil || v < 0 {
			return errorf(http.StatusBadRequest, "tail %q is not a number of lines", t)
		}
		n = v
	}
	keep, err := lineFilter(r)
	if err != nil {
		return err
	}
	out := newLineWriter(w, r)
	// On a node of a cluster, every line says its node, and the lines of
	// the other nodes join this one's (unless a peer asks: then its own).
	var peers <-chan logs.Line
	if s.opts.Cluster != nil && s.opts.Store.Clustered() {
		out.node = s.opts.Store.NodeName()
		if !cluster.FromPeer(r) {
			peers = s.opts.Cluster.PeerLogs(r.Context(), r)
		}
	}
	if !isTrue(r.URL.Query().Get("follow")) {
		lines := filter(s.opts.Logs.Tail(app, -1), keep)
		if peers != nil { // ranging over a nil channel would never end
			for l := range peers {
				lines = append(lines, l)
			}
		}
		slices.SortStableFunc(lines, func(a, b logs.Line) int { return a.Time.Compare(b.Time) })
		for _, l := range lastN(lines, n) {
			out.line(l)
		}
		return nil
	}
	backlog, sub, cancel, err := s.opts.Logs.Subscribe(app, -1)
	if err != nil {
		return err
	}
	defer cancel()
	rc := http.NewResponseController(w)
	for _, l := range lastN(filter(backlog, keep), n) {
		out.line(l)
	}
	rc.Flush()
	heartbeat := time.NewTicker(s.opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-heartbeat.C:
			out.heartbeat()
		case l, ok := <-peers:
			if !ok {
				peers = nil // every peer's stream ended: this node's goes on
				continue
			}
			out.line(l)
			heartbeat.Reset(s.opts.Heartbeat)
		case l, ok := <-sub.Lines():
			if !ok {
				return nil
			}
			if keep(l) {
				out.line(l)
			}
			drain(out, sub, keep)
			heartbeat.Reset(s.opts.Heartbeat)
		}
		rc.Flush()
	}
}

// lineWriter writes log lines as NDJSON or as server-sent events.
type lineWriter struct {
	w   http.ResponseWriter
	enc *json.Encoder
	sse bool
	// node tags the lines of this node, on a node of a cluster.
	node string
}

func newLineWriter(w http.ResponseWriter, r *http.Request) *lineWriter {
	lw := &lineWriter{w: w, enc: json.NewEncoder(w), sse: strings.Contains(r.Header.Get("Accept"), "text/event-stream")}
	if lw.sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("Cache-Control", "no-store")
	return lw
}

func (lw *lineWriter) line(l logs.Line) {
	if l.Node == "" {
		l.Node = lw.node
	}
	lw.event("log", l)
}

func (lw *lineWriter) heartbeat() {
	lw.event(logs.StreamHeartbeat, logs.Line{Time: time.Now().UTC(), Source: logs.SourcePlatform, Stream: logs.StreamHeartbeat})
}

// event writes one line; json.Encoder ends it with the newline that ends
// an NDJSON line, and an SSE data field.
func (lw *lineWriter) event(name string, l logs.Line) {
	if lw.sse {
		fmt.Fprintf(lw.w, "event: %s\ndata: ", name)
	}
	lw.enc.Encode(l)
	if lw.sse {
		io.WriteString(lw.w, "\n")
	}
}

// drain writes whatever lines are already waiting, so a burst is flushed once.
func drain(out *lineWriter, sub *logs.Subscription, keep func(logs.Line) bool) {
	for {
		select {
		case l, ok := <-sub.Lines():
			if !ok {
				return
			}
			if keep(l) {
				out.line(l)
			}
		default:
			return
		}
	}
}

// downloadLogs answers a zip holding app's kept log files as text, oldest
// line first, filtered like streamLogs (since, until, instance, source).
func (s *Server) downloadLogs(w http.ResponseWriter, r *http.Request) error {
	return s.DownloadLogs(w, r, r.PathValue("app"))
}

// DownloadLogs answers r with a zip of app's kept log files, as GET
// …/logs/download does (see downloadLogs).
func (s *Server) DownloadLogs(w http.ResponseWriter, r *http.Request, app string) error {
	if _, err := s.opts.Store.App(r.Context(), app); err != nil {
		return err
	}
	keep, err := lineFilter(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-logs.zip"`, app))
	if err := s.opts.Logs.WriteZip(w, app, keep); err != nil { // the answer has begun: all that is left is to say so in the log
		s.logger.Warn("downloading logs", "app", app, "err", err)
	}
	return nil
}

// lineFilter reads the query's filters: since (a duration like 10m, or an
// RFC 3339 time), instance (an instance id), source (platform or app).
// Marker lines about missed lines always pass.
func lineFilter(r *http.Request) (func(logs.Line) bool, error) {
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, v); err == nil {
			since = t
		} else {
			return nil, errorf(http.StatusBadRequest, "since %q: give a duration like 10m or a time like 2026-01-02T15:04:05Z", v)
		}
	}
	var until time.Time
	if v := q.Get("until"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "until %q: give a time like 2026-01-02T15:04:05Z", v)
		}
		until = t
	}
	instance, source := q.Get("instance"), q.Get("source")
	if source != "" && source != "platform" && source != "app" {
		return nil, errorf(http.StatusBadRequest, "source %q: use platform or app", source)
	}
	return func(l logs.Line) bool {
		switch {
		case l.Missed > 0:
			return true
		case l.Time.Before(since), !until.IsZero() && l.Time.After(until):
			return false
		case instance != "" && l.Source != instance:
			return false
		case source == "platform" && l.Source != logs.SourcePlatform, source == "app" && l.Source == logs.SourcePlatform:
			return false
		}
		return true
	}, nil
}

func filter(lines []logs.Line, keep func(logs.Line) bool) []logs.Line {
	out := lines[:0:0]
	for _, l := range lines {
		if keep(l) {
			out = append(out, l)
		}
	}
	return out
}

func lastN(lines []logs.Line, n int) []logs.Line {
	if n < len(lines) {
		return lines[len(lines)-n:]
	}
	return lines
}
