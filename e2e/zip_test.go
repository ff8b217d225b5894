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
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for n, body := range entries {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
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

// zipFileMode writes a zip with one file of the given mode.
func zipFileMode(t *testing.T, dir, name, entry string, body []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	h := &zip.FileHeader{Name: entry, Method: zip.Deflate}
	h.SetMode(mode)
	w, err := zw.CreateHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(body)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}
