package web

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// varRow is one environment variable of the settings table. A secret's
// value is never sent to the browser: its row shows it as ****, and an
// empty value field keeps it.
type varRow struct {
	Name, Value string
	Secret      bool
}

// optionRow is one option of the settings form.
type optionRow struct {
	Key, Name, Help string
	// Kind is int, string or bool.
	Kind string
	// Value is the stored value, "" for the default, which Default says.
	Value, Default string
	Checked        bool
}

type settingsData struct {
	Vars      []varRow
	Command   string
	Options   []optionRow
	Instances int
	// Live is the live release's number, 0 before the first; Next the
	// number a change would make.
	Live, Next int
}

func (d *Dashboard) settingsPage(w http.ResponseWriter, r *http.Request, c *call) error {
	v, err := d.opts.API.Settings(r.Context(), c.app)
	if err != nil {
		return err
	}
	st, err := d.opts.API.Status(r.Context(), c.app)
	if err != nil {
		return err
	}
	rels, err := d.opts.API.Releases(r.Context(), c.app)
	if err != nil {
		return err
	}
	s := v.Settings // masked
	data := settingsData{Command: s.Command, Instances: v.Effective.Instances, Live: st.Release, Next: len(rels) + 1}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		row := varRow{Name: k, Secret: s.IsSecret(k)}
		if !row.Secret {
			row.Value = s.Env[k]
		}
		data.Vars = append(data.Vars, row)
	}
	for _, o := range settings.Options() {
		data.Options = append(data.Options, optionRowOf(o, s, v.Effective))
	}
	d.render(w, r, c.s, http.StatusOK, "settings", view{Title: "Configuration of " + c.app, App: c.app, Tab: "settings", Data: data})
	return nil
}

func optionRowOf(o settings.Option, s, eff settings.Settings) optionRow {
	row := optionRow{Key: o.Key, Name: o.Name, Help: o.Usage(), Default: o.Format(eff)}
	switch v := o.Value(s).(type) {
	case bool:
		row.Kind, row.Checked = "bool", v
	case int:
		row.Kind = "int"
		if v != 0 {
			row.Value = strconv.Itoa(v)
		}
	case string:
		row.Kind, row.Value = "string", v
	}
	return row
}

// maxRows bounds the rows a settings form may send.
const maxRows = settings.MaxEnvVars + 100

// changeOf reads the settings form as one settings.Change against cur,
// the app's settings with secrets masked: rows of variables (name.I,
// value.I, secret.I, remove.I for I below rows), command, and an opt.KEY
// per option. A variable, the command or an option is in the change only
// where the form differs from cur.
func changeOf(form url.Values, cur settings.Settings) (settings.Change, error) {
	var c settings.Change
	rows, err := strconv.Atoi(form.Get("rows"))
	if err != nil || rows < 0 || rows > maxRows {
		return c, badRequest("The form's rows field is missing or out of bounds; reload the page.")
	}
	for i := range rows {
		if err := addRow(&c, form, i, cur); err != nil {
			return c, err
		}
	}
	if cmd, ok := form["command"]; ok {
		v := strings.ReplaceAll(cmd[0], "\r\n", "\n") // a textarea's line ends
		if strings.TrimSpace(v) == "" {
			v = ""
		}
		if v != cur.Command {
			c.Command = &v
		}
	}
	for _, o := range settings.Options() {
		if err := addOption(&c, form, o, cur); err != nil {
			return c, err
		}
	}
	return c, nil
}

// addRow adds row i of the variables to c, where it changes something.
func addRow(c *settings.Change, form url.Values, i int, cur settings.Settings) error {
	n := strconv.Itoa(i)
	name := strings.TrimSpace(form.Get("name." + n))
	value := strings.ReplaceAll(form.Get("value."+n), "\r\n", "\n")
	_, secret := form["secret."+n] // a checkbox is sent only when checked
	old, exists := cur.Env[name]
	switch {
	case name == "" && value != "":
		return badRequest(fmt.Sprintf("Row %d has a value but no name; give it a name, or clear the value.", i+1))
	case name == "":
		return nil
	case form.Has("remove." + n):
		if exists {
			c.Unset = append(c.Unset, name)
		}
		return nil
	case exists && cur.IsSecret(name) && value == "":
		if !secret {
			return badRequest(fmt.Sprintf("To make %s an ordinary variable, give it a new value: a secret's value is never shown, so it cannot be shown once it is no longer secret.", name))
		}
		return nil // a secret kept as it is
	case exists && !cur.IsSecret(name) && value == old && !secret:
		return nil // unchanged
	case exists && !cur.IsSecret(name) && value == "" && secret:
		value = old // an ordinary variable made secret, its value kept
	}
	if c.Set == nil {
		c.Set = make(map[string]string)
	}
	if _, dup := c.Set[name]; dup {
		return badRequest(fmt.Sprintf("%s is in the table twice; keep one row of it.", name))
	}
	c.Set[name] = value
	if secret {
		c.Secrets = append(c.Secrets, name)
	}
	return nil
}

