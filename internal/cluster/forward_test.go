package cluster

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestPipeListener: the forwarder is reached in memory, through the dial
// function it hands out, with HTTP as over a socket; once closed, a dial
// fails at once.
func TestPipeListener(t *testing.T) {
	ln := newPipeListener()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.Host)
	})}
	go srv.Serve(ln)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return ln.dial(ctx) }}}
	for i := range 3 { // a kept connection, and new ones
		resp, err := client.Get("http://shop.example.com/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "hello shop.example.com" {
			t.Errorf("request %d: %q", i, b)
		}
	}
	srv.Close()
	if _, err := ln.dial(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("a dial once closed: %v, want net.ErrClosed", err)
	}
}
