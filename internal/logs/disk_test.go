package logs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fill writes a file in dir until the disk is full, and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return p
		}
	}
}

// fileLines returns the text of every line in app's log files, oldest
// first, failing the test on a line that is not a whole JSON line.
func fileLines(t *testing.T, h *Hub, app string) []string {
	t.Helper()
	var texts []string
	for _, p := range h.files(app) {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		for sc := bufio.NewScanner(f); sc.Scan(); {
			var l Line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Errorf("%s holds a garbled line %q: %v", filepath.Base(p), sc.Text(), err)
			}
			texts = append(texts, l.Text)
		}
		f.Close()
	}
	return texts
}

// TestFullDisk: when the disk is full, writing a line neither blocks nor
// fails the hub: live readers and the backlog still get it, the daemon's
// log says once that the file takes no more, and once space is back the
// file goes on with a marker counting the lines it missed, and no line
// cut short. The disk is a 256 KiB tmpfs; where mounting is refused, the
// app's log file is /dev/full, which fails every write the same way (but
// cannot be given space back, so the second half is skipped).
func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	mounted := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k,mode=0700") == nil
	if mounted {
		t.Cleanup(func() { unix.Unmount(dir, 0) })
	} else {
		t.Log("cannot mount a tmpfs: the app's log file is /dev/full instead")
		os.MkdirAll(filepath.Join(dir, "a"), 0o700)
		if err := os.Symlink("/dev/full", filepath.Join(dir, "a", currentFile)); err != nil {
			t.Fatal(err)
		}
	}
	daemonLog := &logBuffer{}
	h := NewHub(Options{Dir: dir, FileSize: 16 << 10, Quota: 64 << 10, Logger: slog.New(slog.NewTextHandler(daemonLog, nil))})
	defer h.Close()
	_, sub, cancel, _ := h.Subscribe("a", 0)
	defer cancel()
	h.Write("a", Line{Text: "before"})
	filler := ""
	if mounted {
		filler = fill(t, dir)
	}

	start := time.Now()
	const n = 200 // lines of some 150 bytes: more than the last page of app.log holds
	for i := range n {
		h.Write("a", Line{Source: "a-v1-x", Stream: StreamStdout, Text: fmt.Sprintf("during %d %s", i, strings.Repeat("x", 64))})
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("writing %d lines on a full disk took %s", n, d)
	}
	for i := range n + 1 {
		if l := <-sub.Lines(); (i == 0) != (l.Text == "before") {
			t.Fatalf("live line %d is %q", i, l.Text)
		}
	}
	if tail := h.Tail("a", 1); len(tail) != 1 || !strings.HasPrefix(tail[0].Text, fmt.Sprint("during ", n-1)) {
		t.Errorf("the backlog ends with %+v", tail)
	}
	if got := strings.Count(daemonLog.String(), "takes no more lines"); got != 1 {
		t.Errorf("the daemon's log says %d times that the file takes no more lines, want once:\n%s", got, daemonLog)
	}
	if !mounted {
		return
	}

	os.Remove(filler)
	h.Write("a", Line{Text: "after"})
	texts := fileLines(t, h, "a")
	written, missed := 0, 0
	for _, text := range texts {
		if strings.HasPrefix(text, "during ") {
			written++
		}
		if _, err := fmt.Sscanf(text, "[%d lines not written", &missed); err == nil && !strings.Contains(text, "no space left on device") {
			t.Errorf("the marker %q does not say why", text)
		}
	}
	if missed == 0 || written+missed != n {
		t.Errorf("the file holds %d of the %d lines and its marker counts %d missed; want them to add up, with some missed:\n%s", written, n, missed, strings.Join(texts, "\n"))
	}
	if texts[0] != "before" || texts[len(texts)-1] != "after" {
		t.Errorf("the file holds %q … %q, want before … after", texts[0], texts[len(texts)-1])
	}
	if !strings.Contains(daemonLog.String(), "takes lines again") {
		t.Errorf("the daemon's log does not say the file takes lines again:\n%s", daemonLog)
	}
}

// TestRotationOnFullDisk: a rotation that cannot create the new file (the
// file system is out of inodes) does not end the app's log file for good:
// once an inode is free, the next line starts it. It needs a tmpfs with
// few inodes, so it is skipped where mounting is refused.
func TestRotationOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m,nr_inodes=16,mode=0700"); err != nil {
		t.Skipf("needs a tmpfs with few inodes, and cannot mount one: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, 0) })
	daemonLog := &logBuffer{}
	h := NewHub(Options{Dir: dir, FileSize: 4 << 10, Quota: 8 << 10, Logger: slog.New(slog.NewTextHandler(daemonLog, nil))})
	defer h.Close()
	h.Write("a", Line{Text: "first"})
	var spare string
	for i := 0; ; i++ { // take every inode left
		p := filepath.Join(dir, fmt.Sprint("spare-", i))
		f, err := os.Create(p)
		if err != nil {
			break
		}
		f.Close()
		spare = p
	}
	if spare == "" {
		t.Fatal("no inode was left to take")
	}
	line := Line{Text: strings.Repeat("x", 100)}
	for range 100 { // some 15 KiB: past a rotation, whose new file cannot be made
		h.Write("a", line)
	}
	if !strings.Contains(daemonLog.String(), "level=ERROR") {
		t.Fatalf("no write failed; the test did not reach a rotation without inodes:\n%s", daemonLog)
	}
	os.Remove(spare)
	h.Write("a", Line{Text: "after"})
	texts := fileLines(t, h, "a")
	if len(texts) < 2 || texts[len(texts)-1] != "after" || !strings.Contains(texts[len(texts)-2], "lines not written to this file") {
		t.Errorf("once an inode is free the file should go on with a marker and the line; it ends with %q", texts[max(0, len(texts)-2):])
	}
}

// TestLogsLeaveMinFree: while the disk has less free space than MinFree,
// an app's log file takes no line (live readers still get them, the
// daemon's log says why once), and once there is space again a marker
// line counts those it missed.
func TestLogsLeaveMinFree(t *testing.T) {
	var said strings.Builder
	h := NewHub(Options{Dir: t.TempDir(), MinFree: 1 << 62, Logger: slog.New(slog.NewTextHandler(&said, nil))})
	defer h.Close()
	h.Platform("shop", 1, "first")
	h.Platform("shop", 1, "second")
	if got := fileLines(t, h, "shop"); len(got) != 0 {
		t.Errorf("the file took %q with less free space than MinFree", got)
	}
	if tail := h.Tail("shop", 10); len(tail) != 2 {
		t.Errorf("the backlog holds %d lines, want both", len(tail))
	}
	if n := strings.Count(said.String(), "takes no more lines"); n != 1 || !strings.Contains(said.String(), "the logs leave") {
		t.Errorf("the daemon's log said it %d times, want once with why:\n%s", n, said.String())
	}
	h.space.mu.Lock()
	h.space.minFree, h.space.checked = 1, time.Time{} // space again, looked at on the next line
	h.space.mu.Unlock()
	h.Platform("shop", 1, "third")
	got := fileLines(t, h, "shop")
	if len(got) != 2 || !strings.Contains(got[0], "2 lines not written") || got[1] != "third" {
		t.Errorf("the file holds %q, want the marker of 2 lines, then third", got)
	}
}
