package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slipway-dev/slipway/internal/atomicfile"
	"github.com/slipway-dev/slipway/internal/safego"
)

const (
	// maxLine is the longest output line; longer ones are split.
	maxLine = 64 << 10
	// pollInterval is how often a follower looks for new output.
	pollInterval = 100 * time.Millisecond
	// saveEvery is how often a follower records how far it has read, so a
	// later daemon resumes there (output read since is passed on again).
	saveEvery    = time.Second
	offsetSuffix = ".offset"
)

// follow starts one goroutine per output file, from the given offsets.
// A follower that panics (in Output, say) is not restarted, since it would
// most likely panic again on the same line: the panic is logged, and the
// instance's output is marked lost with a line saying so.
func (i *Instance) follow(spec Spec, offsets [2]int64) {
	for n, stream := range streams {
		i.readers.Add(1)
		go func() {
			defer i.readers.Done()
			name := "output follower of instance " + i.ID + " " + stream
			err := safego.Run(i.log, name, func() {
				i.followFile(outputPath(spec, stream), stream, offsets[n], spec.MaxUnread, spec.Output)
			})
			if err != nil {
				i.outputLost(name, stream, spec.Output)
			}
		}()
	}
}

// outputLost tells the reader of the instance's output, and its last lines,
// that stream is no longer followed.
func (i *Instance) outputLost(name, stream string, out func(string, string)) {
	line := "[slipway stopped reading this instance's " + stream + " after an internal error; the daemon's log has the details]"
	i.remember(line)
	if out != nil {
		safego.Run(i.log, name, func() { out(stream, line) })
	}
}

// followFile passes each line of the file at path to out, from offset on,
// until the process has exited and everything is read, or Detach.
func (i *Instance) followFile(path, stream string, offset int64, maxUnread int64, out func(string, string)) {
	// Read and write: punching holes (see punch) needs a writable file.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		i.log.Error("following an instance's output", "instance", i.ID, "err", err)
		return
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		i.log.Error("following an instance's output", "instance", i.ID, "err", err)
		return
	}
	fl := &follower{i: i, f: f, path: path, stream: stream, saved: offset, lastSave: time.Now(), maxUnread: maxUnread,
		r: &lineReader{br: bufio.NewReaderSize(f, maxLine), offset: offset}}
	if maxUnread > 0 {
		fl.maxUnread = max(maxUnread, minMaxUnread)
	}
	fl.emit = func(line string) {
		i.remember(line)
		if out != nil {
			out(stream, line)
		}
	}
	fl.run()
}

const (
	// readChunk is how much a follower reads before it looks at the time,
	// at how far behind it is, and at Detach: little, so that an app that
	// writes fast gets little ahead of a look.
	readChunk = 16 << 10
	// saveBytes makes a follower record how far it has read after this
	// many bytes, if that comes before saveEvery.
	saveBytes = 1 << 20
	// minMaxUnread is the least Spec.MaxUnread that works: skipping must
	// land past a partial line and what is buffered.
	minMaxUnread = 1 << 20
	// punchAlign: only whole blocks are punched out.
	punchAlign = 4096
)

// follower reads one output file of an instance. The instance writes the
// file itself, in append mode, so it can never be truncated or rotated
// under it without losing what it writes meanwhile. Instead, what has been
// read and recorded as read is punched out of the file (a hole takes no
// disk space); the file's size grows, its disk use stays with what has not
// been read yet. And when the instance writes faster than it is read, the
// oldest unread output is skipped past maxUnread, as the log files would
// drop it anyway to keep within their quota.
type follower struct {
	i            *Instance
	f            *os.File
	path, stream string
	r            *lineReader
	emit         func(string)
	maxUnread    int64
	// saved is the offset last recorded for a later daemon, lastSave when.
	// Nothing before it is read again, so it may be punched out.
	saved    int64
	lastSave time.Time
	punched  int64 // the file holds nothing before it
	warned   bool  // a failure to save or punch was logged
	noPunch  bool  // the file system cannot punch holes
}

func (fl *follower) run() {
	r := fl.r
	for {
		exited := isClosed(fl.i.done)
		fl.skipIfBehind()
		eof := r.read(fl.emit, readChunk)
		if r.offset != fl.saved && (exited && eof || time.Since(fl.lastSave) > saveEvery || r.offset-fl.saved >= saveBytes) {
			fl.save()
		}
		if exited && eof {
			r.flush(fl.emit)
			return
		}
		if !eof {
			if isClosed(fl.i.detach) {
				fl.save()
				return
			}
			continue
		}
		select {
		case <-fl.i.detach:
			fl.save()
			return
		case <-fl.i.done:
		case <-time.After(pollInterval):
		}
	}
}

