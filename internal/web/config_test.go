package web

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/settings"
)

// TestChangeOf: the settings form makes one change holding only what
// differs, secrets kept unless a new value is typed, and refuses what
// cannot be meant.
func TestChangeOf(t *testing.T) {
	cur := settings.Settings{Env: map[string]string{"A": "1", "S": settings.SecretMask}, Secrets: []string{"S"}, Command: "run", DrainTimeout: 5}
	row := func(kv ...string) url.Values {
		v := url.Values{"rows": {"3"}, "command": {"run"}, "opt.drain_timeout": {"5"}, "opt.access_log.present": {"1"},
			"name.0": {"A"}, "value.0": {"1"}, "name.1": {"S"}, "value.1": {""}, "secret.1": {"1"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "-" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	tests := []struct {
		name string
		form url.Values
		want settings.Change
		err  string
	}{
		{"as it is", row(), settings.Change{}, ""},
		{"a new variable and a new secret", row("name.2", "B", "value.2", "2", "rows", "4", "name.3", "K", "value.3", "k", "secret.3", "1"),
			settings.Change{Set: map[string]string{"B": "2", "K": "k"}, Secrets: []string{"K"}}, ""},
		{"an edit", row("value.0", "9"), settings.Change{Set: map[string]string{"A": "9"}}, ""},
		{"an ordinary variable made secret keeps its value", row("secret.0", "1"), settings.Change{Set: map[string]string{"A": "1"}, Secrets: []string{"A"}}, ""},
		{"a secret given a new value", row("value.1", "new"), settings.Change{Set: map[string]string{"S": "new"}, Secrets: []string{"S"}}, ""},
		{"a secret made ordinary without a value", row("secret.1", "-"), settings.Change{}, "To make S an ordinary variable, give it a new value"},
		{"a removal", row("remove.0", "1"), settings.Change{Unset: []string{"A"}}, ""},
		{"a value without a name", row("value.2", "x"), settings.Change{}, "Row 3 has a value but no name"},
		{"a name twice", row("name.2", "B", "value.2", "x", "rows", "4", "name.3", "B", "value.3", "y"), settings.Change{}, "B is in the table twice"},
		{"the command, with a textarea's line ends", row("command", "a\r\nb"), settings.Change{Command: new("a\nb")}, ""},
		{"the command back to the stack's", row("command", "  "), settings.Change{Command: new("")}, ""},
		{"an option back to its default", row("opt.drain_timeout", ""), settings.Change{Options: map[string]any{"drain_timeout": 0}}, ""},
		{"a boolean option", row("opt.access_log", "1"), settings.Change{Options: map[string]any{"access_log": true}}, ""},
		{"a text option", row("opt.warmup_path", " /ready "), settings.Change{Options: map[string]any{"warmup_path": "/ready"}}, ""},
		{"a number that is none", row("opt.drain_timeout", "ten"), settings.Change{}, "drain timeout must be a whole number"},
		{"rows out of bounds", row("rows", "999999"), settings.Change{}, "rows field is missing or out of bounds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := changeOf(tt.form, cur)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("got %+v, %v; want an error saying %q", got, err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestChart: bars scale to a round number, errors are drawn apart, and
// the chart says its totals in words.
func TestChart(t *testing.T) {
	minutes := make([]router.Minute, 60)
	for i := range minutes {
		minutes[i].Start = time.Unix(int64(i*60), 0)
	}
	minutes[59] = router.Minute{Requests: 37, Errors: 3}
	svg := string(chart(minutes))
	for _, want := range []string{"50/min", "37 in all", "3 with a 5xx status", `class="err"`, "at most 37 in a minute"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the chart lacks %q:\n%s", want, svg)
		}
	}
	for n, want := range map[uint64]uint64{0: 1, 1: 1, 3: 5, 37: 50, 100: 100, 101: 200, 999: 1000} {
		if got := niceCeil(n); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for next, want := range map[string]string{
		"/apps/promo?x=1": "/apps/promo?x=1", "": "/", "//evil.example": "/", "/\\evil.example": "/",
		"https://evil.example/": "/", "javascript:alert(1)": "/", "/a\r\nSet-Cookie: x": "/",
		// Browsers drop tabs and newlines from a URL, and read a backslash
		// as a slash: each of these is //evil.example to them.
		"/\t/evil.example": "/", "/\n/evil.example": "/", "\t//evil.example": "/", "/\t\\evil.example": "/",
		"/\x00/evil.example": "/",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}

// TestSessionBound: the session table never holds more than maxSessions;
// the one that ends soonest goes first.
func TestSessionBound(t *testing.T) {
	now := time.Unix(0, 0)
	ss := newSessions(time.Hour, func() time.Time { return now })
	first := ss.create(principalFor("admin"), "g")
	for i := range maxSessions + 10 {
		now = now.Add(time.Millisecond)
		ss.create(principalFor(fmt.Sprint("c", i)), "g") // each a token of its own: the bound of all
	}
	if n := len(ss.m); n > maxSessions {
		t.Errorf("%d sessions kept, want at most %d", n, maxSessions)
	}
	if _, ok := ss.m[first.id]; ok {
		t.Errorf("the session that ends soonest was kept")
	}
}

// TestSessionsPerToken: one token's sign-ins push out only its own
// sessions, never another's: a deploy credential signing in again and
// again cannot sign the admin out.
func TestSessionsPerToken(t *testing.T) {
	now := time.Unix(0, 0)
	ss := newSessions(time.Hour, func() time.Time { return now })
	admin := ss.create(principalFor("admin"), "g")
	first := ss.create(principalFor("ci"), "g")
	for range maxSessions + 10 {
		now = now.Add(time.Millisecond)
		ss.create(principalFor("ci"), "g")
	}
	if _, ok := ss.m[admin.id]; !ok {
		t.Errorf("another token's sign-ins pushed the admin's session out")
	}
	if _, ok := ss.m[first.id]; ok {
		t.Errorf("the token's session that ends soonest was kept")
	}
	n := 0
	for _, s := range ss.m {
		if s.p.Credential == "ci" {
			n++
		}
	}
	if n > maxSessionsPerToken {
		t.Errorf("%d sessions of one token, want at most %d", n, maxSessionsPerToken)
	}
}

func principalFor(id string) api.Principal {
	return api.Principal{Credential: id, Admin: id == "admin"}
}
