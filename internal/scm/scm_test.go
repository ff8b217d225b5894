package scm

import (
	"crypto/tls"
	"encoding/xml"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/store"
)

func TestReadable(t *testing.T) {
	tests := []struct {
		name, message, author string
		want, wantAuthor      string
	}{
		{"GitHub Action",
			`{"type":"deployment","sha":"1a2b3c4d5e6f7a8b","repoName":"acme/promo","actor":"ana","slotName":"production","commitMessage":"Fix the cart\r\n\r\nThe long story."}`, "",
			"Fix the cart (commit 1a2b3c4 by ana in acme/promo)", "ana"},
		{"GitHub Action, author given", `{"type":"deployment","sha":"1a2b3c4","actor":"ana"}`, "bob",
			"commit 1a2b3c4 by ana", "bob"},
		{"Azure Pipelines", `{"type":"deployment","commitId":"abcdef0123","buildId":"42","buildNumber":"20260102.1","repoName":"promo","repoProvider":"TfsGit"}`, "Ana",
			"commit abcdef0 in promo, build 20260102.1", "Ana"},
		{"control characters in a field", `{"sha":"1a2b3c4","actor":"an\u001ba","commitMessage":"x\ty"}`, "",
			"x y (commit 1a2b3c4 by an a)", "an a"},
		{"other JSON", `{"note":"hi"}`, "", `{"note":"hi"}`, ""},
		{"plain text", "first\r\nsecond", "ana", "first\nsecond", "ana"},
		{"not JSON after all", "{oops", "", "{oops", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, author := readable(tt.message, tt.author)
			if got != tt.want || author != tt.wantAuthor {
				t.Errorf("readable(%q, %q) = %q, %q; want %q, %q", tt.message, tt.author, got, author, tt.want, tt.wantAuthor)
			}
		})
	}
	long := `{"sha":"1a2b3c4","actor":"ana","commitMessage":"` + strings.Repeat("x", 10_000) + `"}`
	if got, _ := readable(long, ""); len(got) > store.MaxMessageBytes {
		t.Errorf("a long commit message gave a message of %d bytes, over the bound of %d", len(got), store.MaxMessageBytes)
	}
}

func TestKuduStatus(t *testing.T) {
	ev := func(steps ...string) []store.Event {
		var out []store.Event
		for _, s := range steps {
			out = append(out, store.Event{Step: s})
		}
		return out
	}
	tests := []struct {
		name string
		d    store.Deployment
		want int
	}{
		{"just made", store.Deployment{State: store.StateRunning}, statusPending},
		{"received", store.Deployment{State: store.StateRunning, Events: ev(store.StepReceived)}, statusBuilding},
		{"warming up", store.Deployment{State: store.StateRunning, Events: ev(store.StepReceived, store.StepStarting, store.StepWarmingUp, "")}, statusDeploying},
		{"draining", store.Deployment{State: store.StateRunning, Events: ev(store.StepReceived, store.StepSwitched, store.StepDraining)}, statusDeploying},
		{"succeeded", store.Deployment{State: store.StateSucceeded}, statusSuccess},
		{"failed", store.Deployment{State: store.StateFailed}, statusFailed},
		{"cancelled", store.Deployment{State: store.StateCancelled}, statusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, text := kuduStatus(tt.d); got != tt.want || text == "" {
				t.Errorf("status %d %q, want %d with a text", got, text, tt.want)
			}
		})
	}
}

func TestPublishProfile(t *testing.T) {
	b, err := PublishProfile(Profile{App: "promo", SiteURL: "https://deploy.example.com:7443/scm/promo", Password: "slw_x_<&\">", AppURL: "https://promo.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Profiles []struct {
			PublishURL string `xml:"publishUrl,attr"`
			User       string `xml:"userName,attr"`
			Password   string `xml:"userPWD,attr"`
			AppURL     string `xml:"destinationAppUrl,attr"`
		} `xml:"publishProfile"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil || len(doc.Profiles) != 1 {
		t.Fatalf("the profile does not parse to one publishProfile (%v):\n%s", err, b)
	}
	p := doc.Profiles[0]
	// What the GitHub Action checks: no scheme, "scm" in the URL.
	if p.PublishURL != "deploy.example.com:7443/scm/promo" || p.User != "$promo" || p.Password != "slw_x_<&\">" || p.AppURL != "https://promo.example.com" {
		t.Errorf("profile %+v", p)
	}
	if _, err := PublishProfile(Profile{App: "promo", SiteURL: "/scm/promo"}); err == nil {
		t.Error("a relative site URL made a profile")
	}
}

func TestURL(t *testing.T) {
	r := httptest.NewRequest("GET", "/scm/promo/api/deployments", nil)
	r.Host = "deploy.example.com:7070"
	if got, want := New(Options{}).URL(r, "promo"), "http://deploy.example.com:7070/scm/promo"; got != want {
		t.Errorf("plain: %s, want %s", got, want)
	}
	r.TLS = &tls.ConnectionState{}
	if got, want := New(Options{}).URL(r, "promo"), "https://deploy.example.com:7070/scm/promo"; got != want {
		t.Errorf("TLS: %s, want %s", got, want)
	}
	if got, want := New(Options{PublicURL: "https://slipway.example.com/deploy/"}).URL(r, "promo"), "https://slipway.example.com/deploy/scm/promo"; got != want {
		t.Errorf("public URL: %s, want %s", got, want)
	}
}

func TestHistory(t *testing.T) {
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	deps := []store.Deployment{
		{ID: 1, Kind: store.KindDeploy, Release: 1, State: store.StateSucceeded, Started: at, Finished: at.Add(time.Minute)},
		{ID: 2, Kind: store.KindDeploy, Release: 2, State: store.StateFailed, Started: at.Add(time.Hour), Finished: at.Add(time.Hour)},
		{ID: 3, Kind: store.KindRecord, ExternalID: "17000", State: store.StateSucceeded, Started: at.Add(2 * time.Hour), Finished: at.Add(2 * time.Hour)},
	}
	h := &history{base: "https://x/scm/promo", deps: deps, active: 1, lastSuccess: &deps[0].Finished}
	if d, ok := h.find("17000"); !ok || d.ID != 3 {
		t.Errorf("find(17000) = %d, %v; want the record", d.ID, ok)
	}
	if _, ok := h.find("3"); ok {
		t.Error("find(3) found the record by its number; a record goes by its own id")
	}
	k := h.kudu(deps[2])
	if k.ID != "17000" || !k.IsReadonly || k.Active || k.URL != "https://x/scm/promo/api/deployments/17000" || k.LogURL != k.URL+"/log" {
		t.Errorf("the record as Kudu shows it: %+v", k)
	}
	if k := h.kudu(deps[0]); !k.Active || k.Status != statusSuccess || k.EndTime == nil || k.ProvisioningState != "Succeeded" {
		t.Errorf("the live deployment as Kudu shows it: %+v", k)
	}
}
