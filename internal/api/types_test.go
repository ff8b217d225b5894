package api

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/slipway-dev/slipway/internal/golden"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/access"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// TestWireFormat pins the JSON of the API's answers, byte for byte, with
// golden files: the keys, their order, what is left out when empty. The
// records are seeded with fixed values so the answers do not change from
// run to run. A change here breaks clients; make it on purpose.
func TestWireFormat(t *testing.T) {
	a := newTestAPI(t, func(o *Options) {
		o.Listeners = Listeners{HTTPPort: "8080", HTTPSPort: "8443", HasCertificate: func(h string) bool { return h != "*.shop.example.com" }}
	})
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	a.createApp(store.App{Name: "promo", Created: at, CurrentRelease: 2, Settings: settings.Settings{
		Env: map[string]string{"GREETING": "hello", "DB_PASSWORD": "hunter2"}, Secrets: []string{"DB_PASSWORD"},
		Instances: 2, WarmupPath: "/ready"}})
	art := store.ArtifactRef{Digest: "sha256:0123456789abcdef", Name: "promo-1.0.jar", Size: 1234, Kind: "jar"}
	for _, r := range []store.Release{
		{App: "promo", Artifact: art, Settings: settings.Settings{Env: map[string]string{"DB_PASSWORD": "hunter2"}, Secrets: []string{"DB_PASSWORD"}},
			Created: at, Author: "ana", Message: "first", Deployment: 1, Changes: []string{"artifact promo-1.0.jar (sha256:0123456789a…)"}},
		{App: "promo", Artifact: art, Settings: settings.Settings{JavaVersion: "17"}, Stack: settings.StackJava,
			Created: at.Add(time.Hour), Deployment: 2, RolledBackFrom: 1},
	} {
		if err := a.st.CreateRelease(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []store.Deployment{
		{App: "promo", Kind: store.KindDeploy, Release: 1, Artifact: art, State: store.StateFailed, Reason: "instance promo-1-a exited",
			Author: "ana", Message: "first", Deployer: "GITHUB_ONE_DEPLOY", Started: at, Finished: at.Add(90 * time.Second), Events: []store.Event{
				{At: at, Step: store.StepReceived, Message: "Received promo-1.0.jar"},
				{At: at.Add(time.Second), Message: "Waiting for response to warmup request"},
			}},
		{App: "promo", Kind: store.KindRollback, Release: 2, Artifact: art, State: store.StateRunning, Started: at.Add(time.Hour)},
	} {
		if err := a.st.CreateDeployment(ctx, &d); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.st.CreateCredential(ctx, store.Credential{ID: "c0ffee", App: "promo", Hash: "never shown", Created: at, Name: "ci"}); err != nil {
		t.Fatal(err)
	}
	rule, _ := access.ParseRule(100, access.Allow, "10.1.2.0/24", "office")
	if _, err := a.st.UpdatePolicy(ctx, "promo", func(p *access.Policy) error { p.App = access.Rules{rule}; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, d := range []store.Domain{{Name: "shop.example.com", App: "promo", ACME: true, Created: at}, {Name: "*.shop.example.com", App: "promo", Created: at}} {
		if _, _, err := a.st.AddDomain(ctx, d, settings.MaxDomains); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.mgr.LoadDomains(ctx); err != nil { // as at the daemon's start
		t.Fatal(err)
	}
	if err := a.st.Lock(ctx, "promo", 2); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		golden       string
		method, path string
		want         int
	}{
		{"app.json", "GET", "/api/v1/apps/promo", 200},
		{"apps.json", "GET", "/api/v1/apps", 200},
		{"releases.json", "GET", "/api/v1/apps/promo/releases", 200},
		{"deployment.json", "GET", "/api/v1/apps/promo/deployments/1", 200},
		{"deployments.json", "GET", "/api/v1/apps/promo/deployments", 200},
		{"follow.ndjson", "GET", "/api/v1/apps/promo/deployments/1/events", 200},
		{"status.json", "GET", "/api/v1/apps/promo/status", 200},
		{"settings.json", "GET", "/api/v1/apps/promo/settings", 200},
		{"credentials.json", "GET", "/api/v1/apps/promo/credentials", 200},
		{"policy.json", "GET", "/api/v1/apps/promo/access", 200},
		{"domains.json", "GET", "/api/v1/apps/promo/domains", 200},
		{"locked.json", "POST", "/api/v1/apps/promo/restart", 409},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			code, b := a.do(tt.method, tt.path, a.admin, "")
			if code != tt.want {
				t.Fatalf("%s %s: got %d %s, want %d", tt.method, tt.path, code, b, tt.want)
			}
			golden.Check(t, tt.golden, bytes.ReplaceAll(b, []byte(a.jdk), []byte("/usr/lib/jvm/jdk-17")))
		})
	}
}

// TestInstanceWireFormat pins an instance's JSON, which TestWireFormat
// cannot show: it starts none.
func TestInstanceWireFormat(t *testing.T) {
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	b, err := json.MarshalIndent(instancesOf([]deploy.InstanceStatus{
		{ID: "promo-2-a", Release: 2, PID: 4242, Port: 40001, State: deploy.StateReady, Started: at, Restarts: 1, InFlight: 3, Adopted: true},
		{ID: "promo-2-b", Release: 2, PID: 4243, Port: 40002, State: deploy.StateStarting, Note: "crash-looping: exited 3 times"},
	}), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "instances.json", append(b, '\n'))
}
