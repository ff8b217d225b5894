package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/testapp"
)

// leaseTTL is the TTL the test app's lease job asks for.
const leaseTTL = 3 * time.Second

// TestLeases runs the Java test app with two jobs that tick every 200 ms:
// one takes lease "nightly" through SLIPWAY_LEASE_URL, the other runs
// while the platform's single runner file "runner" is there. Each tick
// that held its lease throughout appends instance,token,start,end to a
// file in the app's storage. Through a deploy whose new release starts
// slowly (the two releases run side by side for seconds), a scale 2→3→1,
// a restart and a kill -9 of the holder, no two ticks of different
// instances overlap, tokens never go backwards and grow with each new
// holder, and another instance takes over from the killed one within
// the TTL. One instance's secret acts on its own app's leases only, and
// bad calls get clear 4xx answers.
func TestLeases(t *testing.T) {
	d := startDaemon(t)
	jobs := map[string]string{"leaseJob": "nightly", "leaseTtl": leaseTTL.String(), "runnerJob": "runner"}
	v1 := testapp.Jar(t, "app.jar", withProps(jobs, "version", "1"))
	v2 := testapp.Jar(t, "app.jar", withProps(jobs, "version", "2", "startDelaySeconds", "6"))
	d.mustCLI("apps", "create", "jobs", "--single-runner", "runner", "--stop-grace", "5")
	d.mustCLI("scale", "-a", "jobs", "2")
	d.mustCLI("deploy", "-a", "jobs", v1)
	storage := filepath.Join(d.dataDir, "apps", "jobs", "storage")
	nightly, runner := filepath.Join(storage, "lease-nightly.log"), filepath.Join(storage, "runner-runner.log")
	d.waitForTicks(nightly, runner)

	start := time.Now()
	d.mustCLI("deploy", "-a", "jobs", v2)
	t.Logf("the slow deploy took %s", time.Since(start).Round(100*time.Millisecond))
	d.waitForTicks(nightly, runner)
	if got := holders(readTicks(t, nightly)); !slices.ContainsFunc(got, func(id string) bool { return strings.Contains(id, "-v2-") }) {
		t.Fatalf("no instance of v2 ran the job after the deploy; holders %v", got)
	}
	for _, n := range []string{"3", "1"} {
		d.mustCLI("scale", "-a", "jobs", n)
		d.waitForTicks(nightly, runner)
	}
	d.mustCLI("scale", "-a", "jobs", "2")
	d.mustCLI("restart", "-a", "jobs")
	d.waitForTicks(nightly, runner)

	// kill -9 of the holder: another instance takes over within the TTL.
	holder := d.leaseHolder("jobs", "nightly")
	var pid int
	for _, i := range d.app("jobs").Instances {
		if i.ID == holder {
			pid = i.PID
		}
	}
	if pid == 0 {
		t.Fatalf("the holder %s is not among the instances %+v", holder, d.app("jobs").Instances)
	}
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var took time.Duration
	waitFor(t, 10*time.Second, "another instance to run the job", func() bool {
		for _, tk := range readTicks(t, nightly) {
			if tk.instance != holder && tk.start.After(killed) {
				took = tk.start.Sub(killed)
				return true
			}
		}
		return false
	})
	t.Logf("another instance ran the job %s after the holder was killed", took.Round(time.Millisecond))
	if took > leaseTTL {
		t.Errorf("the takeover took %s, more than the TTL %s", took, leaseTTL)
	}

	for _, f := range []struct {
		path string
		// least is how many instances must have run the job: one of v1,
		// of v2, after the restart, and for the lease, after the kill
		// (the single runner's holder may be another instance).
		least int
	}{{nightly, 4}, {runner, 3}} {
		ticks := readTicks(t, f.path)
		checkTicks(t, filepath.Base(f.path), ticks)
		t.Logf("%s: %d ticks by %d instances", filepath.Base(f.path), len(ticks), len(holders(ticks)))
		if n := len(holders(ticks)); n < f.least {
			t.Errorf("%s: %d instances ran the job (%v), want at least %d", filepath.Base(f.path), n, holders(ticks), f.least)
		}
	}

	out := d.mustCLI("leases", "-a", "jobs")
	if !strings.Contains(out, "nightly ") || !strings.Contains(out, "runner (single runner)") || !strings.Contains(out, "FENCING TOKEN") {
		t.Errorf("slipway leases:\n%s", out)
	}
	checkLeaseEndpoint(t, d)
}

