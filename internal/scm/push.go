package scm

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// Deployers that Kudu names when a client names none.
const (
	deployerOneDeploy = "OneDeploy"
	deployerZip       = "ZipDeploy"
	deployerWar       = "WarDeploy"
)

// push is one deploy call, as its query says.
type push struct {
	// file is the name the upload is stored under, which tells its kind:
	// app.jar, app.war or app.zip; a zip wrapping one jar is that jar.
	file string
	// startup: the body is a startup command, not an artifact.
	startup bool
	async   bool
	// restart false stages the artifact instead of taking it live.
	restart bool
	meta    deploy.Meta
}

// publish is OneDeploy: POST {scm}/api/publish?type=jar|war|zip|startup.
func (s *Site) publish(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p := push{restart: true}
	var err error
	if p.async, err = boolParam(q, "async", false); err != nil {
		return err
	}
	if p.restart, err = boolParam(q, "restart", true); err != nil {
		return err
	}
	if _, err := boolParam(q, "clean", false); err != nil { // a release is always whole: clean by nature
		return err
	}
	if path := q.Get("path"); path != "" {
		return fmt.Errorf("%w: path=%s: Slipway deploys the artifact as the whole app; leave path out", ErrUnsupported, path)
	}
	switch t := strings.ToLower(q.Get("type")); t {
	case "jar", "war", "zip":
		p.file = "app." + t
	case "startup":
		p.startup = true
	case "":
		return fmt.Errorf("%w: type is missing: send type=jar, war, zip or startup", ErrBadRequest)
	default:
		return fmt.Errorf("%w: type=%s: Slipway runs a jar, a war, or a zip with a startup command; send type=jar, war, zip or startup", ErrUnsupported, q.Get("type"))
	}
	if p.meta, err = meta(r, deployerOneDeploy); err != nil {
		return err
	}
	return s.push(w, r, p)
}

// zipDeploy is POST {scm}/api/zipdeploy: a zip, or a jar wrapped in one.
func (s *Site) zipDeploy(w http.ResponseWriter, r *http.Request) error {
	return s.pushArchive(w, r, "app.zip", deployerZip)
}

// warDeploy is POST {scm}/api/wardeploy: a war, served as the whole app.
func (s *Site) warDeploy(w http.ResponseWriter, r *http.Request) error {
	if name := r.URL.Query().Get("name"); name != "" && !strings.EqualFold(name, "ROOT") {
		return fmt.Errorf("%w: name=%s: Slipway serves the war as the whole app (ROOT); leave name out", ErrUnsupported, name)
	}
	return s.pushArchive(w, r, "app.war", deployerWar)
}

func (s *Site) pushArchive(w http.ResponseWriter, r *http.Request, file, deployer string) error {
	p := push{file: file, restart: true}
	var err error
	if p.async, err = boolParam(r.URL.Query(), "isAsync", false); err != nil {
		return err
	}
	if p.meta, err = meta(r, deployer); err != nil {
		return err
	}
	return s.push(w, r, p)
}

// push takes the body live (or stages it), then answers as the call asked:
// at once, or when the deployment has ended.
func (s *Site) push(w http.ResponseWriter, r *http.Request, p push) error {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		return fmt.Errorf("%w: deploying from a URL (packageUri) is not supported, so that the daemon fetches nothing on a caller's behalf; send the file itself as the body", ErrUnsupported)
	}
	if r.ContentLength > s.opts.MaxUpload {
		return fmt.Errorf("%w: %d bytes sent, the limit is %d (--max-upload)", artifact.ErrTooLarge, r.ContentLength, s.opts.MaxUpload)
	}
	app := r.PathValue("app")
	var d *store.Deployment
	var err error
	if p.startup {
		d, err = s.pushStartup(r, p)
	} else {
		req := deploy.DeployRequest{App: app, Artifact: r.Body, FileName: p.file, Size: r.ContentLength, Unwrap: true, Meta: p.meta}
		var dep store.Deployment
		if p.restart {
			dep, err = s.opts.Deploys.Deploy(r.Context(), req)
		} else {
			dep, err = s.opts.Deploys.Stage(r.Context(), req)
		}
		d = &dep
	}
	if err != nil {
		return kudu(err)
	}
	if d == nil { // saved for the next deployment: nothing to follow
		w.WriteHeader(http.StatusOK)
		return nil
	}
	return s.answer(w, r, *d, p.async)
}

