package router

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// drainRig is a router in front of one backend server, with the router's
// log kept for the test to read.
type drainRig struct {
	r       *Router
	b       *Backend
	front   *httptest.Server
	mu      sync.Mutex
	logText bytes.Buffer
}

func newDrainRig(t *testing.T, h http.Handler) *drainRig {
	t.Helper()
	rig := &drainRig{}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	rig.r = New(Options{Logger: slog.New(slog.NewTextHandler(lockedWriter{rig}, nil))})
	rig.r.SetHosts("a", []string{"a.test"})
	rig.b = NewBackend("old", strings.TrimPrefix(srv.URL, "http://"))
	rig.r.Swap("a", []*Backend{rig.b})
	rig.front = httptest.NewServer(rig.r)
	t.Cleanup(rig.front.Close)
	return rig
}

type lockedWriter struct{ rig *drainRig }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.rig.mu.Lock()
	defer w.rig.mu.Unlock()
	return w.rig.logText.Write(p)
}

func (rig *drainRig) log() string {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	return rig.logText.String()
}

// retire swaps the backend out and drains it in the background; the
// channel gets what Drain returned.
func (rig *drainRig) retire(timeout time.Duration) <-chan int64 {
	left := make(chan int64, 1)
	old := rig.r.Swap("a", nil)
	go func() { left <- Drain(context.Background(), old, timeout) }()
	return left
}

func (rig *drainRig) dial(t *testing.T) *websocket.Conn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(rig.front.URL, "http") + "/ws"
	conn, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Host": {"a.test"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// echoWS is a WebSocket server that echoes messages and answers a close
// frame as servers do.
func echoWS(t *testing.T) http.Handler {
	up := websocket.Upgrader{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			kind, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			conn.WriteMessage(kind, msg)
		}
	})
}

func expectGoingAway(t *testing.T, conn *websocket.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("got message %q, error %v; want a close frame 1001", msg, err)
	}
}

// TestDrainClosesWebSocket: a drain tells a WebSocket to close at once,
// with a close frame, and the drain ends as soon as the app has closed it.
func TestDrainClosesWebSocket(t *testing.T) {
	rig := newDrainRig(t, echoWS(t))
	conn := rig.dial(t)
	conn.WriteMessage(websocket.TextMessage, []byte("hi"))
	if _, msg, err := conn.ReadMessage(); err != nil || string(msg) != "hi" {
		t.Fatalf("echo: %q, %v", msg, err)
	}
	left := rig.retire(30 * time.Second)
	expectGoingAway(t, conn)
	select {
	case n := <-left:
		if n != 0 {
			t.Errorf("Drain left %d in flight, want 0", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain still waits 10 s after the WebSocket was told to close")
	}
	if n := rig.b.InFlight(); n != 0 {
		t.Errorf("in flight after the drain: %d, want 0", n)
	}
}

// TestDrainWaitsForFrameEnd: a close frame never lands inside a frame the
// app is in the middle of sending; the client gets the whole message, then
// the close.
func TestDrainWaitsForFrameEnd(t *testing.T) {
	half := make(chan struct{})
	rest := make(chan struct{})
	rig := newDrainRig(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + acceptKey(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
		msg := strings.Repeat("x", 300) // a 16-bit length: a 4-byte head
		brw.Write(append([]byte{0x81, 126, 0x01, 0x2c}, msg[:100]...))
		brw.Flush()
		close(half)
		<-rest
		brw.WriteString(msg[100:])
		brw.Flush()
		io.Copy(io.Discard, brw) // until the client hangs up
	}))
	conn := rig.dial(t)
	<-half
	// The first part must have passed the router before the drain starts;
	// otherwise the router is rightly between frames. Reading it at the
	// client proves that.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, r, err := conn.NextReader()
	if err != nil {
		t.Fatalf("start of the message: %v", err)
	}
	first := make([]byte, 100)
	if _, err := io.ReadFull(r, first); err != nil {
		t.Fatalf("first 100 bytes: %v", err)
	}
	left := rig.retire(5 * time.Second)
	time.Sleep(50 * time.Millisecond) // give a wrong implementation the chance to cut in
	close(rest)
	tail, err := io.ReadAll(r)
	if err != nil || len(first)+len(tail) != 300 {
		t.Fatalf("got %d bytes, %v; want the whole 300-byte message", len(first)+len(tail), err)
	}
	expectGoingAway(t, conn)
	conn.Close()
	<-left
}

// acceptKey is Sec-WebSocket-Accept for key (RFC 6455 4.2.2).
func acceptKey(key string) string {
	return websocketAccept(key)
}

// TestDrainEndsEventStream: a server-sent event stream ends cleanly when
// its backend drains; the client sees the end of the stream, not an error.
func TestDrainEndsEventStream(t *testing.T) {
	rig := newDrainRig(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for {
			if _, err := io.WriteString(w, "data: tick\n\n"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	req, _ := http.NewRequest(http.MethodGet, rig.front.URL, nil)
	req.Host = "a.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); line != "data: tick\n" {
		t.Fatalf("first line %q", line)
	}
	left := rig.retire(30 * time.Second)
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Errorf("the stream ended with %v, want a clean end", err)
	}
	if n := <-left; n != 0 {
		t.Errorf("Drain left %d in flight, want 0", n)
	}
}

// TestDrainCutsOffAtDeadline: an ordinary request still in flight at the
// drain deadline is cut off, the client gets 502, the log says why, and
// the backend's count is back to zero.
func TestDrainCutsOffAtDeadline(t *testing.T) {
	started := make(chan struct{})
	rig := newDrainRig(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	}))
	got := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, rig.front.URL+"/slow", nil)
		req.Host = "a.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-started
	left := rig.retire(200 * time.Millisecond)
	if n := <-left; n != 1 {
		t.Errorf("Drain reported %d in flight at the deadline, want 1", n)
	}
	if code := <-got; code != http.StatusBadGateway {
		t.Errorf("the cut-off request got %d, want 502", code)
	}
	if n := rig.b.InFlight(); n != 0 {
		t.Errorf("in flight after the cut-off: %d, want 0", n)
	}
	if log := rig.log(); !strings.Contains(log, "request cut off") || !strings.Contains(log, ErrDrainTimeout.Error()) || !strings.Contains(log, "path=/slow") {
		t.Errorf("the log does not name the cut-off request and its cause:\n%s", log)
	}
}

