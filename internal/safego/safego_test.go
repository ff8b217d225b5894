package safego

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logBuffer is a slog destination that tests can read while goroutines
// write to it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, nil)), b
}

func TestRunReturnsPanic(t *testing.T) {
	logger, logs := newLogger()
	deferred := false
	err := Run(logger, "worker", func() {
		defer func() { deferred = true }()
		panic("boom")
	})
	var pe *PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("Run returned %v, want a *PanicError", err)
	}
	if pe.Name != "worker" || pe.Value != "boom" || !strings.Contains(string(pe.Stack), "TestRunReturnsPanic") {
		t.Errorf("PanicError = %q %v, stack:\n%s", pe.Name, pe.Value, pe.Stack)
	}
	if !deferred {
		t.Error("fn's deferred call did not run")
	}
	for _, want := range []string{"recovered a panic", "goroutine=worker", "panic=boom", "TestRunReturnsPanic"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestRunWithoutPanic(t *testing.T) {
	logger, logs := newLogger()
	ran := false
	if err := Run(logger, "worker", func() { ran = true }); err != nil || !ran {
		t.Errorf("Run = %v, ran = %v; want nil, true", err, ran)
	}
	if logs.String() != "" {
		t.Errorf("logged %q for a normal return", logs)
	}
}

func TestRunNilLogger(t *testing.T) {
	if err := Run(nil, "worker", func() { panic(errors.New("boom")) }); err == nil {
		t.Error("Run returned nil after a panic")
	}
}

func TestGo(t *testing.T) {
	logger, logs := newLogger()
	done := make(chan struct{})
	Go(logger, "worker", func() {
		defer close(done)
		panic("boom")
	})
	<-done
	waitUntil(t, func() bool { return strings.Contains(logs.String(), "panic=boom") })
}

// TestSuperviseRestarts: fn runs again after each panic, until it returns.
func TestSuperviseRestarts(t *testing.T) {
	logger, logs := newLogger()
	var runs atomic.Int32
	Supervise(logger, "worker", make(chan struct{}), time.Millisecond, func() {
		if runs.Add(1) < 3 {
			panic("boom")
		}
	})
	if got := runs.Load(); got != 3 {
		t.Errorf("fn ran %d times, want 3", got)
	}
	if got := strings.Count(logs.String(), "restarting after a panic"); got != 2 {
		t.Errorf("%d restarts logged, want 2:\n%s", got, logs)
	}
}

// TestSuperviseStops: once stop is closed, a panic is not followed by a
// restart, and Supervise does not wait out the pause.
func TestSuperviseStops(t *testing.T) {
	logger, logs := newLogger()
	stop := make(chan struct{})
	close(stop)
	var runs atomic.Int32
	start := time.Now()
	Supervise(logger, "worker", stop, time.Hour, func() {
		runs.Add(1)
		panic("boom")
	})
	if got := runs.Load(); got != 1 {
		t.Errorf("fn ran %d times, want 1", got)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Supervise took %s to return", d)
	}
	if !strings.Contains(logs.String(), "not restarting") {
		t.Errorf("log does not say it gave up:\n%s", logs)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