// checkLeaseEndpoint: one instance's secret acts on its own app's leases
// only; bad calls are refused with clear 4xx answers; no secret is
// logged.
func checkLeaseEndpoint(t *testing.T, d *daemon) {
	t.Helper()
	d.mustCLI("apps", "create", "other")
	d.mustCLI("deploy", "-a", "other", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	mine := strings.TrimSpace(d.body("other", "/env?name=SLIPWAY_LEASE_URL"))
	theirs := strings.TrimSpace(d.body("jobs", "/env?name=SLIPWAY_LEASE_URL"))
	if !strings.HasPrefix(mine, "http://127.0.0.1:") || mine == theirs {
		t.Fatalf("SLIPWAY_LEASE_URL of other %q, of jobs %q", mine, theirs)
	}
	before := d.lease("jobs", "nightly")

	// other's "nightly" is other's own lease, whatever jobs holds.
	if code, body := leaseCall(t, "POST", mine+"/nightly?ttl=10s"); code != 200 || !strings.Contains(body, `"holder": "other-v1-`) {
		t.Errorf("other takes its nightly: %d %s", code, body)
	}
	if code, body := leaseCall(t, "DELETE", mine+"/nightly"); code != 204 {
		t.Errorf("other gives up its nightly: %d %s", code, body)
	}
	if code, body := leaseCall(t, "GET", mine+"/nightly"); code != 404 {
		t.Errorf("other's nightly once given up: %d %s, want 404 (jobs' is another lease)", code, body)
	}
	if after := d.lease("jobs", "nightly"); after.Holder != before.Holder || after.FencingToken != before.FencingToken {
		t.Errorf("jobs' lease changed while other used its own: %+v, then %+v", before, after)
	}
	secret := mine[strings.LastIndex(mine, "/")+1:]
	base := strings.TrimSuffix(mine, "/"+secret)
	for _, tt := range []struct {
		name, method, url string
		want              int
		says              string
	}{
		{"a path that climbs to another app", "POST", mine + "/../jobs/nightly", 401, "unknown lease secret"},
		{"a parameter naming another app", "POST", mine + "/nightly?app=jobs", 400, `unknown parameter "app"`},
		{"a made-up secret", "POST", base + "/AAAA" + secret[4:] + "/nightly", 401, "unknown lease secret"},
		{"a bad name", "POST", mine + "/Nightly%20Batch", 400, "invalid lease name"},
		{"a name too long", "POST", mine + "/" + strings.Repeat("n", 200), 400, "1 to 128"},
		{"a TTL too short", "POST", mine + "/x?ttl=500ms", 400, "whole seconds from 1s to 10m0s"},
		{"a TTL too long", "POST", mine + "/x?ttl=1h", 400, "invalid lease TTL"},
		{"a method", "PUT", mine + "/x", 405, "POST takes or renews it"},
		{"the single runner's name", "POST", theirs + "/runner", 409, "single runner lease"},
	} {
		code, body := leaseCall(t, tt.method, tt.url)
		if code != tt.want || !strings.Contains(body, tt.says) {
			t.Errorf("%s: %s: %d %s, want %d saying %q", tt.name, tt.method, code, body, tt.want, tt.says)
		}
	}
	for _, s := range []string{secret, theirs[strings.LastIndex(theirs, "/")+1:]} {
		if strings.Contains(d.log.String(), s) {
			t.Errorf("the daemon's log holds an instance's lease secret")
		}
	}
}

// leaseCall calls the lease endpoint as an instance would.
func leaseCall(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e api.Error
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return resp.StatusCode, e.Error
	}
	return resp.StatusCode, string(b)
}

