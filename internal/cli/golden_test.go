package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"github.com/slipway-dev/slipway/internal/golden"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/daemon"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/store"
)

func init() {
	// Times are shown in local time; the golden files hold UTC.
	time.Local = time.UTC
}

// testDaemon is the daemon's API served on loopback, wired as daemon.Run
// wires it: a real store (embedded etcd), deploy manager, router and log
// hub. Instances are real processes: shell commands.
type testDaemon struct {
	t       *testing.T
	url     string
	dataDir string // holds admin.token, as the daemon's does
	config  string // the CLI's XDG_CONFIG_HOME
	admin   string
	st      *store.Store
	mgr     *deploy.Manager
}

func newTestDaemon(t *testing.T) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	st, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	arts, err := artifact.NewStore(artifact.Options{Dir: filepath.Join(dir, "data", "artifacts")})
	if err != nil {
		t.Fatal(err)
	}
	hub := logs.NewHub(logs.Options{Dir: filepath.Join(dir, "data", "logs"), Logger: logger})
	t.Cleanup(hub.Close)
	mgr := deploy.New(deploy.Options{Store: st, Artifacts: arts, Router: router.New(router.Options{Logger: logger}), Logs: hub,
		DataDir: filepath.Join(dir, "data"), BaseDomain: "example.test", HTTPS: true, Logger: logger,
		WarmupReportEvery: time.Hour}) // no progress line, whose count would depend on the machine's speed
	t.Cleanup(func() { mgr.Close(false) })
	d := &testDaemon{t: t, dataDir: filepath.Join(dir, "data"), config: filepath.Join(dir, "config"), st: st, mgr: mgr}
	if d.admin, err = api.EnsureAdminToken(t.Context(), st, daemon.AdminTokenFile(d.dataDir)); err != nil {
		t.Fatal(err)
	}
	// The router's listeners, as the URLs of 'apps show' name them.
	srv := httptest.NewServer(api.New(api.Options{Store: st, Deploys: mgr, Artifacts: arts, Logs: hub, Logger: logger,
		Listeners: api.Listeners{HTTPPort: "8080", HTTPSPort: "8443"}}))
	t.Cleanup(srv.Close)
	d.url = srv.URL
	d.setEnv()
	return d
}

// cliEnv are the variables the CLI reads. A test daemon's runs start
// from none of them but SLIPWAY_URL, SLIPWAY_DATA_DIR and XDG_CONFIG_HOME,
// which name it.
var cliEnv = []string{"SLIPWAY_URL", "SLIPWAY_TOKEN", "SLIPWAY_DATA_DIR", "SLIPWAY_OUTPUT", "SLIPWAY_CA_CERT", "XDG_CONFIG_HOME", "XDG_DATA_HOME"}

// setEnv gives the CLI the environment of d (t.Setenv restores the
// test's when it ends).
func (d *testDaemon) setEnv() {
	for _, k := range cliEnv {
		d.t.Setenv(k, "")
		os.Unsetenv(k)
	}
	d.t.Setenv("SLIPWAY_URL", d.url)
	d.t.Setenv("SLIPWAY_DATA_DIR", d.dataDir)
	d.t.Setenv("XDG_CONFIG_HOME", d.config)
}

// session records CLI runs against a daemon as a transcript, for a golden
// file.
type session struct {
	d     *testDaemon
	mu    sync.Mutex // guards out
	out   strings.Builder
	subst []string // more replacements for normalize: old, new, …
}

func (d *testDaemon) session() *session { return &session{d: d} }

// run runs a verb with more environment variables (KEY=VALUE) and
// stdin, adds it to the transcript, and returns its output.
func (s *session) run(env []string, stdin string, args ...string) string {
	s.d.t.Helper()
	out, code := s.d.run(env, stdin, args...)
	cmdline := append(env, append([]string{"slipway"}, args...)...)
	if stdin != "" {
		cmdline = append([]string{"echo", strings.TrimSpace(stdin), "|"}, cmdline...)
	}
	s.add(cmdline, out, code)
	return out
}

