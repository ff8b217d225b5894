package web

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
)

type deployData struct {
	// Running is the running deployment, if any.
	Running   *api.Deployment
	MaxUpload int64
}

func (d *Dashboard) deployPage(w http.ResponseWriter, r *http.Request, c *call) error {
	st, err := d.opts.API.Status(r.Context(), c.app)
	if err != nil {
		return err
	}
	data := deployData{MaxUpload: d.opts.API.MaxUpload()}
	if ld := st.LastDeployment; ld != nil && ld.State == api.StateRunning {
		data.Running = ld
	}
	d.render(w, r, c.s, http.StatusOK, "deploy", view{Title: "Deploy " + c.app, App: c.app, Tab: "deploy", Data: data})
	return nil
}

var errUploadForm = badRequest("Send the file with the upload form: its fields csrf, message, then file.")

// upload takes a multipart form, csrf first (checked before anything else
// is read), then message, then file, which is streamed to the artifact
// store as the API's upload is, and starts its deployment. The answer is
// the deployment's page.
func (d *Dashboard) upload(w http.ResponseWriter, r *http.Request, c *call) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return errUploadForm
	}
	token, err := smallField(mr, csrfField)
	if err != nil {
		if r.Header.Get(csrfHeader) == "" {
			return errCSRF // no first field: nothing else is read
		}
		return err
	}
	if r.Header.Get(csrfHeader) == "" {
		if err := sameToken(token, c.s); err != nil {
			return err
		}
	}
	msg, err := smallField(mr, "message")
	if err != nil {
		return err
	}
	file, err := mr.NextPart()
	if err != nil || file.FormName() != "file" || file.FileName() == "" {
		return badRequest("Choose a jar, war or zip file to deploy.")
	}
	defer file.Close()
	dep, err := d.opts.Deploys.Deploy(r.Context(), deploy.DeployRequest{App: c.app, Artifact: file, FileName: file.FileName(),
		Size: -1, Meta: deploy.Meta{Author: c.s.author(), Message: msg}})
	if err != nil {
		return err
	}
	see(w, r, "/apps/%s/deployments/%d", c.app, dep.ID)
	return nil
}

// smallField reads the next part of a form, which must be the field
// name, bounded by the largest message a change may have.
func smallField(mr *multipart.Reader, name string) (string, error) {
	p, err := mr.NextPart()
	if err != nil || p.FormName() != name {
		return "", errUploadForm
	}
	defer p.Close()
	b, err := io.ReadAll(io.LimitReader(p, store.MaxMessageBytes+1))
	if err != nil {
		return "", errUploadForm
	}
	if len(b) > store.MaxMessageBytes {
		return "", badRequest(fmt.Sprintf("The %s is over %d bytes; shorten it.", name, store.MaxMessageBytes))
	}
	return string(b), nil
}

func (d *Dashboard) cancel(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := d.opts.Deploys.Cancel(c.app); err != nil {
		return err
	}
	d.sessions.setFlash(c.s, "The deployment was asked to stop; the live release keeps serving.")
	if next := r.PostForm.Get("id"); next != "" {
		if id, err := strconv.Atoi(next); err == nil {
			see(w, r, "/apps/%s/deployments/%d", c.app, id)
			return nil
		}
	}
	see(w, r, "/apps/%s/deployments", c.app)
	return nil
}

// deploymentID reads the path's deployment number, as the API does.
func deploymentID(r *http.Request) (int, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 1 {
		return 0, badRequest(fmt.Sprintf("Deployment %q is not a deployment number.", r.PathValue("id")))
	}
	return id, nil
}

// deployment shows a deployment's steps; while it runs, the page's script
// follows it (deploymentEvents) until it ends.
func (d *Dashboard) deployment(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := deploymentID(r)
	if err != nil {
		return err
	}
	dep, err := d.opts.API.Deployment(r.Context(), c.app, id)
	if err != nil {
		return err
	}
	d.render(w, r, c.s, http.StatusOK, "deployment", view{Title: fmt.Sprintf("Deployment %d of %s", id, c.app), App: c.app,
		Tab: "deployments", Data: dep})
	return nil
}

// deploymentEvents streams a deployment as the API does, as server-sent
// events: its events from the first, then the finished deployment.
func (d *Dashboard) deploymentEvents(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := deploymentID(r)
	if err != nil {
		return err
	}
	r.Header.Set("Accept", "text/event-stream")
	return d.opts.API.FollowDeployment(w, r, c.app, id)
}

// errNoChange is what a form that changes nothing says.
var errNoChange = errors.New("nothing changed")
