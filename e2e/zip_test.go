package e2e

import (
	"archive/zip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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
