package e2e

import (
	"archive/zip"
	"bytes"
	le "encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// zipFile writes a zip with the given entries.
func zipFile(t *testing.T, dir, name string, entries map[string]string) string {
	t.Helper()
	files := make([]zipEntry, 0, len(entries))
	for n, body := range entries {
		files = append(files, zipEntry{n, []byte(body), 0o644})
	}
	return writeZip(t, filepath.Join(dir, name), files)
}

type zipEntry struct {
	name string
	body []byte
	mode os.FileMode
}

func writeZip(t *testing.T, p string, entries []zipEntry) string {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(e.body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

var startedRe = regexp.MustCompile(`Started instance \S+ \(pid (\d+),`)

// startedPIDs finds the pids of every instance started, in `slipway logs`.
func startedPIDs(logs string) []int {
	var pids []int
	for _, m := range startedRe.FindAllStringSubmatch(logs, -1) {
		pid, _ := strconv.Atoi(m[1])
		pids = append(pids, pid)
	}
	return pids
}

// hugeDirectoryZip writes a zip of one small file whose central directory
// repeats that file's header n times, while its end record claims n mod
// 65,536 entries and a directory of that many headers: archive/zip reads
// headers from the recorded offset as far as they go, and checks the
// count only modulo 65,536.
func hugeDirectoryZip(t *testing.T, p string, n int) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "a", Method: zip.Store})
	w.Write([]byte("x"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	small := buf.Bytes()
	end := small[len(small)-22:]
	size, offset := le.LittleEndian.Uint32(end[12:]), le.LittleEndian.Uint32(end[16:])
	header := small[offset : offset+size]
	out := bytes.NewBuffer(append([]byte(nil), small[:offset]...))
	for range n {
		out.Write(header)
	}
	b := out.Bytes()
	b = le.LittleEndian.AppendUint32(b, 0x06054b50)
	b = append(b, 0, 0, 0, 0)
	b = le.LittleEndian.AppendUint16(b, uint16(n))
	b = le.LittleEndian.AppendUint16(b, uint16(n))
	b = le.LittleEndian.AppendUint32(b, uint32(n%(1<<16)*len(header)))
	b = le.LittleEndian.AppendUint32(b, offset)
	b = le.LittleEndian.AppendUint16(b, 0)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// peakRSS is the most memory the process pid has held, in bytes (VmHWM).
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// TestArchiveBounds: an upload whose central directory holds a million
// entries is refused with the reason before the daemon parses it, so its
// memory stays where it was; a release refused while unpacking leaves no
// directory; and what a crash left of a release directory being made is
// gone at the next start.
func TestArchiveBounds(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "--command", "sleep 1000", "bounded")
	dir := t.TempDir()

	// 47 MB of directory headers. Before the bound, archive/zip made a
	// File of each, and the daemon (built with -race) grew by 818 MiB.
	huge := hugeDirectoryZip(t, filepath.Join(dir, "huge.zip"), 1_000_000)
	before := peakRSS(t, d.cmd.Process.Pid)
	out, err := d.cli("deploy", "-a", "bounded", huge)
	if err == nil || !strings.Contains(out, "more than 65535 entries") {
		t.Errorf("deploying a million entries: %v\n%s", err, out)
	}
	grown := peakRSS(t, d.cmd.Process.Pid) - before
	t.Logf("the daemon's peak memory grew by %d MiB", grown>>20)
	if grown > 64<<20 {
		t.Errorf("the daemon's peak memory grew by %d MiB refusing the upload, want under 64", grown>>20)
	}
	if len(d.deployments("bounded")) != 0 {
		t.Errorf("a refused upload made a deployment")
	}

	// Refused while unpacking, in the background: no release directory.
	slip := writeZip(t, filepath.Join(dir, "slip.zip"), []zipEntry{{"ok.txt", []byte("x"), 0o644}, {"../evil.txt", []byte("x"), 0o644}})
	if out, err := d.cli("deploy", "-a", "bounded", slip); err == nil || !strings.Contains(out, "outside the release directory") {
		t.Errorf("deploying a zip slip: %v\n%s", err, out)
	}
	releases := filepath.Join(d.dataDir, "apps", "bounded", "releases")
	if entries, _ := os.ReadDir(releases); len(entries) != 0 {
		t.Errorf("a refused release left %v in %s", entries, releases)
	}

	// A release directory half made when the daemon died.
	d.kill()
	partial := filepath.Join(releases, ".slipway-tmp-123456")
	os.MkdirAll(filepath.Join(partial, "lib"), 0o700)
	os.WriteFile(filepath.Join(partial, "lib", "half.jar"), []byte("x"), 0o600)
	d.start()
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("the half-made release directory is still there after a start (%v)", err)
	}
}
