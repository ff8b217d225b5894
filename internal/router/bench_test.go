package router

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkProxy measures a request through the router to a real backend
// over loopback, keep-alive on both sides.
func BenchmarkProxy(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer backend.Close()
	r := New(Options{})
	r.SetHosts("a", []string{"a.test"})
	r.Swap("a", []*Backend{NewBackend("b", strings.TrimPrefix(backend.URL, "http://"))})
	front := httptest.NewServer(r)
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, front.URL, nil)
			req.Host = "a.test"
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkAcquire measures picking a backend, the router's own share of
// the request path.
func BenchmarkAcquire(b *testing.B) {
	r := New(Options{})
	r.SetHosts("a", []string{"a.test"})
	r.Swap("a", []*Backend{NewBackend("1", "x"), NewBackend("2", "y"), NewBackend("3", "z")})
	rt := r.table.Load().lookup("a.test")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rt.acquire(context.Background(), nil).inflight.Add(-1)
		}
	})
}
