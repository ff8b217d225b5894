package web

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"
)

// live answers with server-sent events: a "fragment" event holding what
// render makes, at once and then every LiveEvery while it changes, until
// the client goes away or the daemon stops (which ends the request's
// context). The page's script puts the fragment in place of the part it
// came from; render makes it with the page's own templates, so whatever
// an app printed is escaped in it as on the page.
func (d *Dashboard) live(w http.ResponseWriter, r *http.Request, render func(context.Context) (string, error)) error {
	first, err := render(r.Context())
	if err != nil {
		return err // before anything is written: an error page
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	sent := first
	writeEvent(w, "fragment", first)
	rc.Flush()
	tick := time.NewTicker(d.opts.LiveEvery)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-tick.C:
		}
		next, err := render(r.Context())
		if err != nil {
			// The app is gone, or the store is: say so where the part was,
			// and end the stream (the page's script does not reconnect).
			_, msg := d.answer(r.Context(), err)
			writeEvent(w, "gone", msg)
			rc.Flush()
			return nil
		}
		if next == sent {
			io.WriteString(w, ": nothing changed\n\n") // a comment keeps proxies from timing out
		} else {
			writeEvent(w, "fragment", next)
			sent = next
		}
		if rc.Flush() != nil {
			return nil
		}
	}
}

// writeEvent writes one server-sent event; each line of data is a data
// field, as the format wants.
func writeEvent(w io.Writer, name, data string) {
	var b strings.Builder
	b.WriteString("event: ")
	b.WriteString(name)
	b.WriteByte('\n')
	for line := range strings.SplitSeq(strings.ReplaceAll(data, "\r", ""), "\n") {
		b.WriteString("data: ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	io.WriteString(w, b.String())
}
