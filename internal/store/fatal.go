package store

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ErrStopped means the embedded etcd stopped on a fault it cannot go on
// from (most often a full disk under its write-ahead log): every change is
// refused from then on, while the router keeps serving the apps.
var ErrStopped = errors.New("the store stopped")

// stopCause holds why etcd stopped on its own. etcd calls its logger's
// Fatal on a fault it cannot go on from, such as a write to its log that
// fails on a full disk, and zap's Fatal exits the process: every app's
// traffic would go with it. Instead, the goroutine that met the fault
// ends, and every later call fails at once with the cause (see guardedKV).
type stopCause struct {
	mu  sync.Mutex // guards err
	err error
	// done is closed once err is set.
	done chan struct{}
	// closing is set once the daemon stops (see Store.Closing): calls
	// get closingCallTimeout.
	closing atomic.Bool
}

func newStopCause() *stopCause { return &stopCause{done: make(chan struct{})} }

func (c *stopCause) get() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// OnWrite is zap's fatal hook.
func (c *stopCause) OnWrite(ce *zapcore.CheckedEntry, fields []zapcore.Field) {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	c.mu.Lock()
	if c.err == nil {
		c.err = fmt.Errorf("%w: etcd: %s %v; free disk space in the data directory, then restart the daemon", ErrStopped, ce.Message, enc.Fields)
		fmt.Fprintf(os.Stderr, "slipway: %v\n", c.err)
		close(c.done)
	}
	c.mu.Unlock()
	runtime.Goexit()
}

// wrap gives the cause for an error of a stopped store, and ErrFull for
// etcd's "database space exceeded".
func (c *stopCause) wrap(err error) error {
	if cause := c.get(); cause != nil {
		return cause
	}
	return full(err)
}

// etcdLogger is etcd's logger: to stderr, at info level with debug, else
// errors only; its Fatal stops etcd instead of the process (see stopCause).
func etcdLogger(debug bool, c *stopCause) *zap.Logger {
	level := zapcore.ErrorLevel
	if debug {
		level = zapcore.InfoLevel
	}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.Lock(os.Stderr), level)
	return zap.New(core, zap.WithFatalHook(c), zap.WithPanicHook(c))
}