// save records how far the file has been read, then punches out what is
// before that. It logs only its first failure: the follower carries on,
// and a later daemon that adopts the instance passes on again what was
// read since the last offset saved.
func (fl *follower) save() {
	fl.lastSave = time.Now()
	if err := saveOffset(fl.path, fl.r.offset); err != nil {
		fl.warn("saving how far an instance's output was read", err)
		return
	}
	fl.saved = fl.r.offset
	fl.punch()
}

// punch frees the disk blocks of what was read and recorded, keeping the
// file's size and offsets as they are.
func (fl *follower) punch() {
	to := fl.saved &^ (punchAlign - 1)
	if fl.noPunch || to <= fl.punched {
		return
	}
	err := unix.Fallocate(int(fl.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, fl.punched, to-fl.punched)
	if err != nil {
		fl.noPunch = true
		fl.warn("freeing the output an instance wrote and the daemon has read (its file keeps growing)", err)
		return
	}
	fl.punched = to
}

func (fl *follower) warn(msg string, err error) {
	if !fl.warned {
		fl.i.log.Warn(msg, "instance", fl.i.ID, "file", fl.path, "err", err)
		fl.warned = true
	}
}

// skipIfBehind skips the oldest unread output when more than maxUnread is
// waiting, down to half of it, from the start of a line on, and says so.
func (fl *follower) skipIfBehind() {
	fi, err := fl.f.Stat()
	if fl.maxUnread == 0 || err != nil || fi.Size()-fl.r.offset <= fl.maxUnread {
		return
	}
	from := fl.r.offset
	to := fi.Size() - fl.maxUnread/2
	if _, err := fl.f.Seek(to, io.SeekStart); err != nil {
		return
	}
	fl.r.br.Reset(fl.f)
	fl.r.partial = fl.r.partial[:0]
	fl.r.offset = to + fl.r.skipLine()
	fl.emit(fmt.Sprintf("[slipway skipped %d bytes of this instance's %s: it wrote faster than its log is kept]", fl.r.offset-from, fl.stream))
	fl.save()
}

// lineReader splits a growing file into lines. offset counts the bytes of
// the complete lines passed on.
type lineReader struct {
	br      *bufio.Reader
	partial []byte
	offset  int64
}

// read passes on the complete lines available, until about limit bytes
// have been read; it reports whether it reached the end of what is
// written.
func (r *lineReader) read(emit func(string), limit int64) (eof bool) {
	start := r.offset
	for r.offset-start < limit {
		chunk, err := r.br.ReadSlice('\n')
		r.partial = append(r.partial, chunk...)
		switch {
		case err == nil:
			r.offset += int64(len(r.partial))
			emit(trimNewline(r.partial))
			r.partial = r.partial[:0]
		case errors.Is(err, bufio.ErrBufferFull) || len(r.partial) >= maxLine:
			r.flush(emit)
		default: // io.EOF: the rest is not written yet
			return true
		}
	}
	return false
}

// skipLine reads past the rest of the line it is in, or what is written
// of it, and returns how many bytes that took.
func (r *lineReader) skipLine() int64 {
	var n int64
	for {
		chunk, err := r.br.ReadSlice('\n')
		n += int64(len(chunk))
		if !errors.Is(err, bufio.ErrBufferFull) {
			return n
		}
	}
}

// flush passes on a line without its end, as the last line of a process or
// a piece of an over-long line.
func (r *lineReader) flush(emit func(string)) {
	if len(r.partial) == 0 {
		return
	}
	r.offset += int64(len(r.partial))
	emit(trimNewline(r.partial))
	r.partial = r.partial[:0]
}

func trimNewline(b []byte) string {
	s := string(b)
	s = strings.TrimSuffix(s, "\n")
	return strings.TrimSuffix(s, "\r")
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// saveOffset records how far path has been read.
func saveOffset(path string, offset int64) error {
	return atomicfile.WriteFile(path+offsetSuffix, []byte(strconv.FormatInt(offset, 10)), 0o600)
}

// savedOffset reads what saveOffset recorded, 0 if nothing.
func savedOffset(path string) int64 {
	b, err := os.ReadFile(path + offsetSuffix)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// OutputDiskUse is the disk space the output files in logDir (a Spec's
// LogDir) take: what is unread of them, since what was read is punched
// out. It counts against the app's log quota (see logs.Options.Beside).
func OutputDiskUse(logDir string) int64 {
	entries, err := os.ReadDir(logDir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
	}
	return n
}
