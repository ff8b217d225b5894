package api

import (
	"encoding/json"
	"net/http"
	"strconv"

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
	follow := r.URL.Query().Get("follow") == "1" || r.URL.Query().Get("follow") == "true"
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	if !follow {
		for _, l := range s.opts.Logs.Tail(app, n) {
			enc.Encode(l)
		}
		return nil
	}
	backlog, sub, cancel := s.opts.Logs.Subscribe(app, n)
	defer cancel()
	rc := http.NewResponseController(w)
	for _, l := range backlog {
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
			enc.Encode(l)
			drain(enc, sub)
			rc.Flush()
		}
	}
}

// drain writes whatever lines are already waiting, so a burst is flushed once.
func drain(enc *json.Encoder, sub *logs.Subscription) {
	for {
		select {
		case l, ok := <-sub.Lines():
			if !ok {
				return
			}
			enc.Encode(l)
		default:
			return
		}
	}
}