// add adds a command line (with the variables it sets) and what it wrote.
func (s *session) add(cmdline []string, out string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.WriteString("$ " + strings.Join(cmdline, " ") + "\n" + out)
	if code != 0 {
		s.out.WriteString("[exit " + strconv.Itoa(code) + "]\n")
	}
	s.out.WriteString("\n")
}

// run runs a verb with more environment variables (KEY=VALUE), which are
// unset again afterwards, and stdin; it returns what the verb wrote and
// its exit code.
func (d *testDaemon) run(env []string, stdin string, args ...string) (string, int) {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		old, had := os.LookupEnv(k)
		os.Setenv(k, v)
		defer func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		}()
	}
	var out syncBuffer
	code := execute(args, strings.NewReader(stdin), &out, &out)
	return out.String(), code
}

// start runs a verb in the background, writing to out; the channel gets
// its exit code.
func (d *testDaemon) start(out *syncBuffer, args ...string) <-chan int {
	code := make(chan int, 1)
	go func() { code <- execute(args, strings.NewReader(""), out, out) }()
	return code
}

// golden compares the transcript with testdata/name.golden, or rewrites
// it with -update. What changes from run to run is replaced first: the
// daemon's URL and directories, times, instance ids and digests.
func (s *session) golden(name string) {
	t := s.d.t
	t.Helper()
	s.mu.Lock()
	got := s.normalize(s.out.String())
	s.mu.Unlock()
	golden.Check(t, name+".golden", []byte(got))
}

var (
	clock      = regexp.MustCompile(`\b\d\d:\d\d:\d\d\b`)
	date       = regexp.MustCompile(`\b\d{4}-\d\d-\d\d\b`)
	took       = regexp.MustCompile(`\b\d+(\.\d+)?(ms|s)\b`)
	instanceID = regexp.MustCompile(`\b([a-z0-9-]+-v\d+)-[0-9a-f]{6}\b`)
	digest     = regexp.MustCompile(`sha256-[0-9a-f]{12,64}`)
	byteCount  = regexp.MustCompile(`\(\d+ bytes`)
)

func (s *session) normalize(out string) string {
	for i := 0; i+1 < len(s.subst); i += 2 {
		out = strings.ReplaceAll(out, s.subst[i], s.subst[i+1])
	}
	out = strings.ReplaceAll(out, s.d.admin, "ADMIN-TOKEN")
	out = strings.ReplaceAll(out, s.d.url, "http://API")
	out = strings.ReplaceAll(out, strings.TrimPrefix(s.d.url, "http://"), "API-ADDRESS")
	out = strings.ReplaceAll(out, s.d.dataDir, "DATA")
	out = strings.ReplaceAll(out, s.d.config, "CONFIG")
	out = strings.ReplaceAll(out, filepath.Dir(s.d.dataDir), "TMP")
	out = clock.ReplaceAllString(out, "HH:MM:SS")
	out = date.ReplaceAllString(out, "YYYY-MM-DD")
	out = took.ReplaceAllString(out, "Ns")
	out = instanceID.ReplaceAllString(out, "$1-ID")
	out = digest.ReplaceAllString(out, "sha256-DIGEST")
	return byteCount.ReplaceAllString(out, "(N bytes")
}

// syncBuffer is a bytes.Buffer safe for a verb's goroutines (Ctrl-C's
// watcher writes too).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeZip writes a zip artifact with one file to dir and returns its path.
func writeZip(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "app.zip")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	w, _ := zw.Create("README")
	io.WriteString(w, "an app that is a shell command\n")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// lastDeployment is app's newest deployment.
func (d *testDaemon) lastDeployment(app string) store.Deployment {
	d.t.Helper()
	ds, err := d.st.Deployments(context.Background(), app)
	if err != nil || len(ds) == 0 {
		d.t.Fatalf("no deployment of %s (%v)", app, err)
	}
	return ds[len(ds)-1]
}
