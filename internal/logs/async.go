package logs

import (
	"fmt"
	"sync/atomic"
)

// Async writes lines to a Hub from one goroutine of its own, so that the
// caller — the router's request path, for the access log — never waits for
// a lock or a file. When the goroutine falls more than its buffer behind,
// lines are dropped, counted, and the count is written to the app's log
// with the next line that gets through.
type Async struct {
	h       *Hub
	ch      chan asyncLine // never closed: a late Write must not panic
	dropped atomic.Int64
	stop    chan struct{}
	done    chan struct{}
}

type asyncLine struct {
	app  string
	line Line
}

// DefaultAsyncBuffer is how many lines an Async holds before dropping.
const DefaultAsyncBuffer = 8192

// NewAsync starts an Async writer of n lines' buffer on h. Call Close.
func (h *Hub) NewAsync(n int) *Async {
	a := &Async{h: h, ch: make(chan asyncLine, n), stop: make(chan struct{}), done: make(chan struct{})}
	go a.run()
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

// Dropped is how many lines were dropped so far.
func (a *Async) Dropped() int64 { return a.dropped.Load() }

func (a *Async) run() {
	defer close(a.done)
	var reported int64
	write := func(l asyncLine) {
		if n := a.dropped.Load(); n > reported {
			a.h.Write(l.app, Line{Time: l.line.Time, Source: l.line.Source, Stream: l.line.Stream,
				Text: fmt.Sprintf("[%d lines dropped: the log writer fell behind]", n-reported)})
			reported = n
		}
		a.h.Write(l.app, l.line)
	}
	for {
		select {
		case l := <-a.ch:
			write(l)
		case <-a.stop:
			for {
				select {
				case l := <-a.ch:
					write(l)
				default:
					return
				}
			}
		}
	}
}

// Close writes what is queued and stops. A Write after Close is queued
// or dropped, but never written.
func (a *Async) Close() {
	close(a.stop)
	<-a.done
}
