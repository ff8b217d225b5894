package scm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
)

// Kudu's deployment statuses. Every deployment ends in statusFailed or
// statusSuccess, so that a client polling it stops.
const (
	statusPending   = 0
	statusBuilding  = 1
	statusDeploying = 2
	statusFailed    = 3
	statusSuccess   = 4
)

// Deployment is a deployment as Kudu shows it, with Kudu's field names.
type Deployment struct {
	ID         string `json:"id"`
	Status     int    `json:"status"`
	StatusText string `json:"status_text"`
	// AuthorEmail is always empty: Slipway keeps none.
	AuthorEmail string `json:"author_email"`
	Author      string `json:"author"`
	Deployer    string `json:"deployer"`
	Message     string `json:"message"`
	// Progress is the deployment's last event.
	Progress     string     `json:"progress"`
	ReceivedTime time.Time  `json:"received_time"`
	StartTime    time.Time  `json:"start_time"`
	EndTime      *time.Time `json:"end_time"`
	// LastSuccessEndTime is when the app's last successful deployment
	// ended.
	LastSuccessEndTime *time.Time `json:"last_success_end_time"`
	Complete           bool       `json:"complete"`
	// Active is true for the deployment whose release is live.
	Active     bool `json:"active"`
	IsTemp     bool `json:"is_temp"`
	IsReadonly bool `json:"is_readonly"`
	// URL and LogURL are absolute, under the site's URL.
	URL               string `json:"url"`
	LogURL            string `json:"log_url"`
	SiteName          string `json:"site_name"`
	ProvisioningState string `json:"provisioningState"`
}

// LogEntry is one line of a deployment's log as Kudu shows it.
type LogEntry struct {
	LogTime time.Time `json:"log_time"`
	ID      string    `json:"id"`
	Message string    `json:"message"`
	// Type is 0 for information, 1 a warning, 2 an error.
	Type       int     `json:"type"`
	DetailsURL *string `json:"details_url"`
}

// history is an app's deployments with what Kudu's view of one needs
// from the others.
type history struct {
	base string // the site's URL
	deps []store.Deployment
	// active is the id of the deployment whose release is live, 0 if none.
	active      int
	lastSuccess *time.Time
}

// history reads app's deployments, oldest first.
func (s *Site) history(r *http.Request, app string) (*history, error) {
	a, err := s.opts.Store.App(r.Context(), app)
	if err != nil {
		return nil, err
	}
	deps, err := s.opts.Store.Deployments(r.Context(), app)
	if err != nil {
		return nil, err
	}
	h := &history{base: s.URL(r, app), deps: deps}
	for _, d := range slices.Backward(deps) {
		if !tookLive(d) {
			continue
		}
		if h.lastSuccess == nil {
			h.lastSuccess = &d.Finished
		}
		if h.active == 0 && d.Release == a.CurrentRelease {
			h.active = d.ID
		}
	}
	return h, nil
}

// tookLive reports whether d took a release live.
func tookLive(d store.Deployment) bool {
	return d.State == store.StateSucceeded && d.Release != 0 && d.Kind != store.KindStage && d.Kind != store.KindRecord
}

// kuduID is d's id as Kudu shows it: a record's own, else the number.
func kuduID(d store.Deployment) string {
	if d.ExternalID != "" {
		return d.ExternalID
	}
	return strconv.Itoa(d.ID)
}

// kudu shows d as Kudu does.
func (h *history) kudu(d store.Deployment) Deployment {
	status, text := kuduStatus(d)
	url := h.base + "/api/deployments/" + kuduID(d)
	out := Deployment{ID: kuduID(d), Status: status, StatusText: text, Author: d.Author, Deployer: d.Deployer,
		Message: d.Message, ReceivedTime: d.Started, StartTime: d.Started, LastSuccessEndTime: h.lastSuccess,
		Complete: d.Done(), Active: d.ID == h.active, IsReadonly: d.Kind == store.KindRecord,
		URL: url, LogURL: url + "/log", SiteName: d.App, ProvisioningState: "InProgress"}
	if len(d.Events) > 0 {
		out.Progress = d.Events[len(d.Events)-1].Message
	}
	if d.Done() {
		out.EndTime = &d.Finished
		out.ProvisioningState = "Failed"
		if d.State == store.StateSucceeded {
			out.ProvisioningState = "Succeeded"
		}
	}
	return out
}

// kuduStatus maps a deployment's state and step to Kudu's status, with a
// text. A running deployment is building until its instances start, then
// deploying; a cancelled one has failed, as far as a pipeline is
// concerned.
func kuduStatus(d store.Deployment) (int, string) {
	switch d.State {
	case store.StateSucceeded:
		return statusSuccess, "Success"
	case store.StateFailed:
		return statusFailed, "Failed"
	case store.StateCancelled:
		return statusFailed, "Cancelled"
	}
	step := ""
	for _, e := range d.Events {
		if e.Step != "" {
			step = e.Step
		}
	}
	switch step {
	case "":
		return statusPending, "Pending"
	case store.StepReceived:
		return statusBuilding, "Received"
	default:
		return statusDeploying, strings.ToUpper(step[:1]) + step[1:]
	}
}

