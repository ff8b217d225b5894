package router

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/access"
)

// testBackend is a real HTTP server that fails the test if a request
// reaches it after it was drained and retired.
type testBackend struct {
	*Backend
	srv     *httptest.Server
	gen     int
	stopped atomic.Bool
	late    atomic.Int64 // requests that arrived after stop
}

func newTestBackend(t *testing.T, gen int) *testBackend {
	t.Helper()
	tb := &testBackend{gen: gen}
	tb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tb.stopped.Load() {
			tb.late.Add(1)
		}
		if r.URL.Path == "/slow" {
			time.Sleep(50 * time.Millisecond)
		}
		fmt.Fprintf(w, "%d", gen)
	}))
	t.Cleanup(tb.srv.Close)
	tb.Backend = NewBackend(fmt.Sprintf("b%d", gen), strings.TrimPrefix(tb.srv.URL, "http://"))
	return tb
}

// TestSwapUnderLoad swaps an app's backend set over and over while clients
// hammer it. Every request must succeed, no request may reach a backend
// after Drain said it was empty, and no client may see a generation go
// backwards once it has seen a newer one.
func TestSwapUnderLoad(t *testing.T) {
	r := New(Options{})
	r.SetHosts("promo", []string{"promo.example.com"})
	front := httptest.NewServer(r)
	defer front.Close()

	first := newTestBackend(t, 0)
	r.Swap("promo", []*Backend{first.Backend})
	var failures, total atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var clients sync.WaitGroup
	for c := range 8 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			path := "/"
			if c%4 == 0 {
				path = "/slow"
			}
			hammer(ctx, t, front.URL+path, stop, &failures, &total)
		}()
	}
	current := []*testBackend{first}
	for gen := 1; gen <= 20; gen++ {
		next := []*testBackend{newTestBackend(t, gen), newTestBackend(t, gen)}
		old := r.Swap("promo", []*Backend{next[0].Backend, next[1].Backend})
		if got, want := len(old), len(current); got != want {
			t.Fatalf("swap %d returned %d old backends, want %d", gen, got, want)
		}
		if left := Drain(ctx, old, 5*time.Second); left != 0 {
			t.Fatalf("swap %d: %d requests still in flight after drain", gen, left)
		}
		for _, tb := range current {
			tb.stopped.Store(true)
		}
		current = next
		time.Sleep(20 * time.Millisecond) // let traffic reach the new set before the next swap
	}
	close(stop)
	clients.Wait()
	if failures.Load() != 0 {
		t.Errorf("%d of %d requests failed", failures.Load(), total.Load())
	}
	if total.Load() < 100 {
		t.Errorf("only %d requests were made; the test did not load the router", total.Load())
	}
	t.Logf("%d requests through 20 swaps", total.Load())
}

func hammer(ctx context.Context, t *testing.T, url string, stop chan struct{}, failures, total *atomic.Int64) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	newest := -1
	for i := 0; i < 100_000; i++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Host = "promo.example.com"
		resp, err := client.Do(req)
		total.Add(1)
		if err != nil {
			failures.Add(1)
			t.Errorf("request failed: %v", err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var gen int
		fmt.Sscanf(string(b), "%d", &gen)
		if resp.StatusCode != http.StatusOK {
			failures.Add(1)
			t.Errorf("status %d: %s", resp.StatusCode, b)
		} else if gen < newest {
			failures.Add(1)
			t.Errorf("went back from generation %d to %d", newest, gen)
		}
		newest = max(newest, gen)
	}
}

