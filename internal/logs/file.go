package logs

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Defaults for the files kept on disk.
const (
	// DefaultFileSize is the size at which an app's current log file is
	// closed and a new one started.
	DefaultFileSize = 10 << 20
	// DefaultQuota bounds all of one app's log files together.
	DefaultQuota = 100 << 20
	// DefaultRetention is how long a closed log file is kept.
	DefaultRetention = 7 * 24 * time.Hour
)

// currentFile is the name of the file an app's lines are appended to;
// closed files are named rotatedPrefix + a zero-padded Unix time in
// nanoseconds + ".log", so that their names sort by age.
const (
	currentFile   = "app.log"
	rotatedPrefix = "app-"
)

// Validate checks the file limits; zero values mean the defaults.
func (o Options) Validate() error {
	o = o.withDefaults()
	if o.FileSize < 4<<10 {
		return fmt.Errorf("log file size %d bytes is too small: give at least 4096", o.FileSize)
	}
	if o.Quota < 2*o.FileSize {
		return fmt.Errorf("log quota %d bytes must be at least twice the file size (%d bytes)", o.Quota, o.FileSize)
	}
	if o.Retention < 24*time.Hour {
		return fmt.Errorf("log retention %s is too short: give at least a day", o.Retention)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.FileSize == 0 {
		o.FileSize = DefaultFileSize
	}
	if o.Quota == 0 {
		o.Quota = DefaultQuota
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	return o
}

// budget is what app's closed log files may take: the quota, less a
// full current file and what app's other output takes beside them.
func (o Options) budget(app string) int64 {
	b := o.Quota - o.FileSize
	if o.Beside != nil {
		b -= o.Beside(app)
	}
	return max(b, 0)
}

// appFile is an app's current log file and its size. f is nil after a
// rotation that could not open the new file; write opens it again.
type appFile struct {
	dir  string
	f    *os.File
	size int64
}

func openAppFile(dir string) (*appFile, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating log folder: %w", err)
	}
	af := &appFile{dir: dir}
	if err := af.open(); err != nil {
		return nil, err
	}
	return af, nil
}

func (af *appFile) open() error {
	f, err := os.OpenFile(filepath.Join(af.dir, currentFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("opening log file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	af.f, af.size = f, fi.Size()
	return nil
}

// write appends b, first rotating when b would take the current file past
// the file size. The folder never holds more than the quota: before a new
// file starts, the oldest closed files go until the closed ones and a full
// new file fit. A line that could be written only in part (the disk filled
// up) is taken back, so that it does not garble the next one.
func (af *appFile) write(b []byte, o Options) error {
	if af.f != nil && af.size > 0 && af.size+int64(len(b)) > o.FileSize {
		if err := af.rotate(o); err != nil {
			return err
		}
	}
	if af.f == nil {
		if err := af.open(); err != nil {
			return err
		}
	}
	if int64(len(b)) > o.FileSize { // one line longer than a file: keep its head
		b = append(b[:o.FileSize-1:o.FileSize-1], '\n')
	}
	n, err := af.f.Write(b)
	if err != nil && n > 0 && af.f.Truncate(af.size) == nil {
		n = 0
	}
	af.size += int64(n)
	return err
}

// rotate closes the current file, renames it as a closed one, prunes, and
// starts a new one. When it fails, the next write opens app.log again
// (and rotates it again if it is still full).
func (af *appFile) rotate(o Options) error {
	af.f.Close()
	af.f = nil
	name := fmt.Sprintf("%s%020d.log", rotatedPrefix, time.Now().UnixNano())
	if err := os.Rename(filepath.Join(af.dir, currentFile), filepath.Join(af.dir, name)); err != nil {
		return fmt.Errorf("rotating log file: %w", err)
	}
	prune(af.dir, o.budget(filepath.Base(af.dir)), time.Now().Add(-o.Retention))
	return af.open()
}

func (af *appFile) close() {
	if af.f != nil {
		af.f.Close()
	}
}

// rotatedFiles lists the closed log files in dir, oldest first.
func rotatedFiles(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), rotatedPrefix) && strings.HasSuffix(e.Name(), ".log") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// prune removes closed log files in dir last written before cutoff, then
// the oldest ones until together they take at most budget bytes.
func prune(dir string, budget int64, cutoff time.Time) {
	names := rotatedFiles(dir)
	sizes := make([]int64, len(names))
	var total int64
	for i, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			continue
		}
		if fi.ModTime().Before(cutoff) {
			os.Remove(filepath.Join(dir, n))
			continue
		}
		sizes[i] = fi.Size()
		total += fi.Size()
	}
	for i := 0; i < len(names) && total > budget; i++ {
		if sizes[i] > 0 && os.Remove(filepath.Join(dir, names[i])) == nil {
			total -= sizes[i]
		}
	}
}

// files returns the paths of app's log files, oldest first; the last one is
// the file being written.
func (h *Hub) files(app string) []string {
	dir := filepath.Join(h.opts.Dir, app)
	var paths []string
	for _, n := range rotatedFiles(dir) {
		paths = append(paths, filepath.Join(dir, n))
	}
	if _, err := os.Stat(filepath.Join(dir, currentFile)); err == nil {
		paths = append(paths, filepath.Join(dir, currentFile))
	}
	return paths
}

// ReadFiles calls fn with each line of app's log files, oldest first, that
// keep accepts, until fn returns an error. Lines written meanwhile may or
// may not be seen.
func (h *Hub) ReadFiles(app string, keep func(Line) bool, fn func(Line) error) error {
	for _, p := range h.files(app) {
		if err := readFile(p, keep, fn); err != nil {
			return err
		}
	}
	return nil
}

func readFile(path string, keep func(Line) bool, fn func(Line) error) error {
	f, err := os.Open(path)
	if err != nil {
		return nil // rotated away or pruned since it was listed
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		b, err := r.ReadBytes('\n')
		var l Line
		if len(b) > 0 && json.Unmarshal(b, &l) == nil && keep(l) {
			if ferr := fn(l); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Format renders l as one line of text for people:
// time, source, stream when it is not an event, release, text.
func (l Line) Format() string {
	src := l.Source
	if l.Node != "" {
		src = l.Node + "/" + src
	}
	if l.Stream == StreamStderr {
		src += "/stderr"
	}
	rel := ""
	if l.Release > 0 {
		rel = fmt.Sprintf("v%d ", l.Release)
	}
	return fmt.Sprintf("%s  %-24s %s%s", l.Time.UTC().Format("2006-01-02T15:04:05.000Z"), src, rel, l.Text)
}
