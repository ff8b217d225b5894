package runtime

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer is a slog destination the goroutines under test write to while
// the test reads it.
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

// TestOutputPanicIsContained: an Output callback that panics stops the
// follower of that stream only; the panic is logged, the loss is said in
// the output, and the instance and its other stream carry on.
func TestOutputPanicIsContained(t *testing.T) {
	c := &collector{}
	logs := &logBuffer{}
	out := func(stream, line string) {
		if line == "boom" {
			panic("cannot handle " + line)
		}
		c.out(stream, line)
	}
	inst, err := Start(Spec{ID: "panicky", Dir: t.TempDir(), LogDir: t.TempDir(), Env: []string{"PATH=" + os.Getenv("PATH")},
		Command: `echo one; echo boom; sleep 0.3; echo two >&2; exit 4`, Output: out, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Stop(time.Second); inst.WaitOutput() })
	waitDone(t, inst, 10*time.Second)
	inst.WaitOutput()
	if got, want := inst.Exit(), "exit code 4"; got != want {
		t.Errorf("Exit() = %q, want %q", got, want)
	}
	for _, want := range []string{"stdout: one", "stdout: [slipway stopped reading this instance's stdout", "stderr: two"} {
		if !strings.Contains(c.text(), want) {
			t.Errorf("output lacks %q:\n%s", want, c.text())
		}
	}
	for _, want := range []string{"recovered a panic", "cannot handle boom", "followFile"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("daemon log lacks %q:\n%s", want, logs)
		}
	}
	if last := inst.LastLines(); !strings.Contains(strings.Join(last, "\n"), "stopped reading") {
		t.Errorf("LastLines() = %q, want the lost-output line", last)
	}
}

// TestExitWatcherPanic: an exit watcher that panics still closes Done, so
// nothing waits forever, and kills the process group it no longer watches.
func TestExitWatcherPanic(t *testing.T) {
	running := start(t, `exec sleep 300`, &collector{})
	logs := &logBuffer{}
	inst := newInstance(Spec{ID: "watched", Logger: slog.New(slog.NewTextHandler(logs, nil))}, running.PID)
	go inst.watch(func() string { panic("wait failed oddly") })
	waitDone(t, inst, 5*time.Second)
	if got := inst.Exit(); !strings.Contains(got, "lost track") {
		t.Errorf("Exit() = %q, want it to say the daemon lost track", got)
	}
	waitDone(t, running, 5*time.Second) // its group was killed
	if !strings.Contains(logs.String(), "wait failed oddly") {
		t.Errorf("daemon log lacks the panic:\n%s", logs)
	}
}