func TestFrameTracker(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
	}{
		{"empty", []byte{0x89, 0}},
		{"short", append([]byte{0x81, 3}, "abc"...)},
		{"masked", append([]byte{0x81, 0x83, 1, 2, 3, 4}, "abc"...)},
		{"16-bit length", append([]byte{0x82, 126, 0, 200}, make([]byte, 200)...)},
		{"64-bit length", append([]byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, make([]byte, 65536)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Fed byte by byte, the tracker is at a boundary only at the end.
			var ft frameTracker
			for i, c := range tt.frame {
				ft.advance([]byte{c})
				if end := i == len(tt.frame)-1; ft.atBoundary() != end {
					t.Fatalf("after byte %d of %d: at boundary = %v", i+1, len(tt.frame), !end)
				}
			}
			// Two frames in one write: untilBoundary stops after the first.
			ft = frameTracker{}
			ft.advance(tt.frame[:1])
			if n := ft.untilBoundary(append(tt.frame[1:], tt.frame...)); n != len(tt.frame)-1 {
				t.Errorf("untilBoundary = %d, want %d", n, len(tt.frame)-1)
			}
		})
	}
}

func websocketAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// TestDrainWebSocketClientNeverAnswersClose: a client that reads the
// going-away close frame but never answers it (a frozen tab, a hostile
// client) must not hold the deployment for the whole drain timeout, as
// the README promises ("so they never hold a deployment up"): after a
// close handshake that does not come in reasonable time, the router
// closes the connection itself (RFC 6455 7.1.1 lets the server do so).
func TestDrainWebSocketClientNeverAnswersClose(t *testing.T) {
	rig := newDrainRig(t, echoWS(t))
	conn := rig.dial(t)
	conn.SetCloseHandler(func(int, string) error { return nil }) // never answers
	left := rig.retire(20 * time.Second)
	start := time.Now()
	expectGoingAway(t, conn)
	select {
	case <-left:
		t.Logf("Drain ended %s after it began", time.Since(start).Round(100*time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("Drain still waits 10 s after the close frame a client never answered: it holds the deployment until the drain timeout")
	}
}

// TestWebSocketWithAccessLog: with the app's access log on, the answer
// goes through the log's byte counter; a WebSocket still upgrades, is told
// to close by a drain, and is logged once, as a 101 from its instance.
func TestWebSocketWithAccessLog(t *testing.T) {
	rig := newDrainRig(t, echoWS(t))
	records := make(chan AccessRecord, 4)
	rig.r.accessLog = func(_ string, e AccessRecord) { records <- e }
	rig.r.Configure("a", RouteConfig{AccessLog: true})
	conn := rig.dial(t)
	conn.WriteMessage(websocket.TextMessage, []byte("hi"))
	if _, msg, err := conn.ReadMessage(); err != nil || string(msg) != "hi" {
		t.Fatalf("echo: %q, %v", msg, err)
	}
	left := rig.retire(30 * time.Second)
	expectGoingAway(t, conn)
	if n := <-left; n != 0 {
		t.Errorf("Drain left %d in flight, want 0", n)
	}
	select {
	case e := <-records:
		if e.Status != http.StatusSwitchingProtocols || e.Instance != "old" || e.Path != "/ws" {
			t.Errorf("access record %+v, want a 101 from instance old for /ws", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no access record for the WebSocket")
	}
}
