package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/slipway-dev/slipway/internal/store"
)

// ndjson is the media type of a followed deployment: one JSON object (a
// FollowLine) per line.
const ndjson = "application/x-ndjson"

// answerChange answers a change that started deployment d, with the body
// that body makes of a deployment.
//
// Without wait=1 it answers at once: 202 and d as it was accepted.
//
// With wait=1 it answers when d has ended, with a status that says how
// (see outcomeStatus) and the body made of the finished deployment, so
// that a pipeline built on curl --fail fails on a failed deployment. The
// wait is bounded by the deployment's own deadlines (its start time limit,
// drain timeout and stop grace period), not by one of its own. A client
// that accepts application/x-ndjson gets 200 at once instead, and d's
// events as they happen (see streamDeployment): that is how the CLI
// follows the changes it makes, through the route it made them on, which
// the caller may use, whatever the app's deploy access rules say.
//
// If the client goes away while it waits, the deployment goes on.
func (s *Server) answerChange(w http.ResponseWriter, r *http.Request, d store.Deployment, body func(store.Deployment) any) error {
	w.Header().Set("Location", fmt.Sprintf("/api/v1/apps/%s/deployments/%d", d.App, d.ID))
	if !isTrue(r.URL.Query().Get("wait")) {
		writeJSON(w, http.StatusAccepted, body(d))
		return nil
	}
	if acceptsNDJSON(r) {
		s.streamDeployment(w, r, d.App, d.ID, &d)
		return nil
	}
	end, err := s.waitEnd(r.Context(), d.App, d.ID)
	if err != nil {
		return err
	}
	writeJSON(w, outcomeStatus(end.State), body(end))
	return nil
}

func acceptsNDJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), ndjson)
}

// waitEnd returns deployment id of app once it has ended (see
// store.WaitDeployment). It fails if ctx ends first:
// the client went away (the deployment goes on), or the daemon is
// stopping (which cancels a deployment that has not switched traffic).
func (s *Server) waitEnd(ctx context.Context, app string, id int) (store.Deployment, error) {
	end, err := s.opts.Store.WaitDeployment(ctx, app, id)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return end, errorf(http.StatusServiceUnavailable,
			"stopped waiting for deployment %d of app %s before it ended (%v); see how it ended with 'slipway deployments show -a %s %d'",
			id, app, context.Cause(ctx), app, id)
	}
	return end, err
}

// FollowLine is one line of a deployment's event stream (NDJSON): an event,
// or a deployment. A stream ends with the finished deployment; one that
// answers a change (wait=1) begins with the deployment as it was accepted,
// still running and without its events, which follow.
type FollowLine struct {
	Event      *Event      `json:"event,omitempty"`
	Deployment *Deployment `json:"deployment,omitempty"`
}

// streamDeployment streams deployment id of app as NDJSON FollowLines:
// first, if set, the deployment as it was accepted; then its events as
// they happen, from the first; last the finished deployment. The status
// is 200 whatever the outcome: the last line says it. A client that
// accepts text/event-stream gets each line as a server-sent event instead,
// named "event" or "deployment" after what it holds.
func (s *Server) streamDeployment(w http.ResponseWriter, r *http.Request, app string, id int, first *store.Deployment) {
	sse := strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	w.Header().Set("Content-Type", ndjson)
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	put := func(l FollowLine) {
		if sse {
			name := "event"
			if l.Deployment != nil {
				name = "deployment"
			}
			fmt.Fprintf(w, "event: %s\ndata: ", name)
		}
		enc.Encode(l) // json.Encoder ends the line, and so an SSE data field
		if sse {
			io.WriteString(w, "\n")
		}
	}
	flusher := http.NewResponseController(w)
	if first != nil {
		head := *first
		head.Events = nil
		put(FollowLine{Deployment: new(deploymentOf(head))})
		flusher.Flush()
	}
	sent := 0
	err := s.opts.Store.WatchDeployment(r.Context(), app, id, func(d store.Deployment) bool {
		// Events are only appended. (A log over store.MaxEvents drops old
		// progress messages; a follower then misses as many new ones, which
		// takes a warmup of hours at one message per 15 s.)
		for _, e := range d.Events[min(sent, len(d.Events)):] {
			put(FollowLine{Event: new(eventOf(e))})
		}
		sent = len(d.Events)
		if d.Done() {
			put(FollowLine{Deployment: new(deploymentOf(d))})
		}
		flusher.Flush()
		return !d.Done()
	})
	if err != nil && r.Context().Err() == nil {
		s.logger.Error("following deployment", "app", app, "deployment", id, "err", err)
	}
}
