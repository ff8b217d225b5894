// Package safego keeps a panic in a long-lived goroutine from taking the
// whole daemon, router included, down with it. Each goroutine that runs for
// the life of something (an instance, the daemon) calls its work through
// Run, Go or Supervise; the panic is recovered, logged with its stack, and
// then the goroutine is either reported as failed to its owner (Run's
// error) or restarted (Supervise).
//
// A request handler needs none of this: net/http recovers those itself.
package safego

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// DefaultPause is how long Supervise waits before it restarts work that
// panicked, when given no pause: long enough that a panic on every run
// logs one stack a second, not thousands.
const DefaultPause = time.Second

// PanicError is a panic that Run recovered.
type PanicError struct {
	// Name is the name Run was given, such as "log janitor".
	Name string
	// Value is what was passed to panic.
	Value any
	// Stack is the panicking goroutine's stack, as debug.Stack formats it.
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic in %s: %v", e.Name, e.Value) }

// Run calls fn and returns nil when it returns. When fn panics, Run
// recovers, logs the panic and its stack at level Error on logger
// (slog.Default() when nil), and returns it as a *PanicError. fn's own
// deferred calls (a WaitGroup's Done, a channel's close) have run by then,
// as with any panic.
func Run(logger *slog.Logger, name string, fn func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			pe := &PanicError{Name: name, Value: v, Stack: debug.Stack()}
			if logger == nil {
				logger = slog.Default()
			}
			logger.Error("recovered a panic", "goroutine", name, "panic", fmt.Sprint(v), "stack", string(pe.Stack))
			err = pe
		}
	}()
	fn()
	return nil
}

// Go runs fn in a new goroutine through Run: a panic is logged and ends
// that goroutine only. It suits work whose owner needs to do nothing when
// it fails; otherwise call Run from the goroutine and act on its error.
func Go(logger *slog.Logger, name string, fn func()) {
	go Run(logger, name, fn)
}

// Supervise calls fn through Run until fn returns without panicking. After
// a panic it waits pause (DefaultPause when 0) and calls fn again, unless
// stop is closed by then, in which case it returns. fn must itself return
// when stop is closed. Supervise blocks: call it from the goroutine the
// owner waits for.
func Supervise(logger *slog.Logger, name string, stop <-chan struct{}, pause time.Duration, fn func()) {
	if pause == 0 {
		pause = DefaultPause
	}
	if logger == nil {
		logger = slog.Default()
	}
	for Run(logger, name, fn) != nil {
		t := time.NewTimer(pause)
		select {
		case <-stop:
			t.Stop()
			logger.Warn("not restarting after a panic: stopping", "goroutine", name)
			return
		case <-t.C:
		}
		logger.Warn("restarting after a panic", "goroutine", name, "pause", pause.String())
	}
}