// TestDrainedBackendsGetNoRequests checks the late counters: no request
// reached a backend after its drain completed.
func TestDrainedBackendsGetNoRequests(t *testing.T) {
	r := New(Options{})
	r.SetHosts("a", []string{"a.test"})
	front := httptest.NewServer(r)
	defer front.Close()
	var all []*testBackend
	b0 := newTestBackend(t, 0)
	all = append(all, b0)
	r.Swap("a", []*Backend{b0.Backend})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var failures, total atomic.Int64
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{}
			for i := 0; i < 100_000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL, nil)
				req.Host = "A.TEST:80"
				resp, err := client.Do(req)
				total.Add(1)
				if err != nil || resp.StatusCode != 200 {
					failures.Add(1)
					if err == nil {
						resp.Body.Close()
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	prev := b0
	for gen := 1; gen <= 30; gen++ {
		nb := newTestBackend(t, gen)
		all = append(all, nb)
		old := r.Swap("a", []*Backend{nb.Backend})
		Drain(ctx, old, 5*time.Second)
		prev.stopped.Store(true)
		prev = nb
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	for _, tb := range all {
		if n := tb.late.Load(); n != 0 {
			t.Errorf("backend %s got %d requests after it was drained", tb.ID, n)
		}
	}
	if failures.Load() != 0 {
		t.Errorf("%d of %d requests failed", failures.Load(), total.Load())
	}
}

func TestRouting(t *testing.T) {
	r := New(Options{})
	r.SetHosts("promo", []string{"promo.localhost"})
	r.SetHosts("empty", []string{"empty.localhost"})
	r.Configure("empty", RouteConfig{})
	b := newTestBackend(t, 7)
	r.Swap("promo", []*Backend{b.Backend})
	tests := []struct {
		name, host string
		path       string
		want       int
	}{
		{"exact", "promo.localhost", "/", 200},
		{"the router's health for a host no app has", "10.0.0.5:8080", "/healthz", 200},
		{"an app's own /healthz goes to the app", "promo.localhost", "/healthz", 200},
		{"an app's own /healthz with nothing live", "empty.localhost", "/healthz", 503},
		{"upper case and port", "PROMO.Localhost:8080", "/", 200},
		{"trailing dot", "promo.localhost.", "/", 200},
		{"unknown host", "other.localhost", "/", 404},
		{"app with nothing live", "empty.localhost", "/", 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			req.Host = tt.host
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("host %q: got status %d, want %d", tt.host, rec.Code, tt.want)
			}
		})
	}
}

func TestForwardedHeaders(t *testing.T) {
	var got http.Header
	var gotHost string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, gotHost = r.Header.Clone(), r.Host
	}))
	defer srv.Close()
	r := New(Options{})
	r.SetHosts("promo", []string{"promo.localhost"})
	r.Swap("promo", []*Backend{NewBackend("b", strings.TrimPrefix(srv.URL, "http://"))})
	front := httptest.NewServer(r)
	defer front.Close()
	req, _ := http.NewRequest(http.MethodGet, front.URL, nil)
	req.Host = "promo.localhost:8080"
	req.Header.Set("X-Forwarded-For", "6.6.6.6") // not trusted: must not pass through
	req.Header.Set("X-Real-IP", "6.6.6.6")
	req.Header.Set("Forwarded", "for=6.6.6.6")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k, want := range map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "promo.localhost:8080"} {
		if got.Get(k) != want {
			t.Errorf("%s: got %q, want %q", k, got.Get(k), want)
		}
	}
	for _, k := range []string{"X-Real-IP", "Forwarded"} {
		if v := got.Get(k); v != "" {
			t.Errorf("%s from an untrusted client reached the app: %q", k, v)
		}
	}
	if gotHost != "promo.localhost:8080" {
		t.Errorf("Host: got %q, want the client's", gotHost)
	}
}

func TestFewestInFlight(t *testing.T) {
	a, b := NewBackend("a", "x"), NewBackend("b", "y")
	a.inflight.Store(3)
	for i := range uint32(4) {
		if got := pick([]*Backend{a, b}, i); got != b {
			t.Errorf("start %d: picked %s, want b (fewer in flight)", i, got.ID)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"Promo.Example.com.:8080": "promo.example.com",
		"promo.localhost":         "promo.localhost",
		"[::1]:8080":              "::1",
		"[::1]":                   "::1",
	} {
		if got := NormalizeHost(in); got != want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHoldUntilBackend: a request to an app with no backend waits for one.
func TestHoldUntilBackend(t *testing.T) {
	r := New(Options{})
	r.SetHosts("a", []string{"a.test"})
	r.Configure("a", RouteConfig{Hold: 5 * time.Second})
	defer r.Expect("a")()
	front := httptest.NewServer(r)
	defer front.Close()
	got := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, front.URL, nil)
		req.Host = "a.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	select {
	case code := <-got:
		t.Fatalf("request answered %d before any backend existed", code)
	case <-time.After(200 * time.Millisecond): // the request is holding
	}
	r.Swap("a", []*Backend{newTestBackend(t, 1).Backend})
	if code := <-got; code != 200 {
		t.Errorf("held request: status %d, want 200", code)
	}
}

// TestHoldTimeout: after the hold time, 503 with Retry-After.
func TestHoldTimeout(t *testing.T) {
	r := New(Options{})
	r.SetHosts("a", []string{"a.test"})
	r.Configure("a", RouteConfig{Hold: 100 * time.Millisecond})
	defer r.Expect("a")()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = "a.test"
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Errorf("got %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
}

// TestRetryOnDeadBackend: a backend that refuses connections, or drops them
// before answering, costs no request as long as another one is there.
func TestRetryOnDeadBackend(t *testing.T) {
	good := newTestBackend(t, 2)
	refused := NewBackend("refused", closedAddr(t))
	dropper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close() // closes before any answer
	}))
	defer dropper.Close()
	dropped := NewBackend("dropper", strings.TrimPrefix(dropper.URL, "http://"))
	tests := []struct {
		name   string
		bad    *Backend
		method string
		body   string
		want   int
	}{
		{"refused GET", refused, "GET", "", 200},
		{"refused POST with a body", refused, "POST", "data", 200},
		{"dropped GET", dropped, "GET", "", 200},
		{"dropped HEAD", dropped, "HEAD", "", 200},
		{"dropped POST after its body was sent", dropped, "POST", "data", 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Options{})
			r.SetHosts("a", []string{"a.test"})
			r.Swap("a", []*Backend{tt.bad, good.Backend})
			front := httptest.NewServer(r)
			defer front.Close()
			for i := range 6 { // every pick order: fewest in flight is a tie here
				req, _ := http.NewRequest(tt.method, front.URL, strings.NewReader(tt.body))
				req.Host = "a.test"
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 && resp.StatusCode != tt.want {
					t.Errorf("try %d: status %d, want %d", i, resp.StatusCode, tt.want)
				}
			}
		})
	}
}

