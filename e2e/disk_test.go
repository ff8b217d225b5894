package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/slipway-dev/slipway/internal/api"
)

// fullDisk is the data directory's disk in TestFullDisk: a small tmpfs
// that a filler file fills, or, where mounting is refused, the test's own
// disk, "filled" by a reserve larger than its free space.
type fullDisk struct {
	t       *testing.T
	dir     string
	mounted bool
	reserve int64 // --min-free-space
}

func newFullDisk(t *testing.T, size, reserve int64) *fullDisk {
	dir := passableTempDir(t) // apps' users must pass through it (isolation)
	fd := &fullDisk{t: t, dir: dir, reserve: reserve}
	err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0711", size))
	if err != nil {
		t.Logf("cannot mount a tmpfs (%v): a reserve larger than the free space stands in for a full disk", err)
		return fd
	}
	fd.mounted = true
	// Registered before the daemon's cleanup, so run after it.
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting the tmpfs: %v", err)
		}
	})
	return fd
}

func (fd *fullDisk) free() int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(fd.dir, &st); err != nil {
		fd.t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// fill leaves left bytes free on the tmpfs, under the reserve but enough
// for the store's own writes; without a tmpfs it restarts d with a reserve
// larger than the free space (the instances are stopped and started again,
// their release directory kept).
func (fd *fullDisk) fill(d *daemon, left int64) {
	if !fd.mounted {
		fd.restart(d, fd.free()+1<<30)
		return
	}
	f, err := os.Create(filepath.Join(fd.dir, "filler"))
	if err != nil {
		fd.t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, fd.free()-left); err != nil {
		fd.t.Fatalf("filling the disk: %v", err)
	}
}

// empty undoes fill.
func (fd *fullDisk) empty(d *daemon) {
	if !fd.mounted {
		fd.restart(d, fd.reserve)
		return
	}
	if err := os.Remove(filepath.Join(fd.dir, "filler")); err != nil {
		fd.t.Fatal(err)
	}
}

func (fd *fullDisk) restart(d *daemon, reserve int64) {
	d.stop()
	d.args = append(d.args, "--min-free-space", strconv.FormatInt(reserve, 10))
	d.start()
	d.waitForState("disk", "succeeded") // the daemon's start, as a deployment
}

// TestFullDisk: with the data directory on a disk that fills up, a deploy
// of a new artifact is refused with 507 and a message that says what is
// full and what to do, before the upload is read; the daemon keeps
// running and the live app keeps serving; once space is freed, the same
// deploy goes through. The disk is a 256 MiB tmpfs with 48 MiB kept free;
// where mounting is refused, a reserve larger than the free space
// (see fullDisk).
func TestFullDisk(t *testing.T) {
	fd := newFullDisk(t, 256<<20, 48<<20)
	d := launchIn(t, filepath.Join(fd.dir, "data"), nil, "--min-free-space", strconv.FormatInt(fd.reserve, 10))
	d.mustCLI("apps", "create", "disk", "--command", "exec ./wsapp")
	v1 := wsappZip(t)
	d.mustCLI("deploy", "-a", "disk", v1)
	d.body("disk", "/")
	t.Logf("after the first deploy: %d MiB free", fd.free()>>20)

	// A new artifact: the same app with one more file.
	body := withFile(t, v1, "v2.txt")
	v2 := filepath.Join(t.TempDir(), "wsapp.zip")
	if err := os.WriteFile(v2, body, 0o600); err != nil {
		t.Fatal(err)
	}

	fd.fill(d, 24<<20)
	deps := len(d.deployments("disk"))
	deploy := func(chunked bool) (int, string) {
		var r io.Reader = bytes.NewReader(body)
		if chunked {
			r = io.MultiReader(r) // no length: sent chunked
		}
		resp, err := d.api(http.MethodPost, "/api/v1/apps/disk/deployments?filename=wsapp.zip", r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e api.Error
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error
	}
	for _, chunked := range []bool{false, true} {
		code, msg := deploy(chunked)
		if code != http.StatusInsufficientStorage {
			t.Errorf("deploy on a full disk (chunked %v): %d %q, want 507", chunked, code, msg)
		}
		for _, want := range []string{"not enough free disk space for the upload", "free", "--min-free-space", "larger disk"} {
			if !strings.Contains(msg, want) {
				t.Errorf("the refusal %q does not say %q", msg, want)
			}
		}
	}
	out, err := d.cli("deploy", "-a", "disk", v2)
	if err == nil || !strings.Contains(out, "not enough free disk space") {
		t.Errorf("slipway deploy on a full disk: %v\n%s", err, out)
	}
	t.Logf("the refusal, as the CLI shows it:\n%s", out)
	if code, _, err := d.get(t.Context(), d.httpClient(), "disk", "/"); err != nil || code != 200 {
		t.Errorf("the live app answers %d, %v on a full disk; want 200", code, err)
	}
	select {
	case <-d.exited:
		t.Fatalf("the daemon exited on a full disk")
	default:
	}
	if got := len(d.deployments("disk")); got != deps {
		t.Errorf("the refused deploys made %d deployments", got-deps)
	}
	if entries, _ := os.ReadDir(filepath.Join(d.dataDir, "artifacts")); len(entries) != 1 {
		t.Errorf("the artifacts folder holds %d entries after the refusals, want v1's only", len(entries))
	}

	fd.empty(d)
	if code, msg := deploy(false); code != http.StatusAccepted {
		t.Fatalf("deploy once space is freed: %d %q", code, msg)
	}
	d.waitForState("disk", "succeeded")
	if a := d.app("disk"); a.CurrentRelease != 2 {
		t.Errorf("live release v%d after the deploy, want v2", a.CurrentRelease)
	}
	d.body("disk", "/")
}

// withFile copies the zip at path with one more entry, name.
func withFile(t *testing.T, path, name string) []byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if err := zw.Copy(f); err != nil {
			t.Fatal(err)
		}
	}
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, name)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
