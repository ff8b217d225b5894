package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/scm"
	"github.com/slipway-dev/slipway/internal/testapp"
)

// kuduClient is an App Service pipeline's view of an app's SCM site: a
// base URL and basic auth, as a publish profile gives them. Each method
// sends what the real clients send (see APPSERVICE.md).
type kuduClient struct {
	t              *testing.T
	base           string // https://HOST:PORT/scm/APP
	user, password string
	http           *http.Client
}

// kuduAnswer is an answer read whole.
type kuduAnswer struct {
	status int
	header http.Header
	body   string
}

// do sends a request to base+path, or to path if it is absolute. A body
// that is an io.Reader other than a *bytes.Reader goes chunked, without
// Content-Length, as the Node clients stream a file.
func (k *kuduClient) do(method, path, contentType string, body io.Reader) kuduAnswer {
	k.t.Helper()
	u := path
	if !strings.HasPrefix(path, "https://") {
		u = k.base + path
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		k.t.Fatal(err)
	}
	if _, ok := body.(*bytes.Reader); !ok && body != nil {
		req.ContentLength = -1
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.SetBasicAuth(k.user, k.password)
	resp, err := k.http.Do(req)
	if err != nil {
		k.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return kuduAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// chunked streams a file's bytes with no Content-Length.
func chunked(t *testing.T, path string) io.Reader {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return io.MultiReader(bytes.NewReader(b))
}

// poll follows a deployment at its Location as the GitHub Action and the
// Pipelines tasks do: every 2 s until its status is 3 or 4, each answer
// 200 or 202 (anything else fails a pipeline), with a deadline of the
// test's own (the clients have none).
func (k *kuduClient) poll(location string, within time.Duration) scm.Deployment {
	k.t.Helper()
	deadline := time.Now().Add(within)
	for {
		a := k.do("GET", location, "", nil)
		if a.status != http.StatusOK && a.status != http.StatusAccepted {
			k.t.Fatalf("polling %s: %d %s; a pipeline stops here", location, a.status, a.body)
		}
		var d scm.Deployment
		if err := json.Unmarshal([]byte(a.body), &d); err != nil {
			k.t.Fatalf("polling %s: %v in %s", location, err, a.body)
		}
		if d.Status == 3 || d.Status == 4 {
			return d
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("deployment %s still has status %d after %s", d.ID, d.Status, within)
		}
		time.Sleep(2 * time.Second)
	}
}

// accepted checks an asynchronous call's answer, 202 with an absolute
// Location under the site, and returns the Location.
func (k *kuduClient) accepted(a kuduAnswer) string {
	k.t.Helper()
	loc := a.header.Get("Location")
	if a.status != http.StatusAccepted || !strings.HasPrefix(loc, k.base+"/") {
		k.t.Fatalf("asynchronous deploy: %d, Location %q, %s; want 202 with a Location under %s", a.status, loc, a.body, k.base)
	}
	return loc
}

// logMessages reads a deployment's log at its log_url, as the GitHub
// Action prints it when a deployment failed.
func (k *kuduClient) logMessages(d scm.Deployment) ([]scm.LogEntry, string) {
	k.t.Helper()
	a := k.do("GET", d.LogURL, "", nil)
	var entries []scm.LogEntry
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &entries) != nil {
		k.t.Fatalf("GET %s: %d %s", d.LogURL, a.status, a.body)
	}
	var all []string
	for _, e := range entries {
		all = append(all, e.Message)
	}
	return entries, strings.Join(all, "\n")
}

// githubOneDeploy replays azure/webapps-deploy (v3) with a publish
// profile and a jar: the runtime ping, the warm-up ping (the app
// settings), the OneDeploy upload, streamed, with the Action's query,
// polling until the end, then reading the deployment (and on failure its
// log) by id.
func (k *kuduClient) githubOneDeploy(jar, message string, within time.Duration) (scm.Deployment, string) {
	k.t.Helper()
	if a := k.do("GET", "/diagnostics/runtime", "", nil); a.status != 200 || !strings.Contains(a.body, "Unix") {
		k.t.Fatalf("runtime ping: %d %s", a.status, a.body)
	}
	if a := k.do("GET", "/api/settings", "", nil); a.status != 200 {
		k.t.Fatalf("warm-up ping: %d %s", a.status, a.body)
	}
	q := url.Values{"async": {"true"}, "deployer": {"GITHUB_ONE_DEPLOY"}, "type": {"JAR"}, "clean": {"false"}, "restart": {"true"}, "message": {message}}
	loc := k.accepted(k.do("POST", "/api/publish?"+q.Encode(), "application/octet-stream", chunked(k.t, jar)))
	d := k.poll(loc, within)
	a := k.do("GET", "/api/deployments/"+d.ID, "", nil)
	if a.status != 200 {
		k.t.Fatalf("GET the deployment by its id %s: %d %s", d.ID, a.status, a.body)
	}
	logs := ""
	if d.Status == 3 {
		_, logs = k.logMessages(d)
	}
	return d, logs
}

// TestSCM: an existing App Service pipeline, pointed at Slipway with a
// publish profile, deploys unchanged, with zero failed requests; and what
// a pipeline may get wrong, or an attacker try, is refused. One daemon
// serving its API over TLS and one app, through sequential steps.
func TestSCM(t *testing.T) {
	t.Parallel() // see parallelTests in helpers_test.go
	dir := t.TempDir()
	ca := newCA(t, dir)
	apiCrt, apiKey := ca.issue(t, dir, "api", "127.0.0.1")
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	d := launch(t, tlsClient, "--api-tls-cert", apiCrt, "--api-tls-key", apiKey, "--max-upload", "1048576")
	withCA := []string{"SLIPWAY_CA_CERT=" + ca.pem}
	cli := func(args ...string) string {
		t.Helper()
		out, err := d.cliEnv(withCA, args...)
		if err != nil {
			t.Fatalf("slipway %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	cli("apps", "create", "promo")

	// The publish profile, as the GitHub Action reads it.
	profileFile := filepath.Join(dir, "promo.PublishSettings")
	cli("credentials", "create", "-a", "promo", "--publish-profile", profileFile)
	if fi, err := os.Stat(profileFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the publish profile file: %v, mode %v; want 0600", err, fi)
	}
	k := readProfile(t, profileFile, strings.TrimPrefix(d.apiURL, "https://"))
	k.http = tlsClient

	jar := func(props map[string]string) string { return testapp.Jar(t, "promo.jar", props) }
	cli("deploy", "-a", "promo", jar(map[string]string{"version": "1"}))
	load := loadOptions{Steady: 1, Hammer: 16, Slow: 4, MaxDuration: 2 * time.Minute}

	t.Run("GitHubAction", func(t *testing.T) {
		k.t = t
		l := startLoad(t, d, "promo", load)
		message := `{"type":"deployment","sha":"1a2b3c4d5e6f","repoName":"acme/promo","actor":"ana","slotName":"production","commitMessage":"Faster cart\n\nDetails."}`
		dep, logs := k.githubOneDeploy(jar(map[string]string{"version": "2", "startDelaySeconds": "30"}), message, 2*time.Minute)
		l.check(t)
		if dep.Status != 4 || !dep.Complete || !dep.Active || dep.Deployer != "GITHUB_ONE_DEPLOY" || dep.Author != "ana" {
			t.Errorf("deployment %+v; log:\n%s", dep, logs)
		}
		if got := d.body("promo", "/"); !strings.HasPrefix(got, "version=2 ") {
			t.Errorf("after the Action the app answers %q", got)
		}
		out := cli("deployments", "-a", "promo")
		if !strings.Contains(out, "GITHUB_ONE_DEPLOY") || !strings.Contains(out, "Faster cart (commit 1a2b3c4 by ana in acme/promo)") {
			t.Errorf("slipway deployments does not show the Action's deployment readably:\n%s", out)
		}
	})

	t.Run("AzureWebApp", func(t *testing.T) {
		k.t = t
		l := startLoad(t, d, "promo", load)
		if a := k.do("GET", "/api/settings", "", nil); a.status != 200 {
			t.Fatalf("settings ping: %d %s", a.status, a.body)
		}
		if a := k.do("GET", "/api/deployments?warmup=true", "", nil); a.status != 200 {
			t.Fatalf("deployments ping: %d %s", a.status, a.body)
		}
		// The task wraps the jar in a zip, keeping its file name.
		wrapped := wrapJar(t, jar(map[string]string{"version": "3"}), "promo-3.0.jar")
		message := `{"type":"deployment","commitId":"abcdef0123","buildId":"812","buildNumber":"20260102.1","repoName":"promo","repoProvider":"TfsGit"}`
		q := url.Values{"isAsync": {"true"}, "deployer": {"VSTS_ZIP_DEPLOY"}, "message": {message}}
		dep := k.poll(k.accepted(k.do("POST", "/api/zipdeploy?"+q.Encode(), "application/octet-stream", chunked(t, wrapped))), time.Minute)
		if dep.Status != 4 {
			_, logs := k.logMessages(dep)
			t.Fatalf("zipdeploy: %+v\n%s", dep, logs)
		}
		// Then it records its run.
		record := map[string]any{"id": "8121767350000000", "status": 4, "active": true, "deployer": "VSTS", "author": "Ana",
			"details": "https://dev.azure.com/acme/promo/_build/results?buildId=812", "message": message}
		b, _ := json.Marshal(record)
		a := k.do("PUT", "/api/deployments/8121767350000000", "application/json", bytes.NewReader(b))
		if a.status != 200 || !strings.Contains(a.body, `"is_readonly": true`) {
			t.Errorf("PUT of the run's record: %d %s", a.status, a.body)
		}
		l.check(t)
		if got := d.body("promo", "/"); !strings.HasPrefix(got, "version=3 ") {
			t.Errorf("after zipdeploy the app answers %q", got)
		}
		out := cli("deployments", "-a", "promo")
		if !strings.Contains(out, "VSTS_ZIP_DEPLOY") || !strings.Contains(out, "promo-3.0.jar") || !strings.Contains(out, "record") {
			t.Errorf("slipway deployments lacks the zipdeploy of promo-3.0.jar or the record:\n%s", out)
		}
	})

	t.Run("AzureCLISynchronous", func(t *testing.T) {
		k.t = t
		l := startLoad(t, d, "promo", load)
		a := k.do("POST", "/api/publish?type=jar", "application/octet-stream", chunked(t, jar(map[string]string{"version": "4", "startDelaySeconds": "3"})))
		var dep scm.Deployment
		if a.status != 200 || json.Unmarshal([]byte(a.body), &dep) != nil || dep.Status != 4 {
			t.Fatalf("synchronous publish: %d %s; want 200 with status 4", a.status, a.body)
		}
		// 200 only once live: the app answers v4 at once.
		if got := d.body("promo", "/"); !strings.HasPrefix(got, "version=4 ") {
			t.Errorf("right after the synchronous publish the app answers %q", got)
		}
		l.check(t)
	})

	t.Run("CrashingJar", func(t *testing.T) {
		k.t = t
		dep, logs := k.githubOneDeploy(jar(map[string]string{"version": "5", "exitCode": "3"}), "crash", time.Minute)
		if dep.Status != 3 || dep.Active {
			t.Errorf("a crashing jar: status %d, active %v; want 3, not active", dep.Status, dep.Active)
		}
		for _, want := range []string{"exited while warming up", "Fatal: simulated startup failure"} {
			if !strings.Contains(logs, want) {
				t.Errorf("the deployment's log does not say %q:\n%s", want, logs)
			}
		}
		entries, _ := k.logMessages(dep)
		if len(entries) == 0 || entries[len(entries)-1].Type != 2 {
			t.Errorf("the log's last entry is not an error: %+v", entries)
		}
		if got := d.body("promo", "/"); !strings.HasPrefix(got, "version=4 ") {
			t.Errorf("after the failed deploy the app answers %q, want v4", got)
		}
	})

	t.Run("TwoPipelines", func(t *testing.T) {
		k.t = t
		first := k.accepted(k.do("POST", "/api/publish?type=Jar&async=true&deployer=first", "application/octet-stream",
			chunked(t, jar(map[string]string{"version": "6", "startDelaySeconds": "4"}))))
		second := jar(map[string]string{"version": "7"})
		a := k.do("POST", "/api/publish?type=jar&async=true&deployer=second", "application/octet-stream", chunked(t, second))
		if want := "There is a deployment currently in progress. Please try again when it completes."; a.status != http.StatusConflict || strings.TrimSpace(a.body) != want {
			t.Errorf("a second pipeline: %d %q; want 409 %q", a.status, a.body, want)
		}
		if a := k.do("GET", "/api/isdeploying", "", nil); !strings.Contains(a.body, `"True"`) {
			t.Errorf("isdeploying while one runs: %s", a.body)
		}
		if dep := k.poll(first, time.Minute); dep.Status != 4 {
			t.Fatalf("the first pipeline: %+v", dep)
		}
		if dep := k.poll(k.accepted(k.do("POST", "/api/publish?type=jar&async=true&deployer=second", "application/octet-stream", chunked(t, second))), time.Minute); dep.Status != 4 {
			t.Fatalf("the second pipeline, once the first ended: %+v", dep)
		}
		if got := d.body("promo", "/"); !strings.HasPrefix(got, "version=7 ") {
			t.Errorf("after both pipelines the app answers %q", got)
		}
	})

	t.Run("DaemonKilled", func(t *testing.T) {
		k.t = t
		loc := k.accepted(k.do("POST", "/api/publish?type=jar&async=true&deployer=GITHUB_ONE_DEPLOY", "application/octet-stream",
			chunked(t, jar(map[string]string{"version": "8", "startDelaySeconds": "60"}))))
		waitFor(t, 30*time.Second, "the deployment to warm up", func() bool {
			var dep scm.Deployment
			a := k.do("GET", loc, "", nil)
			return json.Unmarshal([]byte(a.body), &dep) == nil && dep.StatusText == "Warming up"
		})
		d.kill()
		d.start()
		if dep := k.poll(loc, 30*time.Second); dep.Status != 3 {
			t.Errorf("the interrupted deployment after the restart: %+v", dep)
		}
		if a := k.do("GET", "/api/deployments/latest", "", nil); a.status != 200 || !strings.Contains(a.body, `"status": 3`) {
			t.Errorf("latest after the restart: %d %s; want 200 with status 3", a.status, a.body)
		}
		dep := k.poll(k.accepted(k.do("POST", "/api/publish?type=jar&async=true", "application/octet-stream",
			chunked(t, jar(map[string]string{"version": "9"})))), time.Minute)
		if dep.Status != 4 || dep.Deployer != "OneDeploy" {
			t.Errorf("a deploy after the restart: %+v", dep)
		}
		if got := d.body("promo", "/"); !strings.HasPrefix(got, "version=9 ") {
			t.Errorf("after the restart and a deploy the app answers %q", got)
		}
	})

	t.Run("SettingsAndLogStream", func(t *testing.T) {
		k.t = t
		stream := k.logStream(t)
		waitFor(t, 10*time.Second, "the log stream's welcome", func() bool {
			return strings.Contains(stream.String(), "Welcome, you are now connected to log-streaming service.")
		})
		l := startLoad(t, d, "promo", load)
		a := k.do("POST", "/api/settings", "application/json", strings.NewReader(`{"GREETING": "hola"}`))
		if a.status != http.StatusNoContent {
			t.Fatalf("POST settings: %d %s; want 204 once live", a.status, a.body)
		}
		if got := d.body("promo", "/"); !strings.Contains(got, "greeting=hola") {
			t.Errorf("after POST settings the app answers %q", got)
		}
		l.check(t)
		waitFor(t, 10*time.Second, "the new instance's output in the log stream", func() bool {
			return strings.Contains(stream.String(), "Starting App version 9")
		})
		lines := strings.Split(stream.String(), "\n")
		if !strings.HasSuffix(lines[0], "Welcome, you are now connected to log-streaming service.") {
			t.Errorf("the log stream's first line is %q", lines[0])
		}
		if a := k.do("GET", "/api/settings", "", nil); !strings.Contains(a.body, `"GREETING": "hola"`) {
			t.Errorf("GET settings: %s", a.body)
		}
	})

	t.Run("PublishWithoutRestart", func(t *testing.T) {
		k.t = t
		loc := k.accepted(k.do("POST", "/api/publish?type=jar&async=true&restart=false", "application/octet-stream",
			chunked(t, jar(map[string]string{"version": "10"}))))
		if dep := k.poll(loc, 30*time.Second); dep.Status != 4 || dep.Active {
			t.Errorf("a staged upload: %+v; want status 4, not active", dep)
		}
		if got := d.body("promo", "/"); !strings.HasPrefix(got, "version=9 ") {
			t.Errorf("after an upload with restart=false the app answers %q, want v9 still", got)
		}
		cli("restart", "-a", "promo")
		if got := d.body("promo", "/"); !strings.HasPrefix(got, "version=10 ") {
			t.Errorf("the restart after an upload with restart=false: the app answers %q, want v10", got)
		}
	})

	t.Run("Hostile", func(t *testing.T) {
		k.t = t
		before := len(d.deployments("promo"))
		artifacts := func() []string {
			entries, _ := os.ReadDir(filepath.Join(d.dataDir, "artifacts"))
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			return names
		}
		stored := artifacts()
		live := parseVersion(d.body("promo", "/"))
		v10 := jar(map[string]string{"version": "11"})
		bad := *k
		bad.password += "x"
		a := bad.do("POST", "/api/publish?type=jar", "application/octet-stream", chunked(t, v10))
		if challenges := strings.Join(a.header.Values("WWW-Authenticate"), ", "); a.status != http.StatusUnauthorized || !strings.Contains(challenges, "Basic") {
			t.Errorf("a wrong password: %d %q %s; want 401 with a Basic challenge", a.status, challenges, a.body)
		}
		cli("apps", "create", "other")
		var otherCred struct{ Token string }
		json.Unmarshal([]byte(cli("credentials", "create", "-a", "other", "-o", "json")), &otherCred)
		stranger := *k
		stranger.user, stranger.password = "$promo", otherCred.Token
		if a := stranger.do("POST", "/api/publish?type=jar", "application/octet-stream", chunked(t, v10)); a.status != http.StatusForbidden {
			t.Errorf("another app's credential: %d %s; want 403", a.status, a.body)
		}
		cli("access", "add", "-a", "promo", "--scope", "deploy", "--priority", "100", "--allow", "10.0.0.0/8")
		if a := k.do("POST", "/api/zipdeploy", "application/octet-stream", chunked(t, v10)); a.status != http.StatusForbidden || !strings.Contains(a.body, "deploy endpoints") {
			t.Errorf("outside the deploy rule: %d %s; want 403", a.status, a.body)
		}
		cli("access", "remove", "-a", "promo", "--scope", "deploy", "--priority", "100")
		slip := filepath.Join(t.TempDir(), "slip.zip")
		writeZip(t, slip, []zipEntry{{"../app.jar", readFile(t, v10), 0o644}})
		if a := k.do("POST", "/api/zipdeploy", "application/octet-stream", chunked(t, slip)); a.status != http.StatusBadRequest || !strings.Contains(a.body, "outside") {
			t.Errorf("a wrapped jar named ../app.jar: %d %s; want 400", a.status, a.body)
		}
		big := io.LimitReader(zeroes{}, 1536<<10) // past --max-upload, with no Content-Length to refuse it by
		if a := k.do("POST", "/api/publish?type=jar", "application/octet-stream", big); a.status != http.StatusRequestEntityTooLarge {
			t.Errorf("an upload past the bound: %d %s; want 413", a.status, a.body)
		}
		if after := len(d.deployments("promo")); after != before {
			t.Errorf("refused calls made %d deployments", after-before)
		}
		if now := artifacts(); !slices.Equal(now, stored) {
			t.Errorf("refused uploads left files behind: %v, before %v", now, stored)
		}
		if got := d.body("promo", "/"); parseVersion(got) != live {
			t.Errorf("after the refusals the app answers %q, want version %d still", got, live)
		}
	})
}

// readProfile reads a publish profile as the GitHub Action does: the first
// publishProfile's publishUrl (no scheme, "scm" in it), userName and
// userPWD, and checks the URL is the API's as this test reaches it.
func readProfile(t *testing.T, file, apiHost string) *kuduClient {
	t.Helper()
	var doc struct {
		Profiles []struct {
			PublishURL string `xml:"publishUrl,attr"`
			User       string `xml:"userName,attr"`
			Password   string `xml:"userPWD,attr"`
		} `xml:"publishProfile"`
	}
	b, _ := os.ReadFile(file)
	if err := xml.Unmarshal(b, &doc); err != nil || len(doc.Profiles) == 0 {
		t.Fatalf("the publish profile does not parse (%v):\n%s", err, b)
	}
	p := doc.Profiles[0]
	if strings.Contains(p.PublishURL, "://") || !strings.Contains(p.PublishURL, "scm") || p.PublishURL != apiHost+"/scm/promo" || p.User != "$promo" {
		t.Fatalf("publishUrl %q, userName %q; want %s/scm/promo, no scheme, and $promo", p.PublishURL, p.User, apiHost)
	}
	return &kuduClient{t: t, base: "https://" + p.PublishURL, user: p.User, password: p.Password}
}

// wrapJar wraps a jar in a zip under name, as the Azure Pipelines tasks do.
func wrapJar(t *testing.T, jar, name string) string {
	t.Helper()
	return writeZip(t, filepath.Join(t.TempDir(), "package.zip"), []zipEntry{{name, readFile(t, jar), 0o644}})
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type zeroes struct{}

func (zeroes) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// logStream follows the app's log stream, as `az webapp log tail` does,
// into a buffer, until the test ends.
func (k *kuduClient) logStream(t *testing.T) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	req, _ := http.NewRequestWithContext(ctx, "GET", k.base+"/api/logstream", nil)
	req.SetBasicAuth(k.user, k.password)
	resp, err := k.http.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		cancel()
		t.Fatalf("logstream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := &syncBuffer{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			fmt.Fprintln(out, sc.Text())
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	return out
}