func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestNoHoldWithoutExpect: when nothing is bringing a backend, a request
// that finds none, or whose only backend failed, is answered at once
// instead of waiting out the hold time.
func TestNoHoldWithoutExpect(t *testing.T) {
	r := New(Options{})
	r.SetHosts("a", []string{"a.test"})
	r.SetHosts("gone", []string{"gone.test"})
	r.Configure("a", RouteConfig{Hold: time.Minute})
	r.Configure("gone", RouteConfig{Hold: time.Minute})
	r.Swap("a", []*Backend{NewBackend("reset", resetAddr(t))})
	front := httptest.NewServer(r)
	defer front.Close()
	client := &http.Client{Timeout: 10 * time.Second} // far below the hold
	for host, want := range map[string]int{"a.test": 502, "gone.test": 503} {
		req, _ := http.NewRequest(http.MethodGet, front.URL, nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v (the request was held)", host, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// resetAddr is a listener that resets every connection it accepts.
func resetAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	return l.Addr().String()
}

// TestPagesAreNeutral: the router's own answers name neither the app nor
// the platform, and tell a visitor nothing an operator should do.
func TestPagesAreNeutral(t *testing.T) {
	r := New(Options{})
	r.SetHosts("secretapp", []string{"secretapp.test"})
	r.SetHosts("deadapp", []string{"deadapp.test"})
	r.Swap("deadapp", []*Backend{NewBackend("x", closedAddr(t))})
	r.SetHosts("slowapp", []string{"slowapp.test"})
	r.Swap("slowapp", []*Backend{NewBackend("y", rawBackend(noAnswer)(t))})
	r.SetHosts("denied", []string{"denied.test"})
	r.SetPolicy("denied", access.Policy{App: access.Rules{{Priority: 1, Action: access.Deny, Network: "0.0.0.0/0"}}})
	tests := []struct {
		host string
		want int
		// timeout, when set, is the request's deadline: the backend of
		// slowapp never answers, so the router answers 504 when it passes.
		timeout time.Duration
	}{
		{host: "nothing.test", want: 404},
		{host: "secretapp.test", want: 503},
		{host: "deadapp.test", want: 502},
		{host: "slowapp.test", want: 504, timeout: 100 * time.Millisecond},
		{host: "denied.test", want: 403},
	}
	for _, tt := range tests {
		host, want := tt.host, tt.want
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = host
		if tt.timeout > 0 {
			ctx, cancel := context.WithTimeout(req.Context(), tt.timeout)
			defer cancel()
			req = req.WithContext(ctx)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		body := strings.ToLower(rec.Body.String())
		if rec.Code != want {
			t.Errorf("%s: status %d, want %d", host, rec.Code, want)
		}
		for _, leak := range []string{"slipway", strings.TrimSuffix(host, ".test"), "deploy", "apps create"} {
			if strings.Contains(body, leak) {
				t.Errorf("%s: the %d page says %q: %s", host, rec.Code, leak, body)
			}
		}
		if !strings.Contains(body, "<h1>") {
			t.Errorf("%s: the %d page has no text: %q", host, rec.Code, body)
		}
	}
}
