package cli

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// An app's output reaches the operator's terminal through the CLI: its log
// lines, the last lines a failed deployment quotes, the notes of its
// instances. An app could print escape sequences that retitle the window,
// clear the screen, move the cursor over earlier lines or write to the
// clipboard (OSC 52). So every text the CLI writes for people goes
// through termWriter, which shows such characters instead of sending
// them; JSON for scripts is written exact, through exact.

// sanitize returns s with every character that a terminal would act on
// made visible, but tab and newline: see escape.
func sanitize(s string) string { return escape(s, "\t\n") }

// escape returns s with every control character but those in keep
// replaced by a visible escape, as Go writes them: the C0 controls and
// DEL as \x1b, the C1 controls (U+0080–U+009F, which some terminals obey
// like ESC sequences) as \u009b, and each byte that is not UTF-8 as \xff.
// Everything else, non-ASCII text and a literal U+FFFD included, is kept.
func escape(s string, keep string) string {
	if clean(s, keep) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case isControl(r) && !strings.ContainsRune(keep, r):
			if r < utf8.RuneSelf {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// clean reports whether escape has nothing to do in s.
func clean(s string, keep string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || isControl(r) && !strings.ContainsRune(keep, r) {
			return false
		}
		i += n
	}
	return true
}

// isControl reports whether r is a C0 control, DEL or a C1 control.
func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f }

// termWriter sanitizes what is written through it. Each Write is taken
// as whole text: a rune split across two writes would be shown escaped.
// fmt writes once per call and text/tabwriter writes whole cells, so the
// CLI's writes never split one.
type termWriter struct{ w io.Writer }

func (t termWriter) Write(p []byte) (int, error) {
	s := string(p)
	if clean(s, "\t\n") {
		return t.w.Write(p)
	}
	if _, err := io.WriteString(t.w, sanitize(s)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// toTerminal makes w a termWriter, once.
func toTerminal(w io.Writer) io.Writer {
	if _, ok := w.(termWriter); ok {
		return w
	}
	return termWriter{w}
}

// exact returns the writer under a termWriter, for output that must reach
// scripts as the daemon sent it: JSON. (Its strings carry the C0 controls
// escaped, but DEL and the C1 controls as they are.)
func exact(w io.Writer) io.Writer {
	if t, ok := w.(termWriter); ok {
		return t.w
	}
	return w
}
