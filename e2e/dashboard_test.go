package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/testapp"
)

// browser is one tab of a real headless Chromium, driven over the
// DevTools protocol.
type browser struct {
	t   *testing.T
	ctx context.Context
	// base is the dashboard's URL: the API listener's.
	base string
}

// newBrowser starts Debian's chromium (scripts/test installs it), headless.
// As root, Chromium refuses to start with its sandbox, which needs user
// namespaces a root process does not get: --no-sandbox is the only way to
// run it there, and the pages it loads are the dashboard's own.
func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("no chromium on PATH: run 'bash scripts/test install', which installs Debian's chromium (%v)", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1280, 900))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: base}
	b.start()
	return b
}

// incognito opens a tab in a browser context of its own: no cookie of
// the other tabs.
func (b *browser) incognito() *browser {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	nb := &browser{t: b.t, ctx: ctx, base: b.base}
	nb.start()
	return nb
}

// tab opens another tab in the same browser context (same cookies).
func (b *browser) tab() *browser {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	nb := &browser{t: b.t, ctx: ctx, base: b.base}
	nb.start()
	return nb
}

// start opens the tab (and the browser, the first time). It runs on the
// tab's own context: a first action run on a context with a timeout
// would tie the tab's life to that timeout.
func (b *browser) start() {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Navigate("about:blank")); err != nil {
		b.t.Fatalf("starting chromium: %v", err)
	}
}

func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v (at %s)", err, b.location())
	}
}

func (b *browser) open(path string) { b.t.Helper(); b.do(chromedp.Navigate(b.base + path)) }

// eval runs JavaScript in the page and returns its value.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v (at %s)", js, err, b.location())
	}
	return v
}

func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// path is the page's path and query.
func (b *browser) path() string {
	b.t.Helper()
	return eval[string](b, `location.pathname + location.search`)
}

// text is the text of the page's body, as a person reads it.
func (b *browser) text() string { b.t.Helper(); return eval[string](b, `document.body.innerText`) }

// source is the page's HTML.
func (b *browser) source() string {
	b.t.Helper()
	return eval[string](b, `document.documentElement.outerHTML`)
}

