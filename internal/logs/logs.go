// Package logs keeps one merged log per app — platform events and instance
// output — with live fan-out to readers and a file on disk.
package logs

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Sources and streams of a Line.
const (
	SourcePlatform = "platform"
	SourceRouter   = "router"
	StreamAccess   = "access"
	StreamEvent    = "event"
	StreamStdout   = "stdout"
	StreamStderr   = "stderr"
)

const (
	// DefaultBacklog is how many recent lines each app keeps in memory for
	// readers that ask for a tail.
	DefaultBacklog = 2000
	// subscriberBuffer is how far a live reader may fall behind before it
	// misses lines; the writer never waits for a reader.
	subscriberBuffer = 1024
)

// Line is one line of an app's log.
type Line struct {
	Time time.Time `json:"time"`
	// Source is "platform" or the id of the instance that wrote the line.
	Source  string `json:"source"`
	Stream  string `json:"stream"`
	Release int    `json:"release,omitempty"`
	Text    string `json:"text"`
	// Missed, on a marker line, counts the lines a slow reader missed.
	Missed int64 `json:"missed,omitempty"`
}

// Options configures a Hub.
type Options struct {
	// Dir holds one folder of log files per app.
	Dir    string
	Logger *slog.Logger
}

// Hub holds the logs of all apps.
type Hub struct {
	opts Options
	mu   sync.Mutex // guards apps
	apps map[string]*appLog
}

// NewHub returns a hub writing under opts.Dir.
func NewHub(opts Options) *Hub {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Hub{opts: opts, apps: make(map[string]*appLog)}
}

type appLog struct {
	mu      sync.Mutex // guards backlog, subs, file
	backlog []Line
	subs    map[*Subscription]struct{}
	file    *os.File
}

func (h *Hub) app(name string) *appLog {
	h.mu.Lock()
	defer h.mu.Unlock()
	a := h.apps[name]
	if a == nil {
		a = &appLog{subs: make(map[*Subscription]struct{}), backlog: h.readBacklog(name)}
		h.apps[name] = a
	}
	return a
}

// backlogRead bounds how much of an app's log file is read back at start.
const backlogRead = 4 << 20

// readBacklog reads the last lines of app's log file, so that the recent
// past survives a daemon restart.
func (h *Hub) readBacklog(app string) []Line {
	f, err := os.Open(filepath.Join(h.opts.Dir, app, "app.log"))
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > backlogRead {
		f.Seek(fi.Size()-backlogRead, io.SeekStart)
	}
	var lines []Line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l Line
		if json.Unmarshal(sc.Bytes(), &l) == nil { // the first line may be cut by the seek
			lines = append(lines, l)
		}
	}
	return tail(lines, DefaultBacklog)
}

// Write appends a line to app's log. It never blocks on a reader.
func (h *Hub) Write(app string, l Line) {
	if l.Time.IsZero() {
		l.Time = time.Now().UTC()
	}
	a := h.app(app)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.backlog) == DefaultBacklog {
		copy(a.backlog, a.backlog[1:])
		a.backlog = a.backlog[:DefaultBacklog-1]
	}
	a.backlog = append(a.backlog, l)
	h.writeFile(app, a, l)
	for s := range a.subs {
		s.offer(l)
	}
}

// Platform writes a platform event to app's log.
func (h *Hub) Platform(app string, release int, format string, args ...any) {
	h.Write(app, Line{Source: SourcePlatform, Stream: StreamEvent, Release: release, Text: fmt.Sprintf(format, args...)})
}

func (h *Hub) writeFile(app string, a *appLog, l Line) {
	if a.file == nil {
		dir := filepath.Join(h.opts.Dir, app)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			h.opts.Logger.Error("creating log folder", "app", app, "err", err)
			return
		}
		f, err := os.OpenFile(filepath.Join(dir, "app.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			h.opts.Logger.Error("opening log file", "app", app, "err", err)
			return
		}
		a.file = f
	}
	b, _ := json.Marshal(l)
	a.file.Write(append(b, '\n'))
}

// Remove forgets app's log and deletes its files.
func (h *Hub) Remove(app string) error {
	h.mu.Lock()
	a := h.apps[app]
	delete(h.apps, app)
	h.mu.Unlock()
	if a != nil {
		a.mu.Lock()
		if a.file != nil {
			a.file.Close()
		}
		for s := range a.subs {
			close(s.ch)
		}
		a.subs = nil
		a.mu.Unlock()
	}
	return os.RemoveAll(filepath.Join(h.opts.Dir, app))
}

// Close closes all log files.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range h.apps {
		a.mu.Lock()
		if a.file != nil {
			a.file.Close()
			a.file = nil
		}
		a.mu.Unlock()
	}
}

// Tail returns up to n of app's most recent lines, oldest first.
func (h *Hub) Tail(app string, n int) []Line {
	a := h.app(app)
	a.mu.Lock()
	defer a.mu.Unlock()
	return tail(a.backlog, n)
}

func tail(lines []Line, n int) []Line {
	if n > len(lines) || n < 0 {
		n = len(lines)
	}
	return append([]Line(nil), lines[len(lines)-n:]...)
}

// Subscription is a live reader of one app's log.
type Subscription struct {
	ch     chan Line
	missed int64 // guarded by the app log's mu
}

func (s *Subscription) offer(l Line) {
	if s.missed > 0 {
		select {
		case s.ch <- Line{Time: l.Time, Source: SourcePlatform, Stream: StreamEvent, Missed: s.missed,
			Text: fmt.Sprintf("[%d lines missed: this reader fell behind]", s.missed)}:
			s.missed = 0
		default:
			s.missed++
			return
		}
	}
	select {
	case s.ch <- l:
	default:
		s.missed++
	}
}

// Lines delivers the subscription's lines; it is closed when the app's log
// is removed.
func (s *Subscription) Lines() <-chan Line { return s.ch }

// Subscribe returns the last n lines of app's log and a subscription to the
// lines that follow them, with none lost or repeated in between. Call
// cancel when done.
func (h *Hub) Subscribe(app string, n int) (backlog []Line, sub *Subscription, cancel func()) {
	a := h.app(app)
	s := &Subscription{ch: make(chan Line, subscriberBuffer)}
	a.mu.Lock()
	defer a.mu.Unlock()
	backlog = tail(a.backlog, n)
	a.subs[s] = struct{}{}
	return backlog, s, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.subs, s)
	}
}
