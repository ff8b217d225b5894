package deploy_test

// The fake app. These tests need no JVM: an instance's startup command
// re-runs the test binary itself with testAppEnv set, as Nomad's driver
// tests do, and TestMain hands over to runTestApp.
//
// What an instance does comes from two places:
//   - testapp.conf in its release directory, which is part of the artifact
//     (see appConf.zip): its version, a start delay, when to exit;
//   - files in its control directory (TESTAPP_CTL, an app setting), which a
//     test creates while the instance runs: "<instance id>.sick" makes its
//     health endpoint fail.
//
// Each instance records itself in <ctl>/pids/<pid> before anything else,
// so a test can tell whether every process it caused to start is gone.

import (
	"archive/zip"
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/runtime"
)

const (
	// confFile is the fake app's configuration inside the artifact.
	confFile = "testapp.conf"
	// ctlEnv names the app setting that holds the control directory.
	ctlEnv = "TESTAPP_CTL"
	// maxLifetime ends a fake app that outlived its test by far, should the
	// parent watch below ever miss.
	maxLifetime = 3 * time.Minute
	// truncatedBody is what /truncated sends of the 1 MB it promises.
	truncatedBody = "partial" // 7 bytes
)

// appConf is what an artifact tells the fake app to do.
type appConf struct {
	Version string
	// StartDelay passes before the app listens on its port.
	StartDelay time.Duration
	// ExitAfter, if set, makes the app exit with code 3 that long after it
	// started.
	ExitAfter time.Duration
}

// zip returns an artifact (a zip) holding c as testapp.conf.
func (c appConf) zip() []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, err := zw.Create(confFile)
	if err != nil {
		panic(err)
	}
	fmt.Fprintf(f, "version=%s\nstart_delay=%s\nexit_after=%s\n", c.Version, c.StartDelay, c.ExitAfter)
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func readAppConf(path string) (appConf, error) {
	f, err := os.Open(path)
	if err != nil {
		return appConf{}, err
	}
	defer f.Close()
	var c appConf
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "version":
			c.Version = v
		case "start_delay":
			c.StartDelay, err = time.ParseDuration(v)
		case "exit_after":
			c.ExitAfter, err = time.ParseDuration(v)
		}
		if err != nil {
			return c, fmt.Errorf("%s: %s: %w", path, k, err)
		}
	}
	return c, sc.Err()
}

// runTestApp is the fake app's main; it returns the exit code.
func runTestApp() int {
	ctl, id := os.Getenv(ctlEnv), os.Getenv("SLIPWAY_INSTANCE_ID")
	c, err := readAppConf(confFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := recordStart(ctl, c.Version, id); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	go watchParent()
	if c.ExitAfter > 0 {
		time.AfterFunc(c.ExitAfter, func() {
			fmt.Println("exiting as testapp.conf says")
			os.Exit(3)
		})
	}
	time.Sleep(c.StartDelay)
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Printf("version %s listening on %s\n", c.Version, ln.Addr())
	err = http.Serve(ln, appHandler(c, ctl, id))
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// recordStart writes "<version> <instance id> <start ticks>" to
// <ctl>/pids/<pid>.
func recordStart(ctl, version, id string) error {
	dir := filepath.Join(ctl, "pids")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	pid := os.Getpid()
	ticks, err := runtime.StartTicks(pid)
	if err != nil {
		return err
	}
	// Written aside and renamed, so that the test never reads half of it.
	tmp := filepath.Join(dir, fmt.Sprintf(".%d", pid))
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%s %s %d", version, id, ticks), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, fmt.Sprint(pid)))
}

// watchParent ends the app once the test process that started it is gone
// (the app is then re-parented), so that a crashed or timed-out test run
// leaves nothing behind. Instances live in sessions of their own, so
// nothing else would stop them.
func watchParent() {
	parent := os.Getppid()
	deadline := time.Now().Add(maxLifetime)
	for range time.Tick(200 * time.Millisecond) {
		if os.Getppid() != parent || time.Now().After(deadline) {
			os.Exit(4)
		}
	}
}

func appHandler(c appConf, ctl, id string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "version=%s", c.Version)
	})
	// /health fails while the test says this instance is sick.
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if _, err := os.Stat(filepath.Join(ctl, id+".sick")); err == nil {
			http.Error(w, "sick, as the test says", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	// /env?k=NAME answers the value of the variable NAME.
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.URL.Query().Get("k")))
	})
	// /file?name=F answers the file F of the working directory, the
	// release directory, as the app finds it now.
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(b)
	})
	// /slow?d=3s answers after d, or not at all if the client goes first;
	// with only=V, only version V is slow and the others answer at once.
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		if only := r.URL.Query().Get("only"); only != "" && only != c.Version {
			d = 0
		}
		select {
		case <-time.After(d):
			fmt.Fprintf(w, "version=%s", c.Version)
		case <-r.Context().Done():
		}
	})
	// /truncated promises a megabyte, sends 7 bytes and hangs up.
	mux.HandleFunc("/truncated", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nContent-Type: text/plain\r\n\r\n%s", truncatedBody)
		buf.Flush()
	})
	return mux
}
