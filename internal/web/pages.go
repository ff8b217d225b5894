package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFS embed.FS

// staticFiles serves the style sheet and the script.
func staticFiles() http.Handler {
	sub, _ := fs.Sub(staticFS, "static") // a directory embedded above: cannot fail
	return http.FileServerFS(sub)
}

// pageNames are the pages, each templates/NAME.html with the layout.
var pageNames = []string{"signin", "error", "apps", "overview", "deploy", "deployment", "history", "rollback",
	"settings", "logs", "access", "credential"}

// pages are the parsed templates, one set per page.
type pages struct {
	sets map[string]*template.Template
}

func loadPages() *pages {
	p := &pages{sets: make(map[string]*template.Template)}
	for _, name := range pageNames {
		p.sets[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFiles,
			"templates/layout.html", "templates/parts.html", "templates/"+name+".html"))
	}
	return p
}

// view is what every page gets.
type view struct {
	Title string
	// App names the app whose pages the navigation shows; Tab is the one
	// shown.
	App, Tab string
	// Who signed in, and the session's CSRF token for its forms; nil on
	// the sign-in page.
	Session *sessionView
	// Flash is a note left by the last change; Error what went wrong.
	Flash, Error string
	Data         any
}

type sessionView struct {
	Who, CSRF string
	Admin     bool
}

// render writes page with v, for session s (nil when signed out).
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, s *session, status int, page string, v view) {
	if s != nil {
		v.Session = &sessionView{Who: s.who(), CSRF: s.csrf, Admin: s.p.Admin}
		if v.Flash == "" && status < 300 {
			v.Flash = d.sessions.takeFlash(s)
		}
	}
	var b bytes.Buffer
	if err := d.pages.sets[page].ExecuteTemplate(&b, "layout", v); err != nil {
		d.logger.Error("rendering a dashboard page", "page", page, "err", err)
		http.Error(w, "the page could not be rendered; the daemon's log says why", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// fragment renders the template name of page's set, for a live update.
func (d *Dashboard) fragment(page, name string, v view) (string, error) {
	var b bytes.Buffer
	err := d.pages.sets[page].ExecuteTemplate(&b, name, v)
	return b.String(), err
}

// who names the session's token for people.
func (s *session) who() string {
	if s.p.Admin {
		return "admin"
	}
	return "deploy credential " + s.p.Credential + " of " + s.p.App
}

// pathf formats a path, each string argument escaped as one segment.
func pathf(format string, args ...any) string {
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = url.PathEscape(s)
		}
	}
	return fmt.Sprintf(format, args...)
}

var funcs = template.FuncMap{
	"when":     when,
	"since":    since,
	"duration": duration,
	"bytes":    byteSize,
	"percent":  func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"ms":       func(secs float64) string { return fmt.Sprintf("%.0f ms", 1000*secs) },
	"rate":     func(f float64) string { return fmt.Sprintf("%.1f/s", f) },
	"short":    func(s string, n int) string { return shorten(s, n) },
	"join":     strings.Join,
	"add":      func(a, b int) int { return a + b },
	"path":     pathf,
	"chart":    chart,
	"took":     took,
	"dict":     dict,
}

// took is how long a deployment ran, or has run so far.
func took(started, finished time.Time) string {
	if finished.IsZero() {
		return "running for " + since(started)
	}
	return duration(finished.Sub(started))
}

// dict makes a map of key, value pairs, to hand a template several values.
func dict(kv ...any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// when is a time for people: in UTC here, and in the browser's zone once
// the script has read its datetime.
func when(t time.Time) template.HTML {
	if t.IsZero() {
		return "—"
	}
	t = t.UTC()
	return template.HTML(fmt.Sprintf(`<time datetime="%s">%s</time>`, t.Format(time.RFC3339), t.Format("2006-01-02 15:04:05 UTC")))
}

// clock is the dashboard's clock, replaced by the golden tests.
var clock = time.Now

// since is how long ago t was, like "3m 4s".
func since(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return duration(clock().Sub(t))
}

// duration is d for people, to the second.
func duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm %ds", m, s)
	default:
		return fmt.Sprintf("%ds", s)
	}
}

func byteSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	exp := int(math.Log(float64(n)) / math.Log(1024))
	exp = min(exp, 4)
	return fmt.Sprintf("%.1f %ciB", float64(n)/math.Pow(1024, float64(exp)), "KMGT"[exp-1])
}

// shorten cuts s to n runes, with an ellipsis.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