func withProps(base map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// lease reads app's lease name through the API.
func (d *daemon) lease(app, name string) api.Lease {
	d.t.Helper()
	var ls []api.Lease
	d.getJSON("/api/v1/apps/"+app+"/leases", &ls)
	for _, l := range ls {
		if l.Name == name {
			return l
		}
	}
	d.t.Fatalf("app %s holds no lease %s: %+v", app, name, ls)
	return api.Lease{}
}

// leaseHolder waits until an instance of app holds lease name, and
// returns it.
func (d *daemon) leaseHolder(app, name string) string {
	d.t.Helper()
	var holder string
	waitFor(d.t, 10*time.Second, "a holder of lease "+name, func() bool {
		var ls []api.Lease
		d.getJSON("/api/v1/apps/"+app+"/leases", &ls)
		for _, l := range ls {
			if l.Name == name {
				holder = l.Holder
			}
		}
		return holder != ""
	})
	return holder
}

// waitForTicks waits until each file has a tick that started from now on:
// the jobs go on after each change.
func (d *daemon) waitForTicks(files ...string) {
	d.t.Helper()
	since := time.Now()
	for _, f := range files {
		waitFor(d.t, 15*time.Second, "a tick in "+filepath.Base(f), func() bool {
			ticks := readTicks(d.t, f)
			return len(ticks) > 0 && slices.ContainsFunc(ticks, func(tk tick) bool { return tk.start.After(since) })
		})
	}
}

// tick is one run of a job, as the test app logs it.
type tick struct {
	instance   string
	token      int64
	start, end time.Time
}

func readTicks(t *testing.T, path string) []tick {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []tick
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), ",")
		if len(parts) != 4 {
			continue // a line being written
		}
		tok, err1 := strconv.ParseInt(parts[1], 10, 64)
		start, err2 := strconv.ParseInt(parts[2], 10, 64)
		end, err3 := strconv.ParseInt(parts[3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("%s: a bad line %q", path, sc.Text())
		}
		out = append(out, tick{parts[0], tok, time.UnixMicro(start), time.UnixMicro(end)})
	}
	slices.SortFunc(out, func(a, b tick) int { return a.start.Compare(b.start) })
	return out
}

// checkTicks: no two ticks overlap in time; the token never goes back,
// and grows whenever the instance changes.
func checkTicks(t *testing.T, name string, ticks []tick) {
	t.Helper()
	const at = "15:04:05.000000"
	for i := 1; i < len(ticks); i++ {
		prev, tk := ticks[i-1], ticks[i]
		// The ticks are sorted by start: the one that ends last so far
		// is the one each new tick may overlap.
		last := slices.MaxFunc(ticks[:i], func(a, b tick) int { return a.end.Compare(b.end) })
		if tk.start.Before(last.end) {
			t.Errorf("%s: ticks overlap: %s ran %s–%s (token %d), %s ran %s–%s (token %d)", name,
				last.instance, last.start.Format(at), last.end.Format(at), last.token,
				tk.instance, tk.start.Format(at), tk.end.Format(at), tk.token)
		}
		if tk.token < prev.token || (tk.instance != prev.instance && tk.token == prev.token) {
			t.Errorf("%s: token %d of %s after token %d of %s", name, tk.token, tk.instance, prev.token, prev.instance)
		}
	}
}

// holders lists the instances that ran ticks, in order of first tick.
func holders(ticks []tick) []string {
	var out []string
	for _, tk := range ticks {
		if !slices.Contains(out, tk.instance) {
			out = append(out, tk.instance)
		}
	}
	return out
}
