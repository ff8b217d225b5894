package logs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestTailAndFile(t *testing.T) {
	dir := t.TempDir()
	h := NewHub(Options{Dir: dir})
	defer h.Close()
	for i := range 5 {
		h.Write("a", Line{Source: "a-v1-x", Stream: StreamStdout, Release: 1, Text: fmt.Sprint("line ", i)})
	}
	h.Platform("a", 1, "switched to %s", "v1")
	got := h.Tail("a", 2)
	if len(got) != 2 || got[0].Text != "line 4" || got[1].Text != "switched to v1" || got[1].Source != SourcePlatform {
		t.Errorf("Tail(2) = %+v", got)
	}
	f, err := os.Open(filepath.Join(dir, "a", "app.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); n++ {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Time.IsZero() {
			t.Errorf("file line %d: %q %v", n, sc.Text(), err)
		}
	}
	if n != 6 {
		t.Errorf("%d lines in the file, want 6", n)
	}
}

func TestBacklogIsBounded(t *testing.T) {
	h := NewHub(Options{Dir: t.TempDir()})
	defer h.Close()
	for i := range DefaultBacklog + 500 {
		h.Write("a", Line{Text: fmt.Sprint(i)})
	}
	got := h.Tail("a", -1)
	if len(got) != DefaultBacklog || got[0].Text != "500" {
		t.Errorf("backlog holds %d lines from %q, want %d from 500", len(got), got[0].Text, DefaultBacklog)
	}
}

// TestSubscribeNoGap: the backlog and the live lines join without a gap or
// a repeat.
func TestSubscribeNoGap(t *testing.T) {
	h := NewHub(Options{Dir: t.TempDir()})
	defer h.Close()
	h.Write("a", Line{Text: "0"})
	h.Write("a", Line{Text: "1"})
	backlog, sub, cancel, _ := h.Subscribe("a", 10)
	defer cancel()
	h.Write("a", Line{Text: "2"})
	if len(backlog) != 2 || backlog[1].Text != "1" {
		t.Fatalf("backlog %+v", backlog)
	}
	if l := <-sub.Lines(); l.Text != "2" {
		t.Errorf("first live line %q, want 2", l.Text)
	}
}

// TestSubscribersBound: an app has at most MaxSubscribers live readers;
// one past it is refused, and a reader that leaves makes room. Another
// app's readers count apart.
func TestSubscribersBound(t *testing.T) {
	h := NewHub(Options{Dir: t.TempDir()})
	defer h.Close()
	var cancels []func()
	for i := range MaxSubscribers {
		_, _, cancel, err := h.Subscribe("a", 0)
		if err != nil {
			t.Fatalf("reader %d: %v", i+1, err)
		}
		cancels = append(cancels, cancel)
	}
	if _, _, _, err := h.Subscribe("a", 0); !errors.Is(err, ErrTooManyReaders) {
		t.Errorf("reader %d: %v, want ErrTooManyReaders", MaxSubscribers+1, err)
	}
	if _, _, cancel, err := h.Subscribe("b", 0); err != nil {
		t.Errorf("a reader of another app: %v", err)
	} else {
		cancel()
	}
	cancels[0]()
	if _, _, cancel, err := h.Subscribe("a", 0); err != nil {
		t.Errorf("after a reader left: %v", err)
	} else {
		cancel()
	}
	for _, c := range cancels[1:] {
		c()
	}
}

// TestStuckReaderMissesLines: a reader that does not read never blocks the
// writer; when it reads again it is told how many lines it missed.
func TestStuckReaderMissesLines(t *testing.T) {
	h := NewHub(Options{Dir: t.TempDir()})
	defer h.Close()
	_, sub, cancel, _ := h.Subscribe("a", 0)
	defer cancel()
	total := subscriberBuffer + 300
	for i := range total { // would block forever if Write waited for the reader
		h.Write("a", Line{Text: fmt.Sprint(i)})
	}
	for range subscriberBuffer {
		<-sub.Lines()
	}
	h.Write("a", Line{Text: "after"})
	marker := <-sub.Lines()
	if marker.Missed != 300 {
		t.Errorf("marker says %d missed (%q), want 300", marker.Missed, marker.Text)
	}
	if l := <-sub.Lines(); l.Text != "after" {
		t.Errorf("after the marker: %q, want the line that came with it", l.Text)
	}
}

