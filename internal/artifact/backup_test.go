package artifact

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256-" + hex.EncodeToString(sum[:])
}

// TestImport: an artifact from a backup is stored under its digest only
// if its content matches it, and a refused one leaves nothing.
func TestImport(t *testing.T) {
	s, err := NewStore(Options{Dir: t.TempDir(), MinFreeSpace: 1})
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("the jar")
	for _, tc := range []struct {
		name, digest string
		size         int64
		want         string
	}{
		{"a path for a digest", "../admin.token", 7, "is not an artifact's digest"},
		{"content of another digest", digest([]byte("other")), 7, "has the content of " + digest(content)},
		{"shorter than said", digest(content), 8, "7 bytes of 8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Import(tc.digest, bytes.NewReader(content), tc.size)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Import: %v, want an error saying %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(s.opts.Dir); len(entries) != 0 {
				t.Errorf("a refused import left %v", entries)
			}
		})
	}
	d := digest(content)
	if err := s.Import(d, bytes.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	f, size, err := s.Open(d)
	if err != nil || size != int64(len(content)) {
		t.Fatalf("Open: size %d, %v", size, err)
	}
	f.Close()
}

// TestImportKeepsReserve: an import that would leave less than the
// reserve free is refused like an upload.
func TestImportKeepsReserve(t *testing.T) {
	dir, _ := smallDisk(t, 8<<20)
	s, err := NewStore(Options{Dir: dir, MinFreeSpace: freeSpace(t, dir) + 1<<30})
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("the jar")
	if err := s.Import(digest(content), bytes.NewReader(content), int64(len(content))); !errors.Is(err, ErrNoSpace) {
		t.Errorf("Import on a full disk: %v, want ErrNoSpace", err)
	}
}

// TestHoldRemovals: Prune waits while a backup holds removals.
func TestHoldRemovals(t *testing.T) {
	s, err := NewStore(Options{Dir: t.TempDir(), MinFreeSpace: 1})
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("old")
	if err := s.Import(digest(content), bytes.NewReader(content), 3); err != nil {
		t.Fatal(err)
	}
	release := s.HoldRemovals()
	pruned := make(chan []string, 1)
	go func() {
		removed, _ := s.Prune(nil, map[string]bool{digest(content): true}, time.Now())
		pruned <- removed
	}()
	select {
	case r := <-pruned:
		t.Fatalf("Prune removed %v while removals were held", r)
	case <-time.After(200 * time.Millisecond): // it waits: the hold is the point
	}
	release()
	select {
	case r := <-pruned:
		if len(r) != 1 {
			t.Errorf("Prune after the hold removed %v, want the old artifact", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Prune still waits after the hold was released")
	}
}
