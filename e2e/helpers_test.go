// Package e2e runs the real slipway binary, the real Java test app and real
// HTTP clients on loopback.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slipway-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "slipway")
	// The CLI keeps logins in the user's config directory: give the tests
	// their own, empty one.
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	if err := buildSlipway(binary, "e2e"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// parallelTests: the longest tests, which mostly wait for slow-starting
// Java apps (TestSCM, TestTomcatStack, TestZeroDowntimeDeploy,
// TestAppTakesNothingThatIsNotItsOwn, TestLifecycleUnderLoad,
// TestDashboard, TestClusterExternalEtcd), call t.Parallel, so that they run two at a time (go
// test's -parallel is GOMAXPROCS) once the others are done: it keeps the
// suite within its time on a two-core machine. Each has a daemon and
// ports of its own; none sets the environment; their pass criteria are
// counts (zero failed requests), never latencies, so a busier machine
// makes them slower, not red.
//
// buildSlipway builds the slipway binary at out, stamped with version (as
// scripts/install stamps a release). With the race detector unless
// SLIPWAY_E2E_RACE=0: the end-to-end tests are where the daemon's
// goroutines really run side by side.
func buildSlipway(out, version string) error {
	build := []string{"build", "-o", out, "-ldflags", "-X github.com/slipway-dev/slipway/internal/version.version=" + version}
	if os.Getenv("SLIPWAY_E2E_RACE") != "0" {
		build = append(build, "-race")
	}
	if b, err := exec.Command("go", append(build, "../cmd/slipway")...).CombinedOutput(); err != nil {
		return fmt.Errorf("building slipway: %v\n%s", err, b)
	}
	return nil
}

// daemon is a running `slipway server`.
type daemon struct {
	t       *testing.T
	dataDir string
	apiURL  string
	httpURL string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	exited  chan struct{}
	args    []string
	// bin is the slipway binary the daemon runs; binary unless a test
	// gives it one of its own (to upgrade it).
	bin string
	// pid is the daemon's process once an upgrade replaced the one
	// started (whose Wait returns only when both have exited: they share
	// the log's pipe); 0 before.
	pid int
	// cred runs the daemon as another user; nil for the test's own.
	cred *syscall.Credential
	// token is the admin token, read from admin.token once the daemon is up.
	token string
	// joined is a node that joined a cluster: it has no admin.token of
	// its own (the cluster's is the first node's), token is set by the test.
	joined bool
	// host is the address the daemon listens on; 127.0.0.1 when "".
	host string
	// name is a cluster node's name.
	name string
	// wrap runs the daemon inside another command, like
	// ip netns exec NS (which execs it in place).
	wrap      []string
	apiClient *http.Client
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDaemon starts slipway server on a new data directory with free
// loopback ports; it is stopped with SIGTERM when the test ends.
func startDaemon(t *testing.T, extra ...string) *daemon {
	t.Helper()
	return launch(t, nil, extra...)
}

// launch starts slipway server; with apiClient set, its API is reached
// over HTTPS with that client (extra must give the API a certificate).
func launch(t *testing.T, apiClient *http.Client, extra ...string) *daemon {
	t.Helper()
	return launchIn(t, filepath.Join(passableTempDir(t), "data"), apiClient, extra...)
}

// launchIn is launch with the data directory dataDir.
func launchIn(t *testing.T, dataDir string, apiClient *http.Client, extra ...string) *daemon {
	t.Helper()
	return launchWith(t, &daemon{t: t, dataDir: dataDir}, apiClient, extra...)
}

// launchWith is launchIn for a daemon with its data directory, binary or
// user set.
func launchWith(t *testing.T, d *daemon, apiClient *http.Client, extra ...string) *daemon {
	t.Helper()
	if d.bin == "" {
		d.bin = binary
	}
	d.apiClient = http.DefaultClient
	apiPort, httpPort := freePort(t), freePort(t)
	if d.host == "" {
		d.host = "127.0.0.1"
	}
	d.apiURL = fmt.Sprintf("http://%s:%d", d.host, apiPort)
	if apiClient != nil {
		d.apiClient = apiClient
		d.apiURL = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	}
	d.httpURL = fmt.Sprintf("http://%s:%d", d.host, httpPort)
	d.args = append([]string{"server", "--data-dir", d.dataDir,
		"--http-listen", fmt.Sprintf("%s:%d", d.host, httpPort),
		"--api-listen", fmt.Sprintf("%s:%d", d.host, apiPort)}, extra...)
	d.start()
	t.Cleanup(func() {
		d.stop()
		killLeftovers(t, d.dataDir)
		if t.Failed() {
			t.Logf("slipway server log:\n%s", d.log)
		}
	})
	return d
}

// passableTempDir is t.TempDir(), with it and the folder above it (which
// the testing package makes 0700) open to others for passing through: as
// root, the daemon runs each app as a user of its own, which must reach
// its release directory in the data directory.
func passableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func (d *daemon) start() {
	d.t.Helper()
	d.log = &bytes.Buffer{}
	d.pid = 0
	d.cmd = exec.Command(d.bin, d.args...)
	if len(d.wrap) > 0 {
		d.cmd = exec.Command(d.wrap[0], slices.Concat(d.wrap[1:], []string{d.bin}, d.args)...)
	}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if d.cred != nil {
		d.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: d.cred}
	}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.exited = make(chan struct{})
	go func() { d.cmd.Wait(); close(d.exited) }()
	waitFor(d.t, 60*time.Second, "the daemon to answer /healthz", func() bool {
		resp, err := d.apiClient.Get(d.apiURL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if d.joined {
		return
	}
	b, err := os.ReadFile(filepath.Join(d.dataDir, "admin.token"))
	if err != nil {
		d.t.Fatalf("the daemon left no admin.token: %v", err)
	}
	d.token = strings.TrimSpace(string(b))
}

// request makes an API request with the admin token.
func (d *daemon) request(method, path string, body io.Reader) *http.Request {
	d.t.Helper()
	req, err := http.NewRequest(method, d.apiURL+path, body)
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	return req
}

// api sends an API request with the admin token.
func (d *daemon) api(method, path string, body io.Reader) (*http.Response, error) {
	d.t.Helper()
	return d.apiClient.Do(d.request(method, path, body))
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop() {
	select {
	case <-d.exited:
		return
	default:
	}
	syscall.Kill(d.mainPID(), syscall.SIGTERM)
	select {
	case <-d.exited:
		d.checkRaces()
		if code := d.cmd.ProcessState.ExitCode(); code != 0 {
			d.t.Errorf("slipway server exited with code %d after SIGTERM", code)
		}
	case <-time.After(90 * time.Second):
		syscall.Kill(d.mainPID(), syscall.SIGKILL)
		d.t.Errorf("slipway server did not exit within 90s of SIGTERM")
	}
}

// mainPID is the daemon's process: the one started, or the one an
// upgrade replaced it with.
func (d *daemon) mainPID() int {
	if d.pid != 0 {
		return d.pid
	}
	return d.cmd.Process.Pid
}

// kill sends SIGKILL and waits for the process to be gone.
func (d *daemon) kill() {
	syscall.Kill(d.mainPID(), syscall.SIGKILL)
	<-d.exited
	d.checkRaces()
}

// checkRaces fails the test if the race detector reported a data race in
// the daemon that has exited (it goes on running after a report, and exits
// with code 66 in the end).
func (d *daemon) checkRaces() {
	if strings.Contains(d.log.String(), "WARNING: DATA RACE") {
		d.t.Errorf("the race detector found a data race in slipway server; the report is in its log")
	}
}

// cli runs a slipway verb against the daemon and returns its output.
func (d *daemon) cli(args ...string) (string, error) { return d.cliEnv(nil, args...) }

// cliEnv runs a verb with more environment variables, which win.
func (d *daemon) cliEnv(env []string, args ...string) (string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), "SLIPWAY_URL="+d.apiURL, "SLIPWAY_DATA_DIR="+d.dataDir), env...)
	if d.joined {
		cmd.Env = append(cmd.Env, "SLIPWAY_TOKEN="+d.token)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustCLI runs a verb that must succeed.
func (d *daemon) mustCLI(args ...string) string {
	d.t.Helper()
	out, err := d.cli(args...)
	if err != nil {
		d.t.Fatalf("slipway %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// getJSON decodes an API answer.
func (d *daemon) getJSON(path string, v any) {
	d.t.Helper()
	resp, err := d.api(http.MethodGet, path, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		d.t.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		d.t.Fatal(err)
	}
}

func (d *daemon) app(name string) api.App {
	d.t.Helper()
	var a api.App
	d.getJSON("/api/v1/apps/"+name, &a)
	return a
}

func (d *daemon) deployments(app string) []api.Deployment {
	d.t.Helper()
	var deps []api.Deployment
	d.getJSON("/api/v1/apps/"+app+"/deployments", &deps)
	return deps
}

func (d *daemon) releases(app string) []api.Release {
	d.t.Helper()
	var rels []api.Release
	d.getJSON("/api/v1/apps/"+app+"/releases", &rels)
	return rels
}

// get requests path of app through the router.
func (d *daemon) get(ctx context.Context, client *http.Client, app, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.httpURL+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = app + ".localhost"
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// body returns what app answers at path, failing the test on an error.
func (d *daemon) body(app, path string) string {
	d.t.Helper()
	code, b, err := d.get(context.Background(), http.DefaultClient, app, path)
	if err != nil || code != 200 {
		d.t.Fatalf("GET %s of %s: %d %q %v", path, app, code, b, err)
	}
	return b
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// alive reports whether a process with pid exists (and is not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

// httpClient is a client without keep-alive, for polling.
func (d *daemon) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
}

// interruptSignal is what Ctrl-C sends.
var interruptSignal = syscall.SIGINT

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startCLI starts a verb in the background with a pipe to its stdin.
func (d *daemon) startCLI(args ...string) (*exec.Cmd, io.WriteCloser, *syncBuffer) {
	d.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "SLIPWAY_URL="+d.apiURL, "SLIPWAY_DATA_DIR="+d.dataDir)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, stdin, out
}

// waitForStep waits until app's newest deployment has reached step.
func (d *daemon) waitForStep(app, step string) {
	d.t.Helper()
	waitFor(d.t, 60*time.Second, "step "+step+" of "+app, func() bool {
		deps := d.deployments(app)
		if len(deps) == 0 {
			return false
		}
		for _, e := range deps[len(deps)-1].Events {
			if e.Step == step {
				return true
			}
		}
		return false
	})
}

// waitForState waits until app's newest deployment is in state.
func (d *daemon) waitForState(app, state string) {
	d.t.Helper()
	waitFor(d.t, 60*time.Second, app+" to be "+state, func() bool {
		deps := d.deployments(app)
		return len(deps) > 0 && deps[len(deps)-1].State == state
	})
}

// killLeftovers kills any process still running in a directory under
// dataDir: instances that a failed test left without a daemon. It reports
// them only if the test passed, where no instance may be left. The cgroups
// they ran in go too, as the next daemon would remove them.
func killLeftovers(t *testing.T, dataDir string) {
	cwds, _ := filepath.Glob("/proc/[0-9]*/cwd")
	var cgroups []string
	for _, c := range cwds {
		dir, err := os.Readlink(c)
		if err != nil || !strings.HasPrefix(dir, dataDir+"/") {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(c)))
		if keep, _ := os.ReadFile(filepath.Join(dataDir, "keep-instances")); len(keep) == 0 && !t.Failed() {
			t.Errorf("process %d still runs in %s after slipway server stopped", pid, dir)
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if p, ok := strings.CutPrefix(line, "0::"); ok && strings.Contains(p, "/slipway-") {
					cgroups = append(cgroups, p)
				}
			}
		}
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, cg := range cgroups {
		for _, mount := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
			dir := filepath.Join(mount, cg)
			for deadline := time.Now().Add(5 * time.Second); os.Remove(dir) != nil && time.Now().Before(deadline); {
				if _, err := os.Stat(dir); err != nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			os.Remove(filepath.Dir(dir)) // slipway-HASH, once empty
		}
	}
}
