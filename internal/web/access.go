package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/slipway-dev/slipway/internal/access"
	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/scm"
)

type accessData struct {
	Policy      api.Policy
	Domains     []api.Domain
	Credentials []api.Credential
	// Leases are the leases the app's instances hold.
	Leases []api.Lease
}

func (d *Dashboard) accessData(r *http.Request, c *call) (accessData, error) {
	var out accessData
	var err error
	if out.Policy, err = d.opts.API.Policy(r.Context(), c.app); err != nil {
		return out, err
	}
	ds, err := d.opts.Deploys.Domains(r.Context(), c.app)
	if err != nil {
		return out, err
	}
	for _, dm := range ds {
		out.Domains = append(out.Domains, api.Domain{Name: dm.Name, App: dm.App, ACME: dm.ACME, Created: dm.Created})
	}
	if out.Credentials, err = d.opts.API.Credentials(r.Context(), c.app); err != nil {
		return out, err
	}
	out.Leases, err = d.opts.API.Leases(r.Context(), c.app)
	return out, err
}

func (d *Dashboard) accessPage(w http.ResponseWriter, r *http.Request, c *call) error {
	data, err := d.accessData(r, c)
	if err != nil {
		return err
	}
	d.render(w, r, c.s, http.StatusOK, "access", view{Title: "Access and names of " + c.app, App: c.app, Tab: "access", Data: data})
	return nil
}

// backToAccess returns to the access page with a note, or the policy's
// warning when it has one.
func (d *Dashboard) backToAccess(w http.ResponseWriter, r *http.Request, c *call, p api.Policy, note string) error {
	if p.Warning != "" {
		note += " Warning: " + p.Warning
	}
	d.sessions.setFlash(c.s, note)
	see(w, r, "/apps/%s/access", c.app)
	return nil
}

func (d *Dashboard) addRule(w http.ResponseWriter, r *http.Request, c *call) error {
	f := r.PostForm
	prio, err := strconv.Atoi(strings.TrimSpace(f.Get("priority")))
	if err != nil {
		return badRequest("Give the rule a priority, a whole number: the lowest priority that matches an address decides.")
	}
	p, err := d.opts.API.AddRule(r.Context(), c.app, api.AddRuleRequest{Scope: f.Get("scope"), Priority: prio,
		Action: f.Get("action"), Network: strings.TrimSpace(f.Get("network")), Name: strings.TrimSpace(f.Get("name"))})
	if err != nil {
		return err
	}
	return d.backToAccess(w, r, c, p, fmt.Sprintf("Rule %d added to the %s rules; it applies at once.", prio, scopeName(f.Get("scope"))))
}

func scopeName(s string) string {
	if s == "deploy" {
		return "deploy"
	}
	return "app"
}

func (d *Dashboard) removeRule(w http.ResponseWriter, r *http.Request, c *call) error {
	prio, err := strconv.Atoi(r.PostForm.Get("priority"))
	if err != nil {
		return badRequest("The rule's priority is not a number; reload the page.")
	}
	p, err := d.opts.API.RemoveRule(r.Context(), c.app, r.PostForm.Get("scope"), prio)
	if err != nil {
		return err
	}
	return d.backToAccess(w, r, c, p, fmt.Sprintf("Rule %d removed from the %s rules.", prio, scopeName(r.PostForm.Get("scope"))))
}

func (d *Dashboard) httpsOnly(w http.ResponseWriter, r *http.Request, c *call) error {
	on := r.PostForm.Has("https_only")
	p, err := d.opts.API.UpdatePolicy(r.Context(), c.app, func(p *access.Policy) error {
		p.HTTPSOnly = on
		return nil
	})
	if err != nil {
		return err
	}
	note := "HTTPS-only is off: plain HTTP is served."
	if on {
		note = "HTTPS-only is on: plain HTTP requests are redirected to HTTPS."
	}
	return d.backToAccess(w, r, c, p, note)
}

func (d *Dashboard) addDomain(w http.ResponseWriter, r *http.Request, c *call) error {
	dm, added, err := d.opts.Deploys.AddDomain(r.Context(), c.app, strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Has("acme"))
	if err != nil {
		return err
	}
	note := fmt.Sprintf("%s is routed to %s now.", dm.Name, c.app)
	if !added {
		note = fmt.Sprintf("%s was %s's already.", dm.Name, c.app)
	}
	d.sessions.setFlash(c.s, note)
	see(w, r, "/apps/%s/access", c.app)
	return nil
}

func (d *Dashboard) removeDomain(w http.ResponseWriter, r *http.Request, c *call) error {
	name := r.PostForm.Get("name")
	if err := d.opts.Deploys.RemoveDomain(r.Context(), c.app, name); err != nil {
		return err
	}
	d.sessions.setFlash(c.s, fmt.Sprintf("%s is no longer routed to %s.", name, c.app))
	see(w, r, "/apps/%s/access", c.app)
	return nil
}

// createCredential makes a deploy credential and shows its token, this
// once, on a page of its own (not cached: see render).
func (d *Dashboard) createCredential(w http.ResponseWriter, r *http.Request, c *call) error {
	nc, err := d.opts.API.CreateCredential(r, c.app, api.CreateCredentialRequest{Name: strings.TrimSpace(r.PostForm.Get("name")), Author: c.s.author()})
	if err != nil {
		return err
	}
	if r.PostForm.Has("profile") {
		return publishProfile(w, nc)
	}
	d.render(w, r, c.s, http.StatusCreated, "credential", view{Title: "New deploy credential of " + c.app, App: c.app, Tab: "access", Data: nc})
	return nil
}

func (d *Dashboard) revokeCredential(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PostForm.Get("id")
	if err := d.opts.API.RevokeCredential(r.Context(), c.app, id); err != nil {
		return err
	}
	d.sessions.setFlash(c.s, fmt.Sprintf("Credential %s revoked: its token no longer works, and its dashboard sessions have ended.", id))
	see(w, r, "/apps/%s/access", c.app)
	return nil
}

// publishProfile answers with the new credential as a publish profile
// (.PublishSettings), a download, as 'slipway credentials create
// --publish-profile' writes it: the token is in it, and shown nowhere
// else.
func publishProfile(w http.ResponseWriter, nc api.NewCredential) error {
	if nc.SCMURL == "" {
		return &pageError{status: http.StatusConflict, msg: "This daemon serves no App Service deploy endpoints, so a publish profile would point nowhere; the credential was made: revoke it, or use its token with slipway."}
	}
	b, err := scm.PublishProfile(scm.Profile{App: nc.App, SiteURL: nc.SCMURL, Password: nc.Token, AppURL: nc.AppURL})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.PublishSettings"`, nc.App))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, err = w.Write(b)
	return err
}