// find returns the deployment Kudu's id names: a record's own id first,
// else the deployment of that number.
func (h *history) find(id string) (store.Deployment, bool) {
	for _, d := range h.deps {
		if d.ExternalID == id {
			return d, true
		}
	}
	if n, err := strconv.Atoi(id); err == nil {
		for _, d := range h.deps {
			if d.ID == n && d.ExternalID == "" {
				return d, true
			}
		}
	}
	return store.Deployment{}, false
}

func (s *Site) writeDeployment(w http.ResponseWriter, r *http.Request, status int, d store.Deployment) error {
	h, err := s.history(r, d.App)
	if err != nil {
		return err
	}
	writeJSON(w, status, h.kudu(d))
	return nil
}

// listDeployments is GET {scm}/api/deployments, newest first; the
// Pipelines tasks call it with ?warmup=true before they deploy.
func (s *Site) listDeployments(w http.ResponseWriter, r *http.Request) error {
	h, err := s.history(r, r.PathValue("app"))
	if err != nil {
		return err
	}
	out := make([]Deployment, 0, len(h.deps))
	for _, d := range slices.Backward(h.deps) {
		out = append(out, h.kudu(d))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// latestDeployment is GET {scm}/api/deployments/latest: the newest
// deployment, with 202 while it runs. With deployer and time, as in the
// URLs a deploy call hands out, it is the first deployment of that
// deployer that started then or later: the one the call started, even
// once others have followed it.
func (s *Site) latestDeployment(w http.ResponseWriter, r *http.Request) error {
	app := r.PathValue("app")
	h, err := s.history(r, app)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("time"); v != "" {
		if since, err = time.Parse(kuduTime, v); err != nil {
			return fmt.Errorf("%w: time=%s: give an ISO 8601 time", ErrBadRequest, v)
		}
	}
	deployer := q.Get("deployer")
	var found *store.Deployment
	for i := len(h.deps) - 1; i >= 0; i-- {
		d := h.deps[i]
		if d.Started.Before(since) {
			break
		}
		if deployer == "" || strings.EqualFold(d.Deployer, deployer) {
			found = &d
			if since.IsZero() {
				break // the newest
			}
		}
	}
	if found == nil {
		return &store.NotFoundError{Kind: "deployment", App: app, ID: "latest"}
	}
	status := http.StatusOK
	if !found.Done() {
		w.Header().Set("Location", s.URL(r, app)+"/api/deployments/latest?"+r.URL.RawQuery)
		w.Header().Set("Retry-After", "30")
		status = http.StatusAccepted
	}
	writeJSON(w, status, h.kudu(*found))
	return nil
}

// showDeployment is GET {scm}/api/deployments/{id}.
func (s *Site) showDeployment(w http.ResponseWriter, r *http.Request) error {
	d, h, err := s.lookup(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.kudu(d))
	return nil
}

func (s *Site) lookup(r *http.Request) (store.Deployment, *history, error) {
	app, id := r.PathValue("app"), r.PathValue("id")
	h, err := s.history(r, app)
	if err != nil {
		return store.Deployment{}, nil, err
	}
	d, ok := h.find(id)
	if !ok {
		return d, nil, &store.NotFoundError{Kind: "deployment", App: app, ID: id}
	}
	return d, h, nil
}

// deploymentLog is GET {scm}/api/deployments/{id}/log: the deployment's
// events, the reason of a failure last, as an error. The GitHub Action
// prints these when a deployment fails.
func (s *Site) deploymentLog(w http.ResponseWriter, r *http.Request) error {
	d, _, err := s.lookup(r)
	if err != nil {
		return err
	}
	out := make([]LogEntry, 0, len(d.Events))
	for i, e := range d.Events {
		typ := 0
		if e.Step == store.StepFailed && d.State == store.StateFailed {
			typ = 2
		} else if e.Step == store.StepFailed {
			typ = 1 // cancelled
		}
		out = append(out, LogEntry{LogTime: e.At, ID: strconv.Itoa(i + 1), Message: e.Message, Type: typ})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// recordRequest is the body of PUT {scm}/api/deployments/{id}, as the
// Pipelines tasks send it after their run; other fields (id, active,
// details) are read and left.
type recordRequest struct {
	Status   int    `json:"status"`
	Message  string `json:"message"`
	Deployer string `json:"deployer"`
	Author   string `json:"author"`
}

// putRecord is PUT {scm}/api/deployments/{id}: a pipeline records its
// run, kept as a read-only entry of the history (it takes nothing live;
// "active" is ignored). 409 if the id is taken.
func (s *Site) putRecord(w http.ResponseWriter, r *http.Request) error {
	if r.PathValue("id") == "latest" {
		return fmt.Errorf("%w: latest names the newest deployment; give the record another id", ErrBadRequest)
	}
	var req recordRequest
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20)).Decode(&req); err != nil {
		return fmt.Errorf("%w: reading the JSON body: %v", ErrBadRequest, err)
	}
	if req.Status != statusFailed && req.Status != statusSuccess {
		return fmt.Errorf("%w: status %d: a record's status is 3 (failed) or 4 (success)", ErrBadRequest, req.Status)
	}
	m := deploy.Meta{Deployer: req.Deployer}
	m.Message, m.Author = readable(req.Message, req.Author)
	d, err := s.opts.Deploys.AddRecord(r.Context(), deploy.Record{App: r.PathValue("app"), ID: r.PathValue("id"),
		Succeeded: req.Status == statusSuccess, Meta: m})
	if err != nil {
		return err
	}
	return s.writeDeployment(w, r, http.StatusOK, d)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