// addOption adds option o to c where the form's opt.KEY differs from cur;
// an empty field is the default.
func addOption(c *settings.Change, form url.Values, o settings.Option, cur settings.Settings) error {
	key := "opt." + o.Key
	var v any
	switch old := o.Value(cur).(type) {
	case bool:
		if _, ok := form[key+".present"]; !ok {
			return nil // not in this form
		}
		b := form.Has(key)
		if b == old {
			return nil
		}
		v = b
	case int:
		raw, ok := form[key]
		if !ok {
			return nil
		}
		n := 0
		if t := strings.TrimSpace(raw[0]); t != "" {
			var err error
			if n, err = strconv.Atoi(t); err != nil {
				return badRequest(fmt.Sprintf("%s must be a whole number, not %q; leave it empty for the default.", o.Name, t))
			}
		}
		if n == old {
			return nil
		}
		v = n
	case string:
		raw, ok := form[key]
		if !ok {
			return nil
		}
		t := strings.TrimSpace(raw[0])
		if t == old {
			return nil
		}
		v = t
	}
	if c.Options == nil {
		c.Options = make(map[string]any)
	}
	c.Options[o.Key] = v
	return nil
}

// saveSettings makes the form's changes one settings change, which goes
// live through a swap as a new release (or waits for the first deploy).
func (d *Dashboard) saveSettings(w http.ResponseWriter, r *http.Request, c *call) error {
	v, err := d.opts.API.Settings(r.Context(), c.app)
	if err != nil {
		return err
	}
	change, err := changeOf(r.PostForm, v.Settings)
	if err != nil {
		return err
	}
	if change.Empty() {
		d.sessions.setFlash(c.s, "Nothing changed: the form holds the settings the app has.")
		see(w, r, "/apps/%s/settings", c.app)
		return nil
	}
	dep, _, err := d.opts.Deploys.ChangeSettings(r.Context(), c.app, change, false, d.meta(r, c))
	return d.afterChange(w, r, c, dep, err, "/apps/%s/settings",
		fmt.Sprintf("Settings of %s saved; they take effect at its first deployment.", c.app))
}

// meta is who makes a change and why: the session, and the form's
// message.
func (d *Dashboard) meta(r *http.Request, c *call) deploy.Meta {
	return deploy.Meta{Author: c.s.author(), Message: r.PostForm.Get("message")}
}

// afterChange answers a change: its deployment's page, or back to page
// with a note when it changed nothing (the API's message) or took nothing
// live (saved).
func (d *Dashboard) afterChange(w http.ResponseWriter, r *http.Request, c *call, dep *store.Deployment, err error, page, saved string) error {
	if errors.Is(err, settings.ErrUnchanged) {
		d.sessions.setFlash(c.s, capitalize(err.Error())+".")
		see(w, r, page, c.app)
		return nil
	}
	if err != nil {
		return err
	}
	if dep != nil {
		see(w, r, "/apps/%s/deployments/%d", c.app, dep.ID)
		return nil
	}
	d.sessions.setFlash(c.s, saved)
	see(w, r, page, c.app)
	return nil
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (d *Dashboard) scale(w http.ResponseWriter, r *http.Request, c *call) error {
	n, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("instances")))
	if err != nil {
		return badRequest(fmt.Sprintf("Give the number of instances, 1 to %d.", settings.MaxInstances))
	}
	dep, err := d.opts.Deploys.Scale(r.Context(), c.app, n, d.meta(r, c))
	return d.afterChange(w, r, c, dep, err, "/apps/%s/settings",
		fmt.Sprintf("App %s will run %d instance(s) from its first deployment.", c.app, n))
}

func (d *Dashboard) restart(w http.ResponseWriter, r *http.Request, c *call) error {
	dep, err := d.opts.Deploys.Restart(r.Context(), c.app, d.meta(r, c))
	if err != nil {
		return err
	}
	see(w, r, "/apps/%s/deployments/%d", c.app, dep.ID)
	return nil
}
