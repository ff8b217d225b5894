package logs

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/slipway-dev/slipway/internal/safego"
)

// Async writes lines to a Hub from one goroutine of its own, so that the
// caller — the router's request path, for the access log — never waits for
// a lock or a file. When the goroutine falls more than its buffer behind,
// lines are dropped, counted, and the count is written to the app's log
// with the next line that gets through.
type Async struct {
	sink    func(app string, l Line)
	log     *slog.Logger
	ch      chan asyncLine // never closed: a late Write must not panic
	dropped atomic.Int64
	stop    chan struct{}
	done    chan struct{}
	// reported is how many of dropped were written to a log; only the
	// writer goroutine uses it.
	reported int64
}

type asyncLine struct {
	app  string
	line Line
}

// DefaultAsyncBuffer is how many lines an Async holds before dropping.
const DefaultAsyncBuffer = 8192

// NewAsync starts an Async writer of n lines' buffer on h. Call Close.
func (h *Hub) NewAsync(n int) *Async { return newAsync(h.Write, n, h.opts.Logger) }

// newAsync starts an Async that passes each line to sink. A panic in sink
// is logged, and the writer goes on after a pause (safego.DefaultPause);
// the line that caused it is lost, and so are those queued when Close
// comes during the pause.
func newAsync(sink func(string, Line), n int, log *slog.Logger) *Async {
	a := &Async{sink: sink, log: log, ch: make(chan asyncLine, n), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		safego.Supervise(a.log, "async log writer", a.stop, 0, a.run)
	}()
	return a
}

// Write queues a line for app's log; it never blocks.
func (a *Async) Write(app string, l Line) {
	select {
	case a.ch <- asyncLine{app, l}:
	default:
		a.dropped.Add(1)
	}
}

// run writes queued lines until Close, then what is still queued.
func (a *Async) run() {
	for {
		select {
		case l := <-a.ch:
			a.write(l)
		case <-a.stop:
			for {
				select {
				case l := <-a.ch:
					a.write(l)
				default:
					return
				}
			}
		}
	}
}

func (a *Async) write(l asyncLine) {
	if n := a.dropped.Load(); n > a.reported {
		a.sink(l.app, Line{Time: l.line.Time, Source: l.line.Source, Stream: l.line.Stream,
			Text: fmt.Sprintf("[%d lines dropped: the log writer fell behind]", n-a.reported)})
		a.reported = n
	}
	a.sink(l.app, l.line)
}

// Close writes what is queued and stops. A Write after Close is queued
// or dropped, but never written.
func (a *Async) Close() {
	close(a.stop)
	<-a.done
}
