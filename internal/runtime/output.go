package runtime

import (
	"bufio"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

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
				i.followFile(outputPath(spec, stream), stream, offsets[n], spec.Output)
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
func (i *Instance) followFile(path, stream string, offset int64, out func(string, string)) {
	f, err := os.Open(path)
	if err != nil {
		i.log.Error("following an instance's output", "instance", i.ID, "err", err)
		return
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		i.log.Error("following an instance's output", "instance", i.ID, "err", err)
		return
	}
	r := &lineReader{br: bufio.NewReaderSize(f, maxLine), offset: offset}
	emit := func(line string) {
		i.remember(line)
		if out != nil {
			out(stream, line)
		}
	}
	saved := offset
	lastSave := time.Now()
	warned := false
	// save logs only its first failure: the follower carries on, and a
	// later daemon that adopts the instance passes on again what was read
	// since the last offset saved.
	save := func() {
		if err := saveOffset(path, r.offset); err != nil && !warned {
			i.log.Warn("saving how far an instance's output was read", "instance", i.ID, "file", path, "err", err)
			warned = true
		}
		saved, lastSave = r.offset, time.Now()
	}
	for {
		exited := isClosed(i.done)
		r.readAvailable(emit)
		if r.offset != saved && (exited || time.Since(lastSave) > saveEvery) {
			save()
		}
		if exited {
			r.flush(emit)
			return
		}
		select {
		case <-i.detach:
			save()
			return
		case <-i.done:
		case <-time.After(pollInterval):
		}
	}
}

// lineReader splits a growing file into lines. offset counts the bytes of
// the complete lines passed on.
type lineReader struct {
	br      *bufio.Reader
	partial []byte
	offset  int64
}

func (r *lineReader) readAvailable(emit func(string)) {
	for {
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
			return
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
