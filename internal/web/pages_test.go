package web

import (
	"context"
	"github.com/slipway-dev/slipway/internal/golden"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/access"
	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// normalize replaces what differs from run to run in a page: the CSRF
// tokens, tokens and the ids of credentials made during the test.
var normalize = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`name="csrf" value="[A-Za-z0-9_-]+"`), `name="csrf" value="CSRF"`},
	{regexp.MustCompile(`slw_[A-Za-z0-9_-]+`), `slw_TOKEN`},
	{regexp.MustCompile(`\b[0-9a-f]{12}\b`), `CREDENTIAL`},
	// A lease's expiry and fencing token come from etcd.
	{regexp.MustCompile(`(<td>v\d+</td>)<td>\d+</td><td><time datetime="[^"]+">[^<]+</time>`), `$1<td>TOKEN</td><td>EXPIRES`},
}

// goldenPage compares a page, normalized, with testdata/name, or rewrites
// it with -update.
func goldenPage(t *testing.T, name, page string) {
	t.Helper()
	for _, n := range normalize {
		page = n.re.ReplaceAllString(page, n.with)
	}
	golden.Check(t, name, []byte(page))
}

// seed records app promo with two releases, a failed deployment and a
// running one, a secret, a rule, domains and a credential, at fixed times.
func (d *testDash) seed() {
	d.t.Helper()
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	d.createApp(store.App{Name: "promo", Created: at, CurrentRelease: 2, Settings: settings.Settings{
		Env: map[string]string{"GREETING": "hello <b>world</b>", "DB_PASSWORD": "hunter2"}, Secrets: []string{"DB_PASSWORD"},
		Instances: 2, WarmupPath: "/ready", Command: "java -jar app.jar --server.port=$PORT"}})
	art := store.ArtifactRef{Digest: "sha256:0123456789abcdef", Name: "promo-1.0.jar", Size: 1234567, Kind: "jar"}
	for _, r := range []store.Release{
		{App: "promo", Artifact: art, Settings: settings.Settings{Env: map[string]string{"DB_PASSWORD": "hunter2"}, Secrets: []string{"DB_PASSWORD"}},
			Created: at, Author: "ana", Message: "first", Deployment: 1, Changes: []string{"artifact promo-1.0.jar"}},
		{App: "promo", Artifact: art, Settings: settings.Settings{Env: map[string]string{"GREETING": "hello <b>world</b>"}}, Stack: settings.StackJava,
			Created: at.Add(time.Hour), Author: "bo", Deployment: 2, Changes: []string{"set GREETING=hello <b>world</b>", "unset DB_PASSWORD"}},
	} {
		if err := d.st.CreateRelease(ctx, &r); err != nil {
			d.t.Fatal(err)
		}
	}
	for _, dep := range []store.Deployment{
		{App: "promo", Kind: store.KindDeploy, Release: 1, Artifact: art, State: store.StateFailed,
			Reason: "instance promo-1-a exited with code 1; its last lines:\n<img src=x onerror=alert(1)>",
			Author: "ana", Message: "first", Started: at, Finished: at.Add(90 * time.Second), Events: []store.Event{
				{At: at, Step: store.StepReceived, Message: "Received promo-1.0.jar"},
				{At: at.Add(time.Second), Message: "<script>alert(1)</script> printed by the app"},
				{At: at.Add(90 * time.Second), Step: store.StepFailed, Message: "instance promo-1-a exited"},
			}},
		{App: "promo", Kind: store.KindSettings, Release: 2, Artifact: art, State: store.StateRunning, Author: "bo", Started: at.Add(time.Hour),
			Events: []store.Event{{At: at.Add(time.Hour), Step: store.StepReceived, Message: "Settings change as v2"}}},
	} {
		if err := d.st.CreateDeployment(ctx, &dep); err != nil {
			d.t.Fatal(err)
		}
	}
	if err := d.st.CreateCredential(ctx, store.Credential{ID: "c0ffee", App: "promo", Hash: "never shown", Created: at, Name: "ci", Author: "ana"}); err != nil {
		d.t.Fatal(err)
	}
	rule, _ := access.ParseRule(100, access.Allow, "10.1.2.0/24", "office")
	if _, err := d.st.UpdatePolicy(ctx, "promo", func(p *access.Policy) error { p.App = access.Rules{rule}; return nil }); err != nil {
		d.t.Fatal(err)
	}
	if _, _, err := d.st.AddDomain(ctx, store.Domain{Name: "shop.example.com", App: "promo", ACME: true, Created: at}, settings.MaxDomains); err != nil {
		d.t.Fatal(err)
	}
	if err := d.mgr.LoadDomains(ctx); err != nil {
		d.t.Fatal(err)
	}
	if _, err := d.st.TakeLease(ctx, store.Lease{App: "promo", Name: "nightly-report", Holder: "promo-2-a", Release: 2,
		TTL: 600, Taken: at}); err != nil {
		d.t.Fatal(err)
	}
	if err := d.st.Lock(ctx, "promo", 2); err != nil {
		d.t.Fatal(err)
	}
}