// waitJS polls a JavaScript condition until it holds.
func (b *browser) waitJS(timeout time.Duration, what, js string) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for !eval[bool](b, js) {
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out after %s waiting for %s; the page at %s says:\n%s", timeout, what, b.location(), b.text())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitPath waits for the browser to be on a page whose path starts with
// prefix, the page loaded.
func (b *browser) waitPath(prefix string) {
	b.t.Helper()
	b.waitJS(30*time.Second, "the page "+prefix, fmt.Sprintf(`location.pathname.startsWith(%q) && document.readyState === "complete"`, prefix))
}

func (b *browser) set(sel, value string) {
	b.t.Helper()
	b.do(chromedp.SetValue(chromedp.CSS(sel), value))
}

// click clicks and, for a button of a form, waits for the page it loads.
func (b *browser) click(sel string) { b.t.Helper(); b.do(chromedp.Click(chromedp.CSS(sel))) }

// submit clicks a form's button and waits for the page it leads to.
func (b *browser) submit(sel, wantPath string) {
	b.t.Helper()
	eval[bool](b, `(window.__before = true)`) // gone once another page loads
	b.click(sel)
	b.waitJS(60*time.Second, "the page after "+sel, fmt.Sprintf(`window.__before !== true && location.pathname.startsWith(%q) && document.readyState === "complete"`, wantPath))
}

// waitDeployment waits for the deployment page to show the end of its
// deployment, which the page follows live, and fails unless it succeeded.
func (b *browser) waitDeployment() {
	b.t.Helper()
	b.waitPath("/apps/")
	b.waitJS(120*time.Second, "the deployment to end", `!!document.getElementById("dep-state") && document.getElementById("dep-state").textContent !== "running"`)
	if state := eval[string](b, `document.getElementById("dep-state").textContent`); state != "succeeded" {
		b.t.Fatalf("the deployment at %s ended %s:\n%s", b.location(), state, b.text())
	}
}

// screenshot keeps a PNG of the page as docs/NAME.png when
// SLIPWAY_SCREENSHOTS=1 (the README shows one).
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if os.Getenv("SLIPWAY_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)) // quality 100 makes a PNG; less, a JPEG
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// hostileLine is what the app prints that would run script if shown as
// markup.
const hostileLine = `<img src=x onerror=window.__xss=1>`

// TestDashboard drives the dashboard in a real browser against the real
// daemon and the real Java app: sign in, create an app, upload v1 and
// watch it succeed, add a setting and a secret (one release, the secret
// masked in the page source), change the startup command, scale to 2,
// see a line the app printed arrive in the live log (a hostile one shown
// as text), roll back; a page without a session goes to sign-in, a form
// without its CSRF token is refused, and a deploy credential's session
// sees its app only, and ends when the credential is revoked.
func TestDashboard(t *testing.T) {
	t.Parallel() // see parallelTests in helpers_test.go
	d := startDaemon(t)
	d.mustCLI("apps", "create", "other")
	jar := testapp.Jar(t, "shop-1.jar", map[string]string{"version": "1"})
	b := newBrowser(t, d.apiURL)

	// A page without a session goes to sign-in, and back after it.
	b.open("/apps/shop/settings")
	b.waitPath("/signin")
	if p := b.path(); !strings.Contains(p, "next=%2Fapps%2Fshop%2Fsettings") {
		t.Errorf("signed out, /apps/shop/settings went to %s, want the sign-in page with next", p)
	}
	b.open("/")
	b.waitPath("/signin")
	b.set("#token", d.token)
	b.submit("form[action='/signin'] button", "/")
	if p := b.path(); p != "/" {
		t.Fatalf("signed in, at %s, want /", p)
	}
	cookies := eval[string](b, `document.cookie`)
	if strings.Contains(cookies, "slipway_session") {
		t.Errorf("the session cookie is readable by scripts: %q", cookies)
	}

	// Create an app.
	b.set("#new-app", "shop")
	b.submit("form[action='/apps'] button", "/apps/shop")
	if txt := b.text(); !strings.Contains(txt, "App shop created") || !strings.Contains(txt, "None yet") {
		t.Errorf("the new app's page says:\n%s", txt)
	}

	// Upload v1 and watch it succeed.
	b.open("/apps/shop/deploy")
	b.set("#message", "first release")
	b.do(chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{jar}))
	b.click("form[data-upload] button[type=submit]")
	b.waitPath("/apps/shop/deployments/")
	b.waitDeployment()
	if txt := b.text(); !strings.Contains(txt, "old instances stopped") && !strings.Contains(txt, "switched") {
		t.Errorf("the deployment page shows no switch:\n%s", txt)
	}
	if got := d.body("shop", "/"); !strings.Contains(got, "version=1") {
		t.Fatalf("after the upload the app answers %q", got)
	}
	b.screenshot("dashboard-deployment")

	// Add a setting and a secret, and save: one new release.
	b.open("/apps/shop/settings")
	if txt := b.text(); !strings.Contains(txt, "goes live through a swap") {
		t.Errorf("the settings page does not say the change goes live through a swap:\n%s", txt)
	}
	b.set("input[name='name.0']", "GREETING")
	b.set("input[name='value.0']", "hola")
	b.click("[data-add-row]")
	b.set("input[name='name.1']", "DB_PASSWORD")
	b.set("input[name='value.1']", "hunter2")
	b.click("input[name='secret.1']")
	if !eval[bool](b, `document.querySelector("input[name='secret.1']").checked`) {
		t.Fatalf("clicking the new row's secret box left it unchecked: %s", eval[string](b, `document.getElementById("vars").outerHTML`))
	}
	b.submit("form[action='/apps/shop/settings'] button[type=submit]", "/apps/shop/deployments/")
	b.waitDeployment()
	if rels := d.releases("shop"); len(rels) != 2 || !strings.Contains(strings.Join(rels[1].Changes, ";"), "set DB_PASSWORD (secret)") {
		t.Errorf("after saving a setting and a secret: %d releases, the last changing %q; want 2, the last setting both", len(rels), rels[len(rels)-1].Changes)
	}
	if got := d.body("shop", "/"); !strings.Contains(got, "greeting=hola") {
		t.Errorf("after the settings change the app answers %q", got)
	}
	if got := d.body("shop", "/env?name=DB_PASSWORD"); strings.TrimSpace(got) != "hunter2" {
		t.Errorf("the app reads DB_PASSWORD as %q, want the secret's value", got)
	}
	b.open("/apps/shop/settings")
	if src := b.source(); strings.Contains(src, "hunter2") || !strings.Contains(src, "****") {
		t.Errorf("the settings page's source shows the secret, or no ****")
	}
	b.screenshot("dashboard-settings")

	// Change the startup command: it prints the hostile line first.
	b.set("#command", `echo '`+hostileLine+`'; exec java $JAVA_OPTS -jar app.jar --server.port=$PORT`)
	b.submit("form[action='/apps/shop/settings'] button[type=submit]", "/apps/shop/deployments/")
	b.waitDeployment()

	// The live log, in another tab, sees the lines of the instance that
	// scaling to 2 starts arrive.
	logs := b.tab()
	logs.open("/apps/shop/logs")
	logs.waitJS(30*time.Second, "the log's backlog", `document.querySelectorAll("#log li").length > 0`)
	countHostile := `[...document.querySelectorAll("#log li .text")].filter(e => e.textContent === ` + jsString(hostileLine) + `).length`
	before := eval[int](logs, countHostile)
	if before < 1 {
		t.Errorf("the log shows no line %s from the instance that printed it:\n%s", hostileLine, logs.text())
	}
	b.open("/apps/shop/settings")
	b.set("#instances", "2")
	b.submit("form[action='/apps/shop/scale'] button", "/apps/shop/deployments/")
	b.waitDeployment()
	logs.waitJS(30*time.Second, "the new instance's line in the live log", countHostile+` > `+fmt.Sprint(before))
	if n := eval[int](logs, `document.querySelectorAll("#log img").length`); n != 0 {
		t.Errorf("the log made %d img elements of what the app printed", n)
	}
	if xss := eval[bool](logs, `window.__xss === 1`); xss {
		t.Errorf("what the app printed ran as script in the log page")
	}
	logs.screenshot("dashboard-logs")
	var st api.Status
	d.getJSON("/api/v1/apps/shop/status", &st)
	if st.Ready != 2 {
		t.Errorf("after scaling to 2: %d ready", st.Ready)
	}
	b.open("/apps/shop")
	b.waitJS(10*time.Second, "the overview", `document.body.innerText.includes("2 of 2 instance(s) ready")`)
	b.screenshot("dashboard-overview")

	// A form without its CSRF token is refused, and changes nothing.
	deps := len(d.deployments("shop"))
	b.open("/apps/shop/settings")
	eval[bool](b, `document.querySelector("form[action='/apps/shop/restart'] input[name=csrf]").remove(), true`)
	b.submit("form[action='/apps/shop/restart'] button", "/apps/shop/restart")
	if txt := b.text(); !strings.Contains(txt, "CSRF token is missing or wrong") {
		t.Errorf("a form without its CSRF token got:\n%s", txt)
	}
	if n := len(d.deployments("shop")); n != deps {
		t.Errorf("a form without its CSRF token made a deployment: %d, want %d", n, deps)
	}

	// Roll back to v1, with one confirmation.
	b.open("/apps/shop/deployments")
	b.screenshot("dashboard-deployments")
	b.submit("a[href='/apps/shop/rollback?to=1']", "/apps/shop/rollback")
	b.submit("form[action='/apps/shop/rollback'] button", "/apps/shop/deployments/")
	b.waitDeployment()
	if got := d.body("shop", "/"); !strings.Contains(got, "greeting=hello") || !strings.Contains(got, "version=1") {
		t.Errorf("after rolling back to v1 the app answers %q", got)
	}

	// A deploy credential's session sees its app only.
	b.open("/apps/shop/access")
	b.set("form[action='/apps/shop/credentials'] input[name=name]", "ci")
	b.submit("form[action='/apps/shop/credentials'] button", "/apps/shop/credentials")
	token := eval[string](b, `document.getElementById("token").value`)
	ci := b.incognito()
	ci.open("/")
	ci.waitPath("/signin")
	ci.set("#token", token)
	ci.submit("form[action='/signin'] button", "/apps/shop")
	if txt := ci.text(); strings.Contains(txt, "Configuration") || strings.Contains(txt, "Access and names") {
		t.Errorf("a deploy credential's overview offers the admin's tabs:\n%s", txt)
	}
	for path, want := range map[string]string{
		"/apps/other":               "this token belongs to app shop and may not touch app other",
		"/apps/other/logs":          "this token belongs to app shop and may not touch app other",
		"/apps/shop/settings":       "this token may only deploy, and read the status and logs of, app shop",
		"/apps/shop/rollback?to=1":  "this needs the admin token",
		"/apps/shop/deployments/1":  "Deployment 1 of shop",
		"/apps/shop/deployments/99": "app shop has no deployment 99",
	} {
		ci.open(path)
		if txt := ci.text(); !strings.Contains(txt, want) {
			t.Errorf("a deploy credential at %s sees:\n%s\nwant %q", path, txt, want)
		}
	}
	ci.open("/")
	ci.waitPath("/apps/shop")

	// Revoking the credential ends its session.
	b.open("/apps/shop/access")
	b.submit("form[action='/apps/shop/credentials/revoke'] button", "/apps/shop/access")
	ci.open("/apps/shop")
	ci.waitPath("/signin")
	if txt := ci.text(); !strings.Contains(txt, "Your session ended") {
		t.Errorf("after its credential was revoked, its session sees:\n%s", txt)
	}
	b.open("/")
	b.screenshot("dashboard-apps")
}

// jsString quotes s as a JavaScript string.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestDashboardRefusals: without a browser, the dashboard's pages answer
// with its headers, and a request without a session goes to sign-in.
func TestDashboardRefusals(t *testing.T) {
	d := startDaemon(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(d.apiURL + "/apps/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
		t.Errorf("without a session: %d to %q, want 303 to /signin", resp.StatusCode, resp.Header.Get("Location"))
	}
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
		"X-Frame-Options":         "DENY",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	// The API keeps its paths.
	resp, err = client.Get(d.apiURL + "/api/v1/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("/api/v1/nope: %d %s, want the API's JSON 404", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
