package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// waitInFlight polls b's count until it is want or 5 s have passed, and
// returns the last count seen.
func waitInFlight(b *Backend, want int64) int64 {
	deadline := time.Now().Add(5 * time.Second)
	for b.InFlight() != want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return b.InFlight()
}

// rawClient opens a connection to the router and sends head (a request
// for a.test); it reads nothing back unless the test does.
func rawClient(t *testing.T, rig *drainRig, head string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(rig.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	return c
}

// floodHandler answers with an endless body, as fast as the client takes it.
func floodHandler(started chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		buf := make([]byte, 64<<10)
		once := false
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
			if !once {
				once = true
				w.(http.Flusher).Flush()
				close(started)
			}
		}
	})
}

// TestDrainCutsOffClientThatStopsReading: a client that asks for a large
// answer and stops reading (its TCP window fills) must not hold the request
// past the drain deadline. The cut-off cancels the upstream request, but the
// router's own write to the client stays blocked: the backend keeps a
// request in flight for ever, and its goroutine and connection leak.
func TestDrainCutsOffClientThatStopsReading(t *testing.T) {
	started := make(chan struct{})
	rig := newDrainRig(t, floodHandler(started))
	rawClient(t, rig, "GET /big HTTP/1.1\r\nHost: a.test\r\n\r\n") // never reads
	<-started
	time.Sleep(200 * time.Millisecond) // let the buffers between fill
	if n := <-rig.retire(200 * time.Millisecond); n != 1 {
		t.Errorf("Drain reported %d in flight at the deadline, want 1", n)
	}
	if n := waitInFlight(rig.b, 0); n != 0 {
		t.Errorf("5 s after the drain deadline, the backend still counts %d in flight, want 0: the request was not cut off", n)
	}
}

// TestDrainCutsOffEventStreamClientThatStopsReading: the same for a
// server-sent event stream, which the drain asks to end at once.
func TestDrainCutsOffEventStreamClientThatStopsReading(t *testing.T) {
	started := make(chan struct{})
	rig := newDrainRig(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		event := "data: " + strings.Repeat("x", 64<<10) + "\n\n"
		once := false
		for {
			if _, err := w.Write([]byte(event)); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if !once {
				once = true
				close(started)
			}
		}
	}))
	rawClient(t, rig, "GET /events HTTP/1.1\r\nHost: a.test\r\nAccept: text/event-stream\r\n\r\n")
	<-started
	time.Sleep(200 * time.Millisecond)
	<-rig.retire(200 * time.Millisecond)
	if n := waitInFlight(rig.b, 0); n != 0 {
		t.Errorf("5 s after the drain deadline, the backend still counts %d in flight, want 0", n)
	}
}

// wsHandshake is a WebSocket upgrade request for a.test.
const wsHandshake = "GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"

// rawWSBackend upgrades every request by hand and hands the connection to
// behave.
func rawWSBackend(behave func(c net.Conn, brw *bufio.ReadWriter)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + acceptKey(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
		brw.Flush()
		behave(c, brw)
	})
}

// TestDrainCutsOffWebSocketClientThatStopsReading: a WebSocket client
// that stops reading while the app sends must not hold the backend past
// the drain deadline: the router's write to it (of the app's frames, or of
// the close frame) blocks, and closing the backend's side does not end it.
func TestDrainCutsOffWebSocketClientThatStopsReading(t *testing.T) {
	started := make(chan struct{})
	rig := newDrainRig(t, rawWSBackend(func(c net.Conn, _ *bufio.ReadWriter) {
		frame := append([]byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, make([]byte, 1<<16)...)
		once := false
		for {
			if _, err := c.Write(frame); err != nil {
				return
			}
			if !once {
				once = true
				close(started)
			}
		}
	}))
	rawClient(t, rig, wsHandshake) // never reads
	<-started
	time.Sleep(200 * time.Millisecond)
	<-rig.retire(200 * time.Millisecond)
	if n := waitInFlight(rig.b, 0); n != 0 {
		t.Errorf("5 s after the drain deadline, the backend still counts %d in flight, want 0", n)
	}
}

// TestDrainCutsOffHalfClosedWebSocket: the app has closed its side of a
// WebSocket (the router passes the half-close on) and the client keeps its
// side open and silent. At the drain deadline the connection must be cut,
// as the README says; the router closes only the backend's side, and the
// copy from the client goes on waiting.
func TestDrainCutsOffHalfClosedWebSocket(t *testing.T) {
	closed := make(chan struct{})
	rig := newDrainRig(t, rawWSBackend(func(c net.Conn, _ *bufio.ReadWriter) {
		c.Write([]byte{0x88, 2, 0x03, 0xe8}) // close, 1000
		c.(interface{ CloseWrite() error }).CloseWrite()
		close(closed)
		time.Sleep(time.Hour) // keeps reading side open; the test's server Close ends it
	}))
	rawClient(t, rig, wsHandshake) // silent
	<-closed
	time.Sleep(100 * time.Millisecond)
	if n := <-rig.retire(200 * time.Millisecond); n != 1 {
		t.Logf("Drain reported %d in flight at the deadline", n)
	}
	if n := waitInFlight(rig.b, 0); n != 0 {
		t.Errorf("5 s after the drain deadline, the backend still counts %d in flight, want 0", n)
	}
}

// TestDrainCutOffAnswersSlowUpload: a request whose body is still being
// uploaded, slowly, at the drain deadline is cut off and its client gets
// 502 then, not once it has sent the rest of its body. (The router keeps
// the request's body open across a failed try, so net/http reads what is
// left of it, up to 256 KiB, before it sends the answer.)
func TestDrainCutOffAnswersSlowUpload(t *testing.T) {
	rig := newDrainRig(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	c := rawClient(t, rig, "POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100000\r\n\r\nfirst bytes")
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a byte every 50 ms: the upload outlives the test
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	if !eventuallyTrue(func() bool { return rig.b.InFlight() == 1 }) {
		t.Fatal("the upload never reached the backend")
	}
	<-rig.retire(200 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("3 s after the drain deadline the uploading client has no answer: %v", err)
	}
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("the cut-off upload got %d, want 502", resp.StatusCode)
	}
}

func eventuallyTrue(cond func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// TestCutOffLeavesConnectionUsable: the cut-off of a request limits how
// long its answer may be written; the next request on the same kept-alive
// client connection, to the new release, is not limited by that (net/http
// lifts a write deadline once an answer is written).
func TestCutOffLeavesConnectionUsable(t *testing.T) {
	started := make(chan struct{}, 1)
	rig := newDrainRig(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-r.Context().Done()
			return
		}
		time.Sleep(cutoffGrace + 500*time.Millisecond)
		io.WriteString(w, "late but fine")
	}))
	c := rawClient(t, rig, "GET /slow HTTP/1.1\r\nHost: a.test\r\n\r\n")
	<-started
	<-rig.retire(100 * time.Millisecond)
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusBadGateway || resp.Close {
		t.Fatalf("the cut-off request: %v, %v; want 502 on a connection kept alive", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	rig.r.Swap("a", []*Backend{NewBackend("new", rig.b.Addr)})
	c.Write([]byte("GET /next HTTP/1.1\r\nHost: a.test\r\n\r\n"))
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the next request on the connection: %v, %v; want 200", resp, err)
	}
}