// TestBacklogSurvivesRestart: a new hub on the same folder (a restarted
// daemon) reads the recent lines back from the file.
func TestBacklogSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	h := NewHub(Options{Dir: dir})
	for i := range 3 {
		h.Write("a", Line{Text: fmt.Sprint("before ", i)})
	}
	h.Close()
	h2 := NewHub(Options{Dir: dir})
	defer h2.Close()
	h2.Write("a", Line{Text: "after"})
	got := h2.Tail("a", -1)
	if len(got) != 4 || got[0].Text != "before 0" || got[3].Text != "after" {
		t.Errorf("after a restart the log holds %+v", got)
	}
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// TestQuotaBoundsFolder: an app that writes far more than its quota never
// makes its log folder grow past it, and what is kept is the newest lines,
// in order, without a gap.
func TestQuotaBoundsFolder(t *testing.T) {
	dir := t.TempDir()
	const quota = 16 << 10
	h := NewHub(Options{Dir: dir, FileSize: 4 << 10, Quota: quota})
	defer h.Close()
	const total = 3000
	for i := range total {
		h.Write("a", Line{Source: "a-v1-x", Stream: StreamStdout, Text: fmt.Sprintf("line %05d %s", i, "some output of the app")})
		if i%25 == 0 {
			if got := dirSize(t, filepath.Join(dir, "a")); got > quota {
				t.Fatalf("after %d lines the folder holds %d bytes, over the quota of %d", i+1, got, quota)
			}
		}
	}
	if n := len(h.files("a")); n < 3 {
		t.Errorf("%d files, want the current one and several rotated ones", n)
	}
	var got []string
	h.ReadFiles("a", func(Line) bool { return true }, func(l Line) error { got = append(got, l.Text); return nil })
	if len(got) < 50 || got[len(got)-1] != fmt.Sprintf("line %05d some output of the app", total-1) {
		t.Fatalf("kept %d lines ending %q", len(got), got[len(got)-1])
	}
	first := total - len(got)
	for i, text := range got {
		if want := fmt.Sprintf("line %05d some output of the app", first+i); text != want {
			t.Fatalf("kept line %d is %q, want %q: the kept lines have a gap", i, text, want)
		}
	}
}

// TestQuotaCountsOutputBeside: what an app's instances hold in their
// output files counts against its quota: the log folder keeps within the
// quota less that, and gets its room back when the output is read.
func TestQuotaCountsOutputBeside(t *testing.T) {
	dir := t.TempDir()
	const quota, fileSize = 32 << 10, 4 << 10
	var beside atomic.Int64
	beside.Store(20 << 10)
	h := NewHub(Options{Dir: dir, FileSize: fileSize, Quota: quota, Beside: func(app string) int64 {
		if app != "a" {
			t.Errorf("Beside asked about app %q", app)
		}
		return beside.Load()
	}})
	defer h.Close()
	write := func(n int) {
		for i := range n {
			h.Write("a", Line{Source: "a-v1-x", Stream: StreamStdout, Text: fmt.Sprintf("line %05d %s", i, "some output of the app")})
		}
	}
	write(3000)
	if got := dirSize(t, filepath.Join(dir, "a")); got+beside.Load() > quota {
		t.Errorf("the folder holds %d bytes beside %d of output: %d, over the quota of %d", got, beside.Load(), got+beside.Load(), quota)
	}
	beside.Store(0) // the output was read
	write(3000)
	if got := dirSize(t, filepath.Join(dir, "a")); got <= quota-20<<10 || got > quota {
		t.Errorf("with no output beside, the folder holds %d bytes; want more than %d (the room it got back), at most %d", got, quota-20<<10, quota)
	}
}

