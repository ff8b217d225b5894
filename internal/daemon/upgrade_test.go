package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/logs"
)

// childEnv makes the test binary, started by an upgrade in place of a new
// slipway, play a new process that fails once it has the data directory:
// a failure no broken binary shows before the handoff (the end-to-end
// tests cover those), like a store that does not open.
const childEnv = "SLIPWAY_TEST_UPGRADE_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(failAfterHandoff(dir))
	}
	if os.Getenv(parentEnv) != "" {
		os.Exit(playUpgradedPair())
	}
	os.Exit(m.Run())
}

// failAfterHandoff asks the old process for the data directory dir, takes
// its lock, and exits with status 7, the lock going with it.
func failAfterHandoff(dir string) int {
	up, err := newUpgrader(slog.Default())
	if err != nil || !up.child() {
		fmt.Fprintln(os.Stderr, "not started by an upgrade:", err)
		return 2
	}
	if err := up.askForDataDir(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, err := waitLock(context.Background(), dir, time.Minute); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Fprintln(os.Stderr, "the new process had the data directory, and fails on purpose")
	return 7
}

// TestUpgradeFailsAfterHandoff: when the new process of an upgrade fails
// after the old one handed it the data directory, the old one takes it
// back and serves on: the API answers with the store it had, says why
// the upgrade failed, and the daemon holds the data directory's lock.
func TestUpgradeFailsAfterHandoff(t *testing.T) {
	dir := t.TempDir()
	apiAddr := freeAddr(t)
	c := Config{DataDir: dir, HTTPListen: freeAddr(t), APIListen: apiAddr, BaseDomain: DefaultBaseDomain,
		MaxUpload: artifact.DefaultMaxUpload, KeepReleases: 10, Isolation: "none",
		Logs:   logs.Options{FileSize: logs.DefaultFileSize, Quota: logs.DefaultQuota, Retention: logs.DefaultRetention},
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	base := "http://" + apiAddr
	var token string
	poll(t, "the daemon to serve", func() bool {
		b, err := os.ReadFile(AdminTokenFile(dir))
		token = strings.TrimSpace(string(b))
		return err == nil && call(t, base, token, "GET", "/healthz", "") == 200
	})
	if got := call(t, base, token, "POST", "/api/v1/apps", `{"name":"before"}`); got != 201 {
		t.Fatalf("creating an app: %d", got)
	}

	t.Setenv(childEnv, dir)
	if got := call(t, base, token, "POST", "/api/v1/admin/upgrade", ""); got != 202 {
		t.Fatalf("POST /api/v1/admin/upgrade: %d, want 202", got)
	}
	var v api.Version
	poll(t, "the upgrade to fail", func() bool {
		v = api.Version{}
		getJSON(t, base, token, "/api/v1/version", &v)
		return v.Upgrade != nil && v.Upgrade.State != api.UpgradeRunning
	})
	if v.PID != os.Getpid() || v.Upgrade.State != api.UpgradeFailed || !strings.Contains(v.Upgrade.Error, "exit status 7") ||
		!strings.Contains(v.Upgrade.Error, "took it back and serves on") {
		t.Errorf("after the upgrade: %+v, %+v; want this process serving, the upgrade failed with the new process's exit status", v, v.Upgrade)
	}
	var apps []api.App
	getJSON(t, base, token, "/api/v1/apps", &apps)
	if len(apps) != 1 || apps[0].Name != "before" {
		t.Errorf("apps after the failed upgrade: %+v, want the one made before", apps)
	}
	if got := call(t, base, token, "POST", "/api/v1/apps", `{"name":"after"}`); got != 201 {
		t.Errorf("creating an app after the failed upgrade: %d", got)
	}
	if _, err := LockDataDir(dir); !errors.Is(err, ErrRunning) {
		t.Errorf("the data directory's lock after the failed upgrade: %v, want it held", err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func call(t *testing.T, base, token, method, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func getJSON(t *testing.T, base, token, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// poll waits for cond, up to a minute.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// testWriter sends the daemon's log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// parentEnv makes the test binary play an old process that upgrades to
// a new one (the test binary again) and exits once it is ready; the new
// one then asks parentExited many times, as SIGHUPs would, and prints
// what it saw on the output they share.
const parentEnv = "SLIPWAY_TEST_UPGRADE_PARENT"

// parentExitedChecks is how many times the new process asks: the
// answer must be true every time.
const parentExitedChecks = 200

func playUpgradedPair() int {
	up, err := newUpgrader(slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println("newUpgrader:", err)
		return 2
	}
	if !up.child() { // the old process: upgrade, and exit once the new one is ready
		if err := up.Ready(); err != nil {
			fmt.Println("ready:", err)
			return 2
		}
		// tableflip's loop takes Ready and an upgrade in either order when
		// both are there: an upgrade right after Ready may be "not ready".
		err := up.Upgrade()
		for deadline := time.Now().Add(5 * time.Second); err != nil && strings.Contains(err.Error(), "not ready") && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			err = up.Upgrade()
		}
		if err != nil {
			fmt.Println("upgrade:", err)
			return 2
		}
		return 0
	}
	if err := up.Ready(); err != nil {
		fmt.Println("ready:", err)
		return 2
	}
	for deadline := time.Now().Add(time.Minute); !up.parentExited(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			fmt.Println("the old process never exited")
			return 2
		}
	}
	n := 0
	for range parentExitedChecks {
		if up.parentExited() {
			n++
		}
	}
	fmt.Printf("after the old process exited, parentExited was true %d times of %d\n", n, parentExitedChecks)
	return 0
}

// TestUpgradeAfterTheOldProcessExited: a process an upgrade started can
// upgrade again, every time it is asked, once the process it replaced
// has exited. (tableflip's WaitForParent, asked with a context already
// done, said "still running" about every other time.)
func TestUpgradeAfterTheOldProcessExited(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), parentEnv+"=1")
	cmd.Stderr = testWriter{t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out) // until both processes have closed it
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the old process: %v (%s)", err, b)
	}
	want := fmt.Sprintf("parentExited was true %d times of %d", parentExitedChecks, parentExitedChecks)
	if got := strings.TrimSpace(string(b)); !strings.Contains(got, want) {
		t.Errorf("the new process said %q, want %q", got, want)
	}
}

// TestHandoffReaderSurvivesPanic: a panic while reading the handoff pipe
// is logged with its stack, and the reader starts again: the next new
// process's ask is still passed on.
func TestHandoffReaderSurvivesPanic(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex // guards logs
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	u := &upgrader{asks: make(chan int, 1), stopped: make(chan struct{})}
	r := &panicOnceReader{Reader: strings.NewReader("4242\n")}
	done := make(chan struct{})
	go func() {
		defer close(done)
		u.passAsks(log, r)
	}()
	select {
	case pid := <-u.asks:
		if pid != 4242 {
			t.Errorf("asked by pid %d, want 4242", pid)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the ask after the panic was not passed on")
	}
	close(u.stopped)
	<-done // the reader got to the end of the pipe
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"recovered a panic", "upgrade handoff reader", "the pipe broke", "panicOnceReader", "restarting after a panic"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the daemon's log lacks %q:\n%s", want, logs.String())
		}
	}
}

// panicOnceReader panics on its first Read, then reads from Reader.
type panicOnceReader struct {
	io.Reader
	panicked bool
}

func (r *panicOnceReader) Read(p []byte) (int, error) {
	if !r.panicked {
		r.panicked = true
		panic("the pipe broke")
	}
	return r.Reader.Read(p)
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