// pushStartup sets the body as the app's startup command: a settings
// change, live through a swap unless restart is false. It returns no
// deployment when the change waits for the next one.
func (s *Site) pushStartup(r *http.Request, p push) (*store.Deployment, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, settings.MaxCommandBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the startup command: %v", ErrBadRequest, err)
	}
	if len(b) > settings.MaxCommandBytes {
		return nil, fmt.Errorf("%w: the startup command is over %d bytes; shorten it", settings.ErrInvalidSettings, settings.MaxCommandBytes)
	}
	cmd := strings.TrimSpace(strings.ReplaceAll(string(b), "\r\n", "\n"))
	if cmd == "" {
		return nil, fmt.Errorf("%w: the startup command is empty; send the command or script as the body", ErrBadRequest)
	}
	d, _, err := s.opts.Deploys.ChangeSettings(r.Context(), r.PathValue("app"), settings.Change{Command: &cmd}, !p.restart, p.meta)
	if errors.Is(err, settings.ErrUnchanged) {
		return nil, nil // the command it has already: nothing to deploy
	}
	return d, err
}

// answer answers a call that started deployment d: asynchronously, 202
// with the URL to poll; else, once it has ended, 200 with it if it
// succeeded, 422 if it did not (a client's error, not the server's: a
// retry would fail the same way).
func (s *Site) answer(w http.ResponseWriter, r *http.Request, d store.Deployment, async bool) error {
	if async {
		w.Header().Set("Location", s.pollURL(r, d))
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	end, err := s.await(r, d)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if end.State != store.StateSucceeded {
		status = http.StatusUnprocessableEntity
	}
	return s.writeDeployment(w, r, status, end)
}

// await returns d once it has ended (see store.WaitDeployment). If the
// client goes away first, or the daemon stops, the deployment goes on.
func (s *Site) await(r *http.Request, d store.Deployment) (store.Deployment, error) {
	end, err := s.opts.Store.WaitDeployment(r.Context(), d.App, d.ID)
	if err != nil && r.Context().Err() != nil {
		return end, fmt.Errorf("%w: follow it at %s", ErrNotFinished, s.pollURL(r, d))
	}
	return end, err
}

// pollURL is where a client follows d: Kudu's latest, narrowed to d by
// its deployer and start time (see latestDeployment).
func (s *Site) pollURL(r *http.Request, d store.Deployment) string {
	return s.URL(r, d.App) + "/api/deployments/latest?deployer=" + url.QueryEscape(d.Deployer) + "&time=" + url.QueryEscape(d.Started.UTC().Format(kuduTime))
}

// meta reads who deploys and why from the query: deployer (Kudu's default
// when absent), message and author. A JSON message, as the GitHub Action
// and the Pipelines tasks send, is made readable (see readable).
func meta(r *http.Request, defaultDeployer string) (deploy.Meta, error) {
	q := r.URL.Query()
	m := deploy.Meta{Deployer: q.Get("deployer"), Author: q.Get("author")}
	if m.Deployer == "" {
		m.Deployer = defaultDeployer
	}
	m.Message, m.Author = readable(q.Get("message"), m.Author)
	return m, m.Validate()
}

// boolParam reads a Kudu boolean: true, True, false, … or absent.
func boolParam(q map[string][]string, key string, def bool) (bool, error) {
	v := ""
	if vs := q[key]; len(vs) > 0 {
		v = vs[0]
	}
	switch strings.ToLower(v) {
	case "":
		return def, nil
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%w: %s=%s: send true or false", ErrBadRequest, key, v)
}