// TestPages pins the rendered pages with golden files: the layout, what
// each page shows and says, and that what an app printed (in a reason, a
// deployment's events, a setting) is escaped, never markup.
func TestPages(t *testing.T) {
	clock = func() time.Time { return time.Date(2026, 1, 2, 17, 4, 5, 0, time.UTC) }
	t.Cleanup(func() { clock = time.Now })
	d := newTestDash(t)
	signedOut := d.client()
	code, _, page := signedOut.get("/signin")
	if code != http.StatusOK {
		t.Fatalf("the sign-in page: %d", code)
	}
	goldenPage(t, "signin.html", page)
	admin := d.client()
	admin.signin(d.admin)
	_, _, page = admin.get("/")
	goldenPage(t, "apps-empty.html", page)
	d.seed()
	// The credential of the signed-in deployer, at a fixed id and time.
	ci, hash := api.NewToken("5e55ed")
	if err := d.st.CreateCredential(t.Context(), store.Credential{ID: "5e55ed", App: "promo", Hash: hash,
		Created: time.Date(2026, 1, 2, 16, 0, 0, 0, time.UTC), Name: "deployer"}); err != nil {
		t.Fatal(err)
	}
	cred := d.client()
	cred.signin(ci)
	for _, tt := range []struct {
		golden string
		c      *client
		method string
		path   string
		want   int
	}{
		{"apps.html", admin, "GET", "/", 200},
		{"overview.html", admin, "GET", "/apps/promo", 200},
		{"overview-credential.html", cred, "GET", "/apps/promo", 200},
		{"deploy.html", admin, "GET", "/apps/promo/deploy", 200},
		{"deployment.html", admin, "GET", "/apps/promo/deployments/1", 200},
		{"deployment-running.html", admin, "GET", "/apps/promo/deployments/2", 200},
		{"history.html", admin, "GET", "/apps/promo/deployments", 200},
		{"history-credential.html", cred, "GET", "/apps/promo/deployments", 200},
		{"rollback.html", admin, "GET", "/apps/promo/rollback?to=1", 200},
		{"settings.html", admin, "GET", "/apps/promo/settings", 200},
		{"logs.html", admin, "GET", "/apps/promo/logs", 200},
		{"access.html", admin, "GET", "/apps/promo/access", 200},
		{"credential.html", admin, "POST", "/apps/promo/credentials", 201},
		{"forbidden.html", cred, "GET", "/apps/promo/settings", 403},
		{"csrf.html", admin, "POST", "/apps/promo/restart", 403},
		{"busy.html", admin, "POST", "/apps/promo/restart?with-token", 409},
		{"not-found.html", admin, "GET", "/nowhere", 404},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			var code int
			var page string
			switch {
			case tt.method == "GET":
				code, _, page = tt.c.get(tt.path)
			case tt.golden == "csrf.html":
				code, _, page = tt.c.post(tt.path, map[string][]string{})
			default:
				code, _, page = tt.c.post(strings.TrimSuffix(tt.path, "?with-token"), tt.c.form("name", "deployer"))
			}
			if code != tt.want {
				t.Errorf("%s %s: %d, want %d", tt.method, tt.path, code, tt.want)
			}
			for _, hostile := range []string{"<img src=x", "<script>alert", "<b>world</b>", "hunter2"} {
				if strings.Contains(page, hostile) {
					t.Errorf("%s %s shows %q as it is", tt.method, tt.path, hostile)
				}
			}
			goldenPage(t, tt.golden, page)
		})
	}
}

// TestPublishProfile: a credential made as a publish profile comes as a
// download holding its token, the SCM site's URL and the app's.
func TestPublishProfile(t *testing.T) {
	d := newTestDash(t)
	d.createApp(store.App{Name: "promo"})
	c := d.client()
	c.signin(d.admin)
	req, _ := http.NewRequest(http.MethodPost, d.url+"/apps/promo/credentials", strings.NewReader(c.form("name", "gh", "profile", "1").Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Content-Disposition") != `attachment; filename="promo.PublishSettings"` {
		t.Fatalf("a publish profile: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Disposition"), b)
	}
	for _, want := range []string{`publishUrl="deploy.example.test/scm/promo"`, `userName="$promo"`, `userPWD="slw_`, `destinationAppUrl="http://promo.example.test"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the publish profile lacks %s:\n%s", want, b)
		}
	}
	creds, err := d.st.Credentials(t.Context(), "promo")
	if err != nil || len(creds) != 1 || creds[0].Name != "gh" {
		t.Errorf("after the publish profile the app has credentials %+v, %v; want the one named gh", creds, err)
	}
}
