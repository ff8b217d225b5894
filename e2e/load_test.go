package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// loadOptions says which kinds of load to run against an app.
type loadOptions struct {
	Steady int // clients requesting every 100 ms
	Hammer int // keep-alive clients requesting as fast as they can
	Slow   int // clients looping over 2 s requests
	// Fresh clients open a new connection for every request, one every
	// 10 ms: a refused connection shows there.
	Fresh int
	// MaxDuration bounds the whole load, whatever happens.
	MaxDuration time.Duration
	// AcrossNodes is a load through a balancer in front of several nodes,
	// which switch to a new release one after the other, within the
	// switch window: a client may see the old one after the new one
	// meanwhile. Such answers are counted (wentBack), not failed; the test
	// checks them against the window.
	AcrossNodes bool
}

// call is one finished request.
type call struct {
	kind       string
	start, end time.Time
	version    int
}

// load runs requests against an app until stopped, counting every failure
// and every time a client sees an older version after a newer one.
type load struct {
	d      *daemon
	app    string
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex // guards the fields below
	total    map[string]int
	failures []string
	// refused counts the connections refused, among the failures.
	refused int
	slow    []call
	// quick are the answered requests other than the slow ones.
	quick    []call
	versions map[int]int // requests answered per version
	// acrossNodes: see loadOptions; wentBack counts those answers.
	acrossNodes bool
	wentBack    int
	// wentBackSeen are the first of those answers: when, and the body.
	wentBackSeen []string
}

func startLoad(t *testing.T, d *daemon, app string, o loadOptions) *load {
	ctx, cancel := context.WithTimeout(context.Background(), o.MaxDuration)
	l := &load{d: d, app: app, cancel: cancel, total: map[string]int{}, versions: map[int]int{}, acrossNodes: o.AcrossNodes}
	run := func(kind, path string, pause time.Duration) {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.client(ctx, kind, path, pause)
		}()
	}
	for range o.Steady {
		run("steady", "/", 100*time.Millisecond)
	}
	for range o.Hammer {
		run("hammer", "/", 0)
	}
	for range o.Slow {
		run("slow", "/slow?ms=2000", 0)
	}
	for range o.Fresh {
		run("fresh", "/", 10*time.Millisecond)
	}
	t.Cleanup(l.stop)
	return l
}

// client is one bounded request loop with its own keep-alive connection.
func (l *load) client(ctx context.Context, kind, path string, pause time.Duration) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableKeepAlives: kind == "fresh"}}
	defer client.CloseIdleConnections()
	newest := 0
	for i := 0; i < 2_000_000 && ctx.Err() == nil; i++ {
		start := time.Now()
		code, body, err := l.d.get(context.Background(), client, l.app, path)
		c := call{kind: kind, start: start, end: time.Now(), version: parseVersion(body)}
		l.record(c, code, body, err, newest)
		newest = max(newest, c.version)
		if pause > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
	}
}

func (l *load) record(c call, code int, body string, err error, newest int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total[c.kind]++
	switch {
	case err != nil:
		if errors.Is(err, syscall.ECONNREFUSED) {
			l.refused++
		}
		l.failures = append(l.failures, fmt.Sprintf("%s %s: %v", c.kind, c.start.Format("15:04:05.000"), err))
	case code != 200:
		l.failures = append(l.failures, fmt.Sprintf("%s %s: status %d: %.200s", c.kind, c.start.Format("15:04:05.000"), code, body))
	case c.version < newest && l.acrossNodes:
		l.wentBack++
		if len(l.wentBackSeen) < 10 {
			l.wentBackSeen = append(l.wentBackSeen, fmt.Sprintf("%s..%s %.80s", c.start.Format("15:04:05.000"), c.end.Format("15:04:05.000"), body))
		}
		l.versions[c.version]++
		l.quick = append(l.quick, c)
	case c.version < newest:
		l.failures = append(l.failures, fmt.Sprintf("%s %s: version went back from %d to %d", c.kind, c.start.Format("15:04:05.000"), newest, c.version))
	default:
		l.versions[c.version]++
		if c.kind == "slow" {
			l.slow = append(l.slow, c)
		} else {
			l.quick = append(l.quick, c)
		}
	}
}

func parseVersion(body string) int {
	i := strings.Index(body, "version=")
	if i < 0 {
		return 0
	}
	var v int
	fmt.Sscanf(body[i+len("version="):], "%d", &v)
	return v
}

// stop ends the load and waits for every client.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// check fails the test on any failure and logs what the load did.
func (l *load) check(t *testing.T) {
	t.Helper()
	l.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("requests by kind: %v; answered per version: %v; connections refused: %d", l.total, l.versions, l.refused)
	if n := len(l.failures); n > 0 {
		t.Errorf("%d requests failed; the first ones:\n%s", n, strings.Join(l.failures[:min(n, 20)], "\n"))
	}
}

// startedAfterOn counts the requests that started after at and were
// answered by version.
func (l *load) startedAfterOn(at time.Time, version int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range slices.Concat(l.quick, l.slow) {
		if c.start.After(at) && c.version == version {
			n++
		}
	}
	return n
}

// inFlightAt counts the slow requests that were in flight at t and were
// answered by version.
func (l *load) inFlightAt(at time.Time, version int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.slow {
		if c.start.Before(at) && c.end.After(at) && c.version == version {
			n++
		}
	}
	return n
}

// longestPause is the longest time a quick request (not a slow one) that
// overlaps [from, to] took, and when it started.
func (l *load) longestPause(from, to time.Time) (time.Duration, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var longest time.Duration
	var at time.Time
	for _, c := range l.quick {
		if c.end.After(from) && c.start.Before(to) && c.end.Sub(c.start) > longest {
			longest, at = c.end.Sub(c.start), c.start
		}
	}
	return longest, at
}

// medianQuick is the median time a quick request took, over the whole load.
func (l *load) medianQuick() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	ds := make([]time.Duration, 0, len(l.quick))
	for _, c := range l.quick {
		ds = append(ds, c.end.Sub(c.start))
	}
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// answeredBetween counts the quick requests that started in [from, to].
func (l *load) answeredBetween(from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.quick {
		if !c.start.Before(from) && !c.start.After(to) {
			n++
		}
	}
	return n
}

// refusals counts the connections refused so far.
func (l *load) refusals() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused
}

// answered counts the quick requests answered so far.
func (l *load) answered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.quick)
}
