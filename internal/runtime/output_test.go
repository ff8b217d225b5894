package runtime

import (
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// printLots is a command that prints n lines of 100 bytes, then "last".
const printLots = `yes xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | head -n $N; echo last`

// diskUse is how many bytes of disk the file at path takes.
func diskUse(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestOutputReadIsFreed: what the daemon has read of an instance's output
// file no longer takes disk space, and nothing is lost on the way.
func TestOutputReadIsFreed(t *testing.T) {
	var lines atomic.Int64
	var last atomic.Value
	spec := Spec{ID: "chatty", Dir: t.TempDir(), LogDir: t.TempDir(), Env: []string{"PATH=" + os.Getenv("PATH"), "N=200000"}, Command: printLots,
		Output: func(stream, line string) { lines.Add(1); last.Store(line) }}
	inst, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, inst, 30*time.Second)
	inst.WaitOutput()
	if got, want := lines.Load(), int64(200001); got != want {
		t.Errorf("%d lines passed on, want %d", got, want)
	}
	if got := last.Load(); got != "last" {
		t.Errorf("last line %q, want \"last\"", got)
	}
	path := outputPath(spec, "stdout")
	fi, _ := os.Stat(path)
	if got, max := diskUse(t, path), int64(64<<10); got > max {
		t.Errorf("stdout file takes %d bytes of disk (size %d) once read, want at most %d", got, fi.Size(), max)
	}
}

// TestOutputSkippedWhenFarBehind: while the reader cannot keep up, the
// file holds at most MaxUnread unread bytes; the oldest are skipped, with
// a line that says so, and the newest arrive.
func TestOutputSkippedWhenFarBehind(t *testing.T) {
	var mu sync.Mutex
	var got []string
	var inst *Instance
	started := make(chan struct{})
	spec := Spec{ID: "flood", Dir: t.TempDir(), LogDir: t.TempDir(), Env: []string{"PATH=" + os.Getenv("PATH"), "N=100000"}, Command: printLots,
		MaxUnread: 1 << 20,
		Output: func(stream, line string) {
			mu.Lock()
			first := len(got) == 0
			got = append(got, line)
			mu.Unlock()
			if first { // a reader that falls behind: wait until all is written
				<-started
				<-inst.Done()
			}
		}}
	inst, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	close(started)
	waitDone(t, inst, 30*time.Second)
	inst.WaitOutput()
	mu.Lock()
	defer mu.Unlock()
	text := strings.Join(got, "\n")
	if !strings.Contains(text, "[slipway skipped ") {
		t.Errorf("no line says output was skipped (%d lines)", len(got))
	}
	if got[len(got)-1] != "last" {
		t.Errorf("last line %q, want \"last\"", got[len(got)-1])
	}
	if len(got) > 20000 {
		t.Errorf("%d lines passed on; with 1 MiB kept of 10 MB, want far fewer", len(got))
	}
}
