// Package logs keeps one merged log per app — platform events and instance
// output — with live fan-out to readers and a file on disk.
package logs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/safego"
)

// Sources and streams of a Line.
const (
	SourcePlatform = "platform"
	SourceRouter   = "router"
	StreamAccess   = "access"
	StreamEvent    = "event"
	// StreamHeartbeat marks the lines a live stream sends in silence; they
	// are never stored.
	StreamHeartbeat = "heartbeat"
	StreamStdout    = "stdout"
	StreamStderr    = "stderr"
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
	// Node is the node of a cluster the line comes from, set by the API
	// that gathers the lines of every node.
	Node string `json:"node,omitempty"`
}

// Options configures a Hub.
type Options struct {
	// Dir holds one folder of log files per app.
	Dir string
	// FileSize is the size in bytes at which an app's log file is closed
	// and a new one begun (DefaultFileSize when 0).
	FileSize int64
	// Quota bounds the size in bytes of all of one app's log files
	// together (DefaultQuota when 0); the oldest files go first.
	Quota int64
	// Beside, when set, is the disk space an app's other output takes
	// (its instances' output files), which counts against its quota: the
	// log files leave it room.
	Beside func(app string) int64
	// Retention is how long a closed log file is kept (DefaultRetention
	// when 0).
	Retention time.Duration
	// MinFree is the free space, in bytes, that the log files leave on
	// their disk, for the store: a line that would be written with less
	// free is counted as unwritten instead (see writeFile). 0 for none.
	MinFree int64
	Logger  *slog.Logger
}

// Hub holds the logs of all apps.
type Hub struct {
	opts  Options
	space *spaceGuard
	mu    sync.Mutex // guards apps
	apps  map[string]*appLog
	stop  chan struct{}
	done  chan struct{}
}

// pruneEvery is how often closed files past their retention are removed
// from apps that write too little to rotate.
const pruneEvery = time.Hour

// NewHub returns a hub writing under opts.Dir. Call Close when done.
func NewHub(opts Options) *Hub {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &Hub{opts: opts.withDefaults(), apps: make(map[string]*appLog), stop: make(chan struct{}), done: make(chan struct{}),
		space: &spaceGuard{dir: opts.Dir, minFree: opts.MinFree}}
	go h.janitor()
	return h
}

// janitor prunes every app's closed files now and then, until Close.
func (h *Hub) janitor() {
	defer close(h.done)
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	h.clean(t.C, h.pruneAll)
}

// clean calls prune at every tick until Close. A panic is logged and the
// loop started again, on the same ticks.
func (h *Hub) clean(tick <-chan time.Time, prune func()) {
	safego.Supervise(h.opts.Logger, "log janitor", h.stop, 0, func() {
		for {
			select {
			case <-h.stop:
				return
			case <-tick:
				prune()
			}
		}
	})
}

func (h *Hub) pruneAll() {
	entries, _ := os.ReadDir(h.opts.Dir)
	for _, e := range entries {
		if e.IsDir() {
			prune(filepath.Join(h.opts.Dir, e.Name()), h.opts.budget(e.Name()), time.Now().Add(-h.opts.Retention))
		}
	}
}

type appLog struct {
	mu      sync.Mutex // guards backlog, subs, file, unwritten, writeErr
	backlog []Line
	subs    map[*Subscription]struct{}
	file    *appFile
	// unwritten counts the lines the file did not take since writeErr,
	// the first failure (a full disk): they went to the backlog and the
	// live readers only.
	unwritten int64
	writeErr  error
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
	f, err := os.Open(filepath.Join(h.opts.Dir, app, currentFile))
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

// Quota is the most, in bytes, that one app's log files take together.
func (h *Hub) Quota() int64 { return h.opts.Quota }

// Platform writes a platform event to app's log.
func (h *Hub) Platform(app string, release int, format string, args ...any) {
	h.Write(app, Line{Source: SourcePlatform, Stream: StreamEvent, Release: release, Text: fmt.Sprintf(format, args...)})
}

// writeFile appends l to app's file. When the file cannot take it (a full
// disk), the line is counted, and the daemon's log says so once; each
// later line tries again, which fails at once on a full disk, and the
// first that succeeds follows a marker line counting those lost. Nothing
// here blocks or panics on a failed write.
func (h *Hub) writeFile(app string, a *appLog, l Line) {
	b, _ := json.Marshal(l)
	err := h.appendFile(app, a, append(b, '\n'))
	if err == nil {
		return
	}
	if a.unwritten == 0 {
		a.writeErr = err
		h.opts.Logger.Error("app log: its file takes no more lines; they still reach live readers, and are counted until the file takes them again (free disk space if it is full)",
			"app", app, "err", err)
	}
	a.unwritten++
}

// appendFile writes b to app's file, opening it if need be, after the
// marker of the lines it did not take.
func (h *Hub) appendFile(app string, a *appLog, b []byte) error {
	if err := h.space.allow(len(b)); err != nil {
		return err
	}
	if a.file == nil {
		f, err := openAppFile(filepath.Join(h.opts.Dir, app))
		if err != nil {
			return err
		}
		a.file = f
	}
	if a.unwritten > 0 {
		m, _ := json.Marshal(Line{Time: time.Now().UTC(), Source: SourcePlatform, Stream: StreamEvent,
			Text: fmt.Sprintf("[%d lines not written to this file: %v]", a.unwritten, a.writeErr)})
		if err := a.file.write(append(m, '\n'), h.opts); err != nil {
			return err
		}
		h.opts.Logger.Info("app log: its file takes lines again", "app", app, "unwritten_lines", a.unwritten)
		a.unwritten, a.writeErr = 0, nil
	}
	return a.file.write(b, h.opts)
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
			a.file.close()
		}
		for s := range a.subs {
			close(s.ch)
		}
		a.subs = nil
		a.mu.Unlock()
	}
	return os.RemoveAll(filepath.Join(h.opts.Dir, app))
}

// Close stops the janitor and closes all log files.
func (h *Hub) Close() {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range h.apps {
		a.mu.Lock()
		if a.file != nil {
			a.file.close()
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

// MaxSubscribers bounds the live readers of one app's log. Each holds a
// buffer of subscriberBuffer lines and costs the writer a send per line,
// and a stream is cheap to open and may stay open for days: without a
// bound, one deploy credential could open streams until the daemon runs
// out of memory.
const MaxSubscribers = 64

// ErrTooManyReaders refuses a live reader past MaxSubscribers.
var ErrTooManyReaders = errors.New("too many live readers of this app's log")

// Subscribe returns the last n lines of app's log and a subscription to the
// lines that follow them, with none lost or repeated in between. Call
// cancel when done. It fails with ErrTooManyReaders when app has
// MaxSubscribers already.
func (h *Hub) Subscribe(app string, n int) (backlog []Line, sub *Subscription, cancel func(), err error) {
	a := h.app(app)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.subs) >= MaxSubscribers {
		return nil, nil, nil, fmt.Errorf("%w: app %s has %d open; close some (a log stream, a dashboard's log page) and try again", ErrTooManyReaders, app, len(a.subs))
	}
	s := &Subscription{ch: make(chan Line, subscriberBuffer)}
	backlog = tail(a.backlog, n)
	a.subs[s] = struct{}{}
	return backlog, s, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.subs, s)
	}, nil
}
