package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/slipway-dev/slipway/internal/logs"
)

// DefaultTail is how many recent lines a log request returns by default.
const DefaultTail = 100

// streamLogs writes app's recent log lines as NDJSON and, with follow=1,
// keeps streaming new ones until the client goes away.
func (s *Server) streamLogs(w http.ResponseWriter, r *http.Request) error {
	app := r.PathValue("app")
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
	follow := isTrue(r.URL.Query().Get("follow"))
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	if !follow {
		for _, l := range lastN(filter(s.opts.Logs.Tail(app, -1), keep), n) {
			enc.Encode(l)
		}
		return nil
	}
	backlog, sub, cancel := s.opts.Logs.Subscribe(app, -1)
	defer cancel()
	rc := http.NewResponseController(w)
	for _, l := range lastN(filter(backlog, keep), n) {
		enc.Encode(l)
	}
	rc.Flush()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case l, ok := <-sub.Lines():
			if !ok {
				return nil
			}
			if keep(l) {
				enc.Encode(l)
			}
			drain(enc, sub, keep)
			rc.Flush()
		}
	}
}

// drain writes whatever lines are already waiting, so a burst is flushed once.
func drain(enc *json.Encoder, sub *logs.Subscription, keep func(logs.Line) bool) {
	for {
		select {
		case l, ok := <-sub.Lines():
			if !ok {
				return
			}
			if keep(l) {
				enc.Encode(l)
			}
		default:
			return
		}
	}
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
	instance, source := q.Get("instance"), q.Get("source")
	if source != "" && source != "platform" && source != "app" {
		return nil, errorf(http.StatusBadRequest, "source %q: use platform or app", source)
	}
	return func(l logs.Line) bool {
		switch {
		case l.Missed > 0:
			return true
		case l.Time.Before(since):
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
