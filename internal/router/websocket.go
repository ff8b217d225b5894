package router

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// goingAway is the WebSocket close frame a retired backend's connections
// get (RFC 6455 5.5.1): FIN and opcode 8, unmasked as a server's frames
// are, status 1001 "going away".
var goingAway = append([]byte{0x88, 2 + 10, 0x03, 0xe9}, "going away"...)

// closeHandshakeWait is how long a client has to answer the going-away
// close frame (its answer reaches the app, which then hangs up) before
// the router closes the connection itself, as RFC 6455 7.1.1 allows: a
// client that never answers must not hold the drain, and the deployment,
// until the drain timeout.
const closeHandshakeWait = 5 * time.Second

func isWebSocket(req *http.Request) bool {
	return strings.EqualFold(req.Header.Get("Upgrade"), "websocket")
}

// clientSide is the ResponseWriter a try hands ReverseProxy: it keeps the
// client's connection once hijacked (an upgrade), so that a drain can end
// it, and follows a WebSocket's frames (see wsConn). Other calls go to
// the ResponseWriter it wraps.
type clientSide struct {
	http.ResponseWriter
	a  *attempt
	ws bool // the request asks for a WebSocket

	mu     sync.Mutex // guards the fields below
	conn   net.Conn   // the hijacked connection; nil before
	closed bool       // closeConn was called: close conn once hijacked
	done   bool       // the try is over: its connection is no longer ours
}

func (h *clientSide) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Hijack is called by ReverseProxy once the backend has agreed to switch
// protocols, on the request's goroutine.
func (h *clientSide) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return conn, brw, err
	}
	if h.ws {
		c := &wsConn{Conn: conn}
		h.a.hooks = append(h.a.hooks, context.AfterFunc(h.a.backend.draining, c.goAway))
		conn = c
	}
	h.conn = conn
	if h.closed {
		conn.Close()
	}
	return conn, brw, nil
}

// closeConn closes the hijacked connection, now or as soon as it is
// hijacked.
func (h *clientSide) closeConn() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return
	}
	h.closed = true
	if h.conn != nil {
		h.conn.Close()
	}
}

// cutOff ends the client's side at the drain deadline: a hijacked
// connection is closed; otherwise a write to the client fails after
// cutoffGrace, time enough for an error page to a client that reads.
func (h *clientSide) cutOff() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return
	}
	h.closed = true
	if h.conn != nil {
		h.conn.Close()
		return
	}
	// net/http lifts the deadline once the answer is written, so it does
	// not outlive this request on a kept-alive connection.
	http.NewResponseController(h.ResponseWriter).SetWriteDeadline(time.Now().Add(cutoffGrace))
}

// finish marks the try over, before forward returns: a drain that comes
// later must leave the connection alone, which may be serving the next
// request by then.
func (h *clientSide) finish() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done = true
}

// wsConn is the client's side of a proxied WebSocket. It follows the
// frames the backend sends, so that when the backend drains it can put a
// close frame (1001, going away) between two of them, as if the server
// closed the connection; what the backend sends after that is dropped.
// The client answers with its own close frame, which reaches the app, and
// the app closes the connection: a clean close on both sides, long before
// the drain deadline. At the deadline the connection is cut anyway.
type wsConn struct {
	net.Conn
	mu      sync.Mutex // guards the fields below and writes to Conn
	frames  frameTracker
	closing bool // the close frame is due at the end of the current frame
	closed  bool // the close frame was sent
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return len(p), nil
	}
	n := len(p)
	if c.closing {
		n = c.frames.untilBoundary(p)
	} else {
		c.frames.advance(p)
	}
	if _, err := c.Conn.Write(p[:n]); err != nil {
		return 0, err
	}
	if c.closing && c.frames.atBoundary() {
		c.sendCloseLocked()
	}
	return len(p), nil
}

// goAway sends the close frame now, or at the end of the frame being sent.
func (c *wsConn) goAway() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frames.atBoundary() {
		c.sendCloseLocked()
		return
	}
	c.closing = true
}

func (c *wsConn) sendCloseLocked() {
	c.closed = true
	// Closing a connection that has ended meanwhile is harmless.
	time.AfterFunc(closeHandshakeWait, func() { c.Conn.Close() })
	c.Conn.Write(goingAway) // an error here shows on the next read or write
}

// CloseWrite passes a half-close on, as ReverseProxy does when the
// backend has finished sending. After a going-away close frame the close
// handshake is over once the backend hangs up, so the connection is closed
// whole: a client that keeps its side open cannot hold the drain.
func (c *wsConn) CloseWrite() error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return c.Conn.Close()
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// frameTracker follows the frame boundaries in a WebSocket byte stream
// (RFC 6455 5.2): a 2-byte head, 0, 2 or 8 bytes of length, a 4-byte mask
// key if the mask bit is set, then the payload.
type frameTracker struct {
	head [14]byte
	n    int    // bytes of the head seen so far
	left uint64 // payload bytes of the current frame still to come
}

func (t *frameTracker) atBoundary() bool { return t.n == 0 && t.left == 0 }

// advance follows all of p.
func (t *frameTracker) advance(p []byte) {
	for len(p) > 0 {
		p = p[t.step(p):]
	}
}

// untilBoundary follows p up to the end of the current frame and returns
// how many bytes of p that is: 0 at a boundary, len(p) if the frame goes
// on past p.
func (t *frameTracker) untilBoundary(p []byte) int {
	done := 0
	for done < len(p) && !t.atBoundary() {
		done += t.step(p[done:])
	}
	return done
}

// step follows a head byte or a run of payload bytes from p, which is not
// empty, and returns how many it took.
func (t *frameTracker) step(p []byte) int {
	if t.left > 0 {
		k := uint64(len(p))
		if k > t.left {
			k = t.left
		}
		t.left -= k
		return int(k)
	}
	t.head[t.n] = p[0]
	t.n++
	if want := headLen(t.head[:t.n]); t.n == want {
		t.left = payloadLen(t.head[:t.n])
		t.n = 0
	}
	return 1
}

// headLen is the length of a frame's head, from its first bytes; 2 until
// the second byte is known.
func headLen(h []byte) int {
	if len(h) < 2 {
		return 2
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4
	}
	return n
}

func payloadLen(h []byte) uint64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		return binary.BigEndian.Uint64(h[2:10])
	default:
		return uint64(l)
	}
}
