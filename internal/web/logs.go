package web

import (
	"net/http"
	"net/url"

	"github.com/slipway-dev/slipway/internal/api"
)

type logsData struct {
	Instances []api.Instance
	// Stream is the URL the page's script follows, filters added.
	Stream, Download string
}

// logsPage shows the app's log live: the page's script follows logStream
// and writes each line as text, never as markup.
func (d *Dashboard) logsPage(w http.ResponseWriter, r *http.Request, c *call) error {
	st, err := d.opts.API.Status(r.Context(), c.app)
	if err != nil {
		return err
	}
	data := logsData{Instances: st.Instances, Stream: pathf("/apps/%s/logs/stream", c.app), Download: pathf("/apps/%s/logs/download", c.app)}
	d.render(w, r, c.s, http.StatusOK, "logs", view{Title: "Logs of " + c.app, App: c.app, Tab: "logs", Data: data})
	return nil
}

// logStream is the API's log stream as server-sent events, followed, with
// the page's filters (tail, instance, source) passed on as the API reads
// them.
func (d *Dashboard) logStream(w http.ResponseWriter, r *http.Request, c *call) error {
	q := url.Values{"follow": {"1"}, "tail": {"200"}}
	for _, k := range []string{"instance", "source", "tail"} {
		if v := r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	r.URL.RawQuery = q.Encode()
	r.Header.Set("Accept", "text/event-stream")
	return d.opts.API.StreamLogs(w, r, c.app)
}

// logDownload is the API's download of the kept logs, a zip.
func (d *Dashboard) logDownload(w http.ResponseWriter, r *http.Request, c *call) error {
	return d.opts.API.DownloadLogs(w, r, c.app)
}
