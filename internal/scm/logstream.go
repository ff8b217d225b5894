package scm

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/slipway-dev/slipway/internal/logs"
)

// silence is how long the log stream waits, silent, before it says so; Kudu
// says so after each silent minute.
const silence = time.Minute

// logStream is GET {scm}/api/logstream: plain text that never ends (but
// with the client or the daemon): Kudu's welcome line, then the app's log
// lines as they come — platform events and the instances' output, as
// `slipway logs` shows them — and a line after each silent minute, as
// `az webapp log tail` expects.
func (s *Site) logStream(w http.ResponseWriter, r *http.Request) error {
	app := r.PathValue("app")
	if _, err := s.opts.Store.App(r.Context(), app); err != nil {
		return err
	}
	_, sub, cancel, err := s.opts.Logs.Subscribe(app, 0)
	if err != nil {
		return err
	}
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	fmt.Fprintf(w, "%s  Welcome, you are now connected to log-streaming service.\n", time.Now().UTC().Format("2006-01-02T15:04:05"))
	rc.Flush()
	quiet := time.NewTicker(silence)
	defer quiet.Stop()
	minutes := 0
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-quiet.C:
			minutes++
			fmt.Fprintf(w, "%s  No new trace in the past %d min(s).\n", time.Now().UTC().Format("2006-01-02T15:04:05"), minutes)
		case l, ok := <-sub.Lines():
			if !ok { // the app was deleted
				return nil
			}
			writeLine(w, l)
			for more := true; more; {
				select {
				case l, ok := <-sub.Lines():
					if more = ok; ok {
						writeLine(w, l)
					}
				default:
					more = false
				}
			}
			minutes = 0
			quiet.Reset(silence)
		}
		if err := rc.Flush(); err != nil {
			return nil // the client is gone
		}
	}
}

func writeLine(w io.Writer, l logs.Line) { io.WriteString(w, l.Format()+"\n") }

// logsZip is GET {scm}/api/logs/docker/zip: the app's kept log files, as
// `slipway logs download` gets them.
func (s *Site) logsZip(w http.ResponseWriter, r *http.Request) error {
	app := r.PathValue("app")
	if _, err := s.opts.Store.App(r.Context(), app); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-logs.zip"`, app))
	if err := s.opts.Logs.WriteZip(w, app, func(logs.Line) bool { return true }); err != nil {
		// The answer has begun: all that is left is to say so in the log.
		s.logger.Warn("downloading logs", "app", app, "err", err)
	}
	return nil
}

// runtime is GET {scm}/diagnostics/runtime; the GitHub Action reads the
// OS from it to choose how to deploy.
func (s *Site) runtime(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"system": map[string]string{"os_name": "Unix (Slipway)"}})
	return nil
}

// isDeploying is GET {scm}/api/isdeploying: {"value": "True"} while a
// deployment of the app runs.
func (s *Site) isDeploying(w http.ResponseWriter, r *http.Request) error {
	app := r.PathValue("app")
	if _, err := s.opts.Store.App(r.Context(), app); err != nil {
		return err
	}
	holder, err := s.opts.Store.LockHolder(r.Context(), app)
	if err != nil {
		return err
	}
	v := "False"
	if holder != 0 {
		v = "True"
	}
	writeJSON(w, http.StatusOK, map[string]string{"value": v})
	return nil
}
