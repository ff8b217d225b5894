package router

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestInFlightAfterFailedAnswers: however a request's answer fails, once
// the request is over the backend no longer counts it in flight. A request
// counted for ever would make every drain of that backend wait out its
// whole timeout.
//
// The router is served by a real http.Server (httptest): only there does
// ReverseProxy abort a broken answer with http.ErrAbortHandler, which is
// the path that matters.
func TestInFlightAfterFailedAnswers(t *testing.T) {
	tests := []struct {
		name string
		// backend returns the address of a backend that fails that way.
		backend func(t *testing.T) string
		// request sends one request to the router at url, however it ends.
		request func(t *testing.T, url string)
	}{
		{"connection refused", closedAddr, get},
		{"reset before the answer", rawBackend(resetBeforeAnswer), get},
		{"reset mid-answer", rawBackend(resetMidAnswer), get},
		{"truncated answer", rawBackend(truncatedAnswer), get},
		{"timeout before the answer", rawBackend(noAnswer), getWithTimeout},
		{"client gone mid-answer", rawBackend(stallMidAnswer), getAndLeave},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Options{})
			r.SetHosts("a", []string{"a.test"})
			// No Expect: a retry that finds no other backend fails at once.
			b := NewBackend("b", tt.backend(t))
			r.Swap("a", []*Backend{b})
			front := httptest.NewServer(r)
			defer front.Close()

			tt.request(t, front.URL)
			deadline := time.Now().Add(2 * time.Second)
			for b.InFlight() != 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := b.InFlight(); got != 0 {
				t.Errorf("after the request ended, InFlight() = %d, want 0", got)
			}
			for _, x := range r.Backends("a") {
				if got := x.InFlight(); got != 0 {
					t.Errorf("backend %s: InFlight() = %d, want 0", x.ID, got)
				}
			}
		})
	}
}

// promise is the head of an answer that promises far more than it sends.
const promise = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nContent-Type: text/plain\r\n\r\npartial"

// chunk is the head of a chunked answer and its first chunk. Without a
// length the router flushes what it gets at once, so the client has it
// while the backend stalls.
const chunk = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n7\r\npartial\r\n"

// Behaviours of a raw backend, given the connection after the request
// was read, and a channel closed when the test ends.
func resetBeforeAnswer(c *net.TCPConn, _ <-chan struct{}) { reset(c) }

func resetMidAnswer(c *net.TCPConn, _ <-chan struct{}) {
	io.WriteString(c, promise)
	time.Sleep(50 * time.Millisecond) // let the router start copying the body
	reset(c)
}

func truncatedAnswer(c *net.TCPConn, _ <-chan struct{}) {
	io.WriteString(c, promise)
	c.Close()
}

func noAnswer(c *net.TCPConn, end <-chan struct{}) {
	<-end
	c.Close()
}

func stallMidAnswer(c *net.TCPConn, end <-chan struct{}) {
	io.WriteString(c, chunk)
	<-end
	c.Close()
}

// reset closes c with a TCP RST instead of a FIN.
func reset(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

// rawBackend returns a backend maker: a loopback listener whose every
// connection has its request read and is then handed to behave.
func rawBackend(behave func(c *net.TCPConn, end <-chan struct{})) func(t *testing.T) string {
	return func(t *testing.T) string {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		end := make(chan struct{})
		var wg sync.WaitGroup
		t.Cleanup(func() {
			close(end)
			ln.Close()
			wg.Wait()
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
						c.Close()
						return
					}
					behave(c.(*net.TCPConn), end)
				}()
			}
		}()
		return ln.Addr().String()
	}
}

// Ways a client sends its request.

// requestTimeout bounds every request, so that a router that never
// answers fails the test instead of hanging it.
const requestTimeout = 5 * time.Second

func get(t *testing.T, url string) { request(t, context.Background(), url, -1) }

func getWithTimeout(t *testing.T, url string) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	request(t, ctx, url, -1)
}

// getAndLeave reads the first bytes of the answer and goes away.
func getAndLeave(t *testing.T, url string) { request(t, context.Background(), url, len("partial")) }

// request asks the router for url as a.test and reads the answer: all of
// it, or with leaveAfter >= 0, that many bytes before hanging up.
func request(t *testing.T, ctx context.Context, url string, leaveAfter int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "a.test"
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Logf("request: %v", err)
		return
	}
	defer resp.Body.Close()
	if leaveAfter >= 0 {
		buf := make([]byte, leaveAfter)
		_, err := io.ReadFull(resp.Body, buf)
		t.Logf("status %d, read %q (err %v), leaving", resp.StatusCode, buf, err)
		return // cancel and Close hang up
	}
	n, err := io.Copy(io.Discard, resp.Body)
	t.Logf("status %d, %d bytes, err %v", resp.StatusCode, n, err)
}