// TestRetentionRemovesOldFiles: closed files older than the retention go at
// the next rotation.
func TestRetentionRemovesOldFiles(t *testing.T) {
	dir := t.TempDir()
	appDir := filepath.Join(dir, "a")
	os.MkdirAll(appDir, 0o700)
	old := filepath.Join(appDir, fmt.Sprintf("%s%020d.log", rotatedPrefix, 1))
	if err := os.WriteFile(old, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	weekAgo := time.Now().Add(-8 * 24 * time.Hour)
	os.Chtimes(old, weekAgo, weekAgo)
	h := NewHub(Options{Dir: dir, FileSize: 4 << 10, Retention: 7 * 24 * time.Hour})
	defer h.Close()
	for i := range 200 {
		h.Write("a", Line{Text: fmt.Sprintf("line %d of some length to fill a file", i)})
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("a file past its retention is still there (%v)", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for name, o := range map[string]Options{
		"tiny file":   {FileSize: 100},
		"small quota": {FileSize: 1 << 20, Quota: 1 << 20},
		"retention":   {Retention: time.Minute},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%s: %+v is accepted", name, o)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("the defaults are refused: %v", err)
	}
}

// BenchmarkWrite measures an app's output going into its log with no live
// reader, with a reader that keeps up, and with one that never reads: the
// stuck reader must cost the writer nothing more than the others.
func BenchmarkWrite(b *testing.B) {
	line := Line{Source: "a-v1-x", Stream: StreamStdout, Release: 1, Text: "2026-11-25 INFO  o.s.web.servlet.DispatcherServlet : Completed initialization in 1 ms"}
	for _, readers := range []string{"none", "keeping-up", "stuck"} {
		b.Run(readers, func(b *testing.B) {
			h := NewHub(Options{Dir: b.TempDir()})
			defer h.Close()
			switch readers {
			case "keeping-up":
				_, sub, cancel, _ := h.Subscribe("a", 0)
				defer cancel()
				go func() {
					for range sub.Lines() {
					}
				}()
			case "stuck":
				_, _, cancel, _ := h.Subscribe("a", 0)
				defer cancel()
			}
			b.ReportAllocs()
			for b.Loop() {
				h.Write("a", line)
			}
		})
	}
}

// TestAsyncNeverBlocks: while the writer is stuck in the hub, lines are
// queued up to the buffer and then dropped and counted, never waited for;
// the count reaches the log once the writer is free again.
func TestAsyncNeverBlocks(t *testing.T) {
	h := NewHub(Options{Dir: t.TempDir()})
	defer h.Close()
	// The writer is stuck once it is inside the sink with the first line,
	// past its check for dropped lines. (Waiting for the queue to empty
	// instead let lines be dropped before that check, and counted twice.)
	stuck, release := make(chan struct{}), make(chan struct{})
	sink := func(app string, l Line) {
		if l.Text == "first" {
			close(stuck)
			<-release
		}
		h.Write(app, l)
	}
	a := newAsync(sink, 16, nil)
	a.Write("a", Line{Text: "first"})
	<-stuck
	const total = 1000
	for i := range total { // would hang here if Write waited
		a.Write("a", Line{Source: SourceRouter, Stream: StreamAccess, Text: fmt.Sprint("request ", i)})
	}
	if got, want := a.dropped.Load(), int64(total-16); got != want {
		t.Errorf("%d dropped, want %d (all but the buffer)", got, want)
	}
	close(release)
	waitUntil(t, func() bool { return len(a.ch) == 0 })
	a.Write("a", Line{Text: "after"})
	a.Close()
	got := h.Tail("a", -1)
	marker := fmt.Sprintf("[%d lines dropped: the log writer fell behind]", total-16)
	markers := 0
	for _, l := range got {
		if l.Text == marker {
			markers++
		}
	}
	if len(got) != 1+16+2 || markers != 1 || got[len(got)-1].Text != "after" {
		t.Errorf("the log holds %d lines (want 19), %d markers %q (want 1), ending %q", len(got), markers, marker, got[len(got)-1].Text)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAsyncSurvivesPanic: a sink that panics on one line loses that line;
// the panic is logged with its stack and the writer goes on with the next.
func TestAsyncSurvivesPanic(t *testing.T) {
	var mu sync.Mutex // guards got
	var got []string
	sink := func(app string, l Line) {
		if l.Text == "boom" {
			panic("sink cannot take " + l.Text)
		}
		mu.Lock()
		defer mu.Unlock()
		got = append(got, l.Text)
	}
	logs := &logBuffer{}
	a := newAsync(sink, 16, slog.New(slog.NewTextHandler(logs, nil)))
	for _, text := range []string{"one", "boom", "two"} {
		a.Write("a", Line{Text: text})
	}
	waitUntil(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2
	})
	a.Close()
	if want := []string{"one", "two"}; !slices.Equal(got, want) {
		t.Errorf("sink got %q, want %q", got, want)
	}
	for _, want := range []string{"recovered a panic", "sink cannot take boom", "TestAsyncSurvivesPanic", "restarting after a panic"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("daemon log lacks %q:\n%s", want, logs)
		}
	}
}

// TestJanitorSurvivesPanic: a prune that panics is logged with its stack,
// and the janitor's loop starts again: the next tick prunes. The loop runs
// here on ticks of the test's own, not the hourly ones.
func TestJanitorSurvivesPanic(t *testing.T) {
	logs := &logBuffer{}
	h := NewHub(Options{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	var pruned atomic.Int32
	tick := make(chan time.Time)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.clean(tick, func() {
			if pruned.Add(1) == 1 {
				panic("cannot prune")
			}
		})
	}()
	for i := range 2 {
		select {
		case tick <- time.Now():
		case <-time.After(5 * time.Second):
			t.Fatalf("tick %d: the janitor takes no ticks (it did not start again after the panic)", i+1)
		}
	}
	waitUntil(t, func() bool { return pruned.Load() == 2 })
	h.Close()
	<-done
	for _, want := range []string{"recovered a panic", "log janitor", "cannot prune", "TestJanitorSurvivesPanic", "restarting after a panic"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("daemon log lacks %q:\n%s", want, logs)
		}
	}
}

// logBuffer is a slog destination that goroutines under test write to
// while the test reads it.
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
