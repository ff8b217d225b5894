package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/logs"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain text", "Started in 2.1 s", "Started in 2.1 s"},
		{"tab and newline kept", "a\tb\nc", "a\tb\nc"},
		{"non-ASCII kept", "grüße, 日本, 🚀, ½", "grüße, 日本, 🚀, ½"},
		{"a literal replacement character kept", "bad \ufffd byte", "bad \ufffd byte"},
		{"a literal backslash kept", `C:\x1b`, `C:\x1b`},
		{"window title (OSC 0)", "\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"clipboard write (OSC 52)", "\x1b]52;c;ZXZpbA==\x1b\\", `\x1b]52;c;ZXZpbA==\x1b\`},
		{"clear screen", "\x1b[2J\x1b[H", `\x1b[2J\x1b[H`},
		{"cursor up", "ok\x1b[5A", `ok\x1b[5A`},
		{"carriage return", "fine\rforged", `fine\x0dforged`},
		{"backspace", "rm -rf /\b\b\b\b\b\b\bls", `rm -rf /\x08\x08\x08\x08\x08\x08\x08ls`},
		{"NUL and DEL", "a\x00b\x7f", `a\x00b\x7f`},
		{"C1 CSI", "\u009b2J", `\u009b2J`},
		{"C1 OSC and ST", "\u009d0;pwned\u009c", `\u009d0;pwned\u009c`},
		{"C1 next line", "a\u0085b", `a\u0085b`},
		{"a byte that is not UTF-8", "a\xffb", `a\xffb`},
		{"a cut-off rune", "caf\xc3", `caf\xc3`},
		{"a raw C1 byte", "a\x9bb", `a\x9bb`},
		{"U+00A0 is no control", "a\u00a0b", "a\u00a0b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sanitize(tt.in); got != tt.want {
				t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEscapeKeepsNothingUnlessAsked(t *testing.T) {
	if got, want := escape("a\tb\nc", ""), `a\x09b\x0ac`; got != want {
		t.Errorf("escape(%q, \"\") = %q, want %q", "a\tb\nc", got, want)
	}
}

// hostile is what an app may print: a window title, a clipboard write,
// a cleared screen, a cursor move, a C1 CSI and a carriage return.
const hostile = "title \x1b]0;pwned\x07 clip \x1b]52;c;ZXZpbA==\x07 clear \x1b[2J up \x1b[5A c1 \u009b2J cr \rforged"

// fakeDaemon answers the routes a test names with fixed bodies. The
// tests that use it are about what the CLI does with the bytes the daemon
// sends; the e2e test TestAppOutputIsDefused runs the real daemon and a
// real app.
func fakeDaemon(t *testing.T, routes map[string]string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := routes[r.Method+" "+r.URL.Path]
		w.Header().Set("Content-Type", "application/json") // as the API answers
		if strings.HasSuffix(r.URL.Path, "/logs") || strings.HasSuffix(r.URL.Path, "/events") {
			w.Header().Set("Content-Type", "application/x-ndjson")
		}
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error": "no such route in the fake"}`))
			return
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// run runs the CLI with args against url and returns what it wrote to
// stdout and stderr.
func run(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no login of the user's
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--url", url, "--token", "slw_test_x"}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestLogsShowAppOutputDefused(t *testing.T) {
	line, _ := json.Marshal(logs.Line{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Source: "promo-v1-1",
		Stream: logs.StreamStdout, Release: 1, Text: hostile})
	url := fakeDaemon(t, map[string]string{"GET /api/v1/apps/promo/logs": string(line) + "\n"})

	out, err := run(t, url, "logs", "-a", "promo")
	if err != nil {
		t.Fatal(err)
	}
	if sanitize(out) != out {
		t.Errorf("slipway logs wrote control characters:\n%q", out)
	}
	for _, want := range []string{`title \x1b]0;pwned\x07 clip \x1b]52;c;ZXZpbA==\x07`, `clear \x1b[2J up \x1b[5A`, `c1 \u009b2J cr \x0dforged`} {
		if !strings.Contains(out, want) {
			t.Errorf("slipway logs: the output lacks %s:\n%s", want, out)
		}
	}

	out, err = run(t, url, "logs", "-a", "promo", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if want := string(line) + "\n"; out != want {
		t.Errorf("slipway logs -o json: got\n%q\nwant the daemon's line exact:\n%q", out, want)
	}
}

func TestDeploymentsShowAppTextDefused(t *testing.T) {
	deps, _ := json.Marshal([]api.Deployment{{ID: 1, App: "promo", Kind: "deploy", State: api.StateFailed, Release: 2,
		Started: time.Now(), Finished: time.Now(), Author: "ci\tbot", Reason: "instance exited; its last output:\n    " + hostile}})
	url := fakeDaemon(t, map[string]string{"GET /api/v1/apps/promo/deployments": string(deps)})

	out, err := run(t, url, "deployments", "-a", "promo")
	if err != nil {
		t.Fatal(err)
	}
	if sanitize(out) != out {
		t.Errorf("slipway deployments wrote control characters:\n%q", out)
	}
	if lines := strings.Count(out, "\n"); lines != 2 {
		t.Errorf("slipway deployments: %d lines, want a header and one row:\n%s", lines, out)
	}
	if want := `ci\x09bot`; !strings.Contains(out, want) {
		t.Errorf("slipway deployments: a tab in a cell is not shown as %s:\n%s", want, out)
	}

	out, err = run(t, url, "deployments", "-a", "promo", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got []api.Deployment
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 || got[0].Reason != "instance exited; its last output:\n    "+hostile {
		t.Errorf("slipway deployments -o json does not carry the reason exact (%v):\n%s", err, out)
	}
}
