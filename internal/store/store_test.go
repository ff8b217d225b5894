package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAppsReleasesDeployments(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.CreateApp(ctx, App{Name: "promo"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApp(ctx, App{Name: "promo"}); !errors.Is(err, ErrExists) {
		t.Errorf("second CreateApp: got %v, want ErrExists", err)
	}
	if _, err := s.App(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("App(nope): got %v, want ErrNotFound", err)
	}
	for want := 1; want <= 12; want++ { // past 9 and 10: keys sort as numbers
		r := Release{App: "promo"}
		if err := s.CreateRelease(ctx, &r); err != nil {
			t.Fatal(err)
		}
		if r.Number != want {
			t.Errorf("release number %d, want %d", r.Number, want)
		}
	}
	d := Deployment{App: "promo", State: StateRunning}
	if err := s.CreateDeployment(ctx, &d); err != nil || d.ID != 1 {
		t.Fatalf("CreateDeployment: id %d, err %v", d.ID, err)
	}
	s.Close()

	s = openStore(t, dir) // state survives a restart
	defer s.Close()
	rels, err := s.Releases(ctx, "promo")
	if err != nil || len(rels) != 12 || rels[11].Number != 12 {
		t.Fatalf("after reopening: %d releases, err %v", len(rels), err)
	}
	if err := s.DeleteApp(ctx, "promo"); err != nil {
		t.Fatal(err)
	}
	if rels, _ := s.Releases(ctx, "promo"); len(rels) != 0 {
		t.Errorf("DeleteApp left %d releases", len(rels))
	}
}

func TestLock(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	if err := s.Lock(ctx, "promo", 4); err != nil {
		t.Fatal(err)
	}
	err := s.Lock(ctx, "promo", 5)
	var locked *LockedError
	if !errors.As(err, &locked) || locked.Deployment != 4 || !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: got %v, want a LockedError naming 4", err)
	}
	if err := s.DeleteApp(ctx, "promo"); !errors.Is(err, ErrLocked) {
		t.Errorf("DeleteApp while locked: got %v, want ErrLocked", err)
	}
	s.Unlock(ctx, "promo", 5) // not the holder: no effect
	if h, _ := s.LockHolder(ctx, "promo"); h != 4 {
		t.Errorf("holder %d after a wrong Unlock, want 4", h)
	}
	s.Unlock(ctx, "promo", 4)
	if err := s.Lock(ctx, "promo", 6); err != nil {
		t.Errorf("Lock after Unlock: %v", err)
	}
	s.ClearLocks(ctx)
	if h, _ := s.LockHolder(ctx, "promo"); h != 0 {
		t.Errorf("holder %d after ClearLocks", h)
	}
}

// TestLockIsExclusive races many lockers; exactly one wins.
func TestLockIsExclusive(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	var wg sync.WaitGroup
	wins := make(chan int, 20)
	for i := 1; i <= 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.Lock(context.Background(), "app", i) == nil {
				wins <- i
			}
		}()
	}
	wg.Wait()
	close(wins)
	if n := len(wins); n != 1 {
		t.Errorf("%d lockers won, want 1", n)
	}
}

func TestWatchDeployment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := openStore(t, t.TempDir())
	defer s.Close()
	d := Deployment{App: "a", State: StateRunning}
	d.AddEvent(StepReceived, "received")
	s.CreateDeployment(ctx, &d)
	var seen []int
	done := make(chan error)
	go func() {
		done <- s.WatchDeployment(ctx, "a", d.ID, func(d Deployment) bool {
			seen = append(seen, len(d.Events))
			return !d.Done()
		})
	}()
	for _, step := range []string{StepStarting, StepWarmingUp} {
		d.AddEvent(step, step)
		s.PutDeployment(ctx, d)
	}
	d.State = StateSucceeded
	s.PutDeployment(ctx, d)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if last := seen[len(seen)-1]; last != 3 {
		t.Errorf("watch saw event counts %v, want to end at 3", seen)
	}
}

// TestDamagedStoreFailsAtOnce: a damaged database or a lost write-ahead
// log stops Open at once, with the file named, instead of a panic in
// etcd's own goroutine or a member started afresh.
func TestDamagedStoreFailsAtOnce(t *testing.T) {
	for name, damage := range map[string]func(member string) error{
		"truncated database": func(member string) error { return os.Truncate(filepath.Join(member, "snap", "db"), 5000) },
		"missing WAL":        func(member string) error { return os.RemoveAll(filepath.Join(member, "wal")) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			member := filepath.Join(dir, "etcd", "member")
			if err := damage(member); err != nil {
				t.Fatal(err)
			}
			_, err = Open(Options{Dir: dir})
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), member) {
				t.Errorf("Open: %v; want ErrDamaged naming a file under %s", err, member)
			}
		})
	}
}

// TestListensOnNoPort: the embedded etcd takes no TCP port, so no local
// user can reach it; its files are in a 0700 folder.
func TestListensOnNoPort(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ports := listeningPorts(t); len(ports) != 0 {
		t.Errorf("the store listens on TCP ports %v, want none", ports)
	}
	fi, err := os.Stat(filepath.Join(dir, "etcd"))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("etcd's folder: %v, %v; want mode 0700", fi.Mode(), err)
	}
}

// listeningPorts lists the TCP ports this process listens on, from /proc.
func listeningPorts(t *testing.T) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		link, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var ports []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 9 && f[3] == "0A" && inodes[f[9]] { // 0A: LISTEN
				ports = append(ports, f[1])
			}
		}
	}
	return ports
}

// TestDeploymentRecordBounded: however long the messages and however many,
// a deployment's record stays within what one store write takes, and its
// steps are kept.
func TestDeploymentRecordBounded(t *testing.T) {
	d := Deployment{App: "a", ID: 1, State: StateRunning, Reason: strings.Repeat("r", MaxEventBytes)}
	d.AddEvent(StepReceived, "received")
	huge := strings.Repeat("é", 200_000) // multi-byte: cut on a rune boundary
	for i := range 2000 {
		d.AddEvent("", fmt.Sprintf("%d %s", i, huge))
	}
	d.AddEvent(StepSucceeded, "done")
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxRecordBytes {
		t.Errorf("record is %d bytes, over %d", len(b), MaxRecordBytes)
	}
	if d.Events[0].Step != StepReceived || d.Events[len(d.Events)-1].Step != StepSucceeded {
		t.Errorf("steps dropped: first %q, last %q", d.Events[0].Step, d.Events[len(d.Events)-1].Step)
	}
	for _, e := range d.Events {
		if len(e.Message) > MaxEventBytes || !utf8.ValidString(e.Message) {
			t.Fatalf("event of %d bytes (valid UTF-8: %v)", len(e.Message), utf8.ValidString(e.Message))
		}
	}
	if last := d.Events[len(d.Events)-2].Message; !strings.HasPrefix(last, "1999 ") {
		t.Errorf("the newest progress message was dropped: %.20q", last)
	}
}

func TestNotFoundNamesWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	if err := s.CreateApp(ctx, App{Name: "promo"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		read func() error
		want NotFoundError
	}{
		{"app", func() error { _, err := s.App(ctx, "nope"); return err }, NotFoundError{Kind: "app", App: "nope"}},
		{"deployment", func() error { _, err := s.Deployment(ctx, "promo", 7); return err }, NotFoundError{Kind: "deployment", App: "promo", ID: "7"}},
		{"deployment of a missing app", func() error { _, err := s.Deployment(ctx, "nope", 7); return err }, NotFoundError{Kind: "app", App: "nope"}},
		{"release", func() error { _, err := s.Release(ctx, "promo", 3); return err }, NotFoundError{Kind: "release", App: "promo", ID: "3"}},
		{"release of a missing app", func() error { _, err := s.Release(ctx, "nope", 3); return err }, NotFoundError{Kind: "app", App: "nope"}},
		{"watched deployment", func() error { return s.WatchDeployment(ctx, "promo", 7, func(Deployment) bool { return false }) }, NotFoundError{Kind: "deployment", App: "promo", ID: "7"}},
		{"credential", func() error { _, err := s.Credential(ctx, "abc"); return err }, NotFoundError{Kind: "credential", ID: "abc"}},
		{"deleted credential", func() error { return s.DeleteCredential(ctx, "abc") }, NotFoundError{Kind: "credential", ID: "abc"}},
		{"deleted app", func() error { return s.DeleteApp(ctx, "nope") }, NotFoundError{Kind: "app", App: "nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.read()
			var nf *NotFoundError
			if !errors.As(err, &nf) || !errors.Is(err, ErrNotFound) {
				t.Fatalf("got %v, want a *NotFoundError that is ErrNotFound", err)
			}
			if *nf != tc.want {
				t.Errorf("got %+v, want %+v", *nf, tc.want)
			}
		})
	}
	// Reading what may be absent is no error.
	if p, err := s.Policy(ctx, "promo"); err != nil || len(p.App) != 0 {
		t.Errorf("Policy of an app without one: %+v, %v", p, err)
	}
	if id, err := s.LockHolder(ctx, "promo"); err != nil || id != 0 {
		t.Errorf("LockHolder of an unlocked app: %d, %v", id, err)
	}
}

// TestFullStore: a store at its quota refuses writes with ErrFull, and the
// daemon goes on reading; deleting what is not needed and restarting
// reclaims the space and clears etcd's alarm, so writes work again.
func TestFullStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const quota = 4 << 20
	s, err := Open(Options{Dir: dir, QuotaBytes: quota})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 256<<10)
	var n int
	for n = 0; n < 200; n++ {
		err = s.putJSON(ctx, fmt.Sprintf("%sfiller/%d", prefix, n), big)
		if err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("after %d writes of 256 KiB into a 4 MiB store: %v, want ErrFull", n, err)
	}
	if _, err := s.Apps(ctx); err != nil {
		t.Errorf("reading a full store: %v", err)
	}
	if _, err := s.cli.Delete(ctx, prefix+"filler/", clientv3.WithPrefix()); err != nil {
		t.Fatalf("deleting from a full store: %v", err)
	}
	if err := s.putJSON(ctx, prefix+"after", "x"); !errors.Is(err, ErrFull) {
		t.Errorf("a write after deleting, before the restart: %v; want ErrFull still (etcd's alarm)", err)
	}
	s.Close()
	s, err = Open(Options{Dir: dir, QuotaBytes: quota})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.putJSON(ctx, prefix+"after", "x"); err != nil {
		t.Errorf("a write after the restart: %v", err)
	}
}

// TestFullDiskStopsOnlyTheStore: when etcd cannot write its files (a full
// disk, here a small tmpfs filled up), the process goes on: every store
// call fails at once with the cause and what to do, instead of etcd
// exiting the daemon and every app's traffic with it.
func TestFullDiskStopsOnlyTheStore(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as a disk to fill; CI runs as root")
	}
	dir := t.TempDir()
	// 256 MiB: etcd's first WAL file (64 MB), the next one its file
	// pipeline preallocates meanwhile (64 MB) and the database must all fit
	// while the store opens; with 100 MiB the two WALs sometimes left the
	// database no room, and the store stopped inside Open.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := 0; i < 300; i++ { // 300 MiB is more than the disk
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	ctx := context.Background()
	big := strings.Repeat("x", 200<<10)
	for i := 0; i < 500 && err == nil; i++ {
		err = s.putJSON(ctx, fmt.Sprintf("%sfill/%d", prefix, i), big)
	}
	if !errors.Is(err, ErrStopped) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("writing to a full disk: %v; want ErrStopped naming the cause", err)
	}
	start := time.Now()
	if _, err := s.Apps(ctx); !errors.Is(err, ErrStopped) || time.Since(start) > 5*time.Second {
		t.Errorf("reading a stopped store: %v after %s; want ErrStopped at once", err, time.Since(start))
	}
	start = time.Now()
	if _, err := s.cli.Grant(ctx, 10); !errors.Is(err, ErrStopped) || time.Since(start) > 5*time.Second {
		t.Errorf("granting a lease in a stopped store: %v after %s; want ErrStopped at once", err, time.Since(start))
	}
	if _, err := s.cli.KeepAliveOnce(ctx, s.leaseID()); !errors.Is(err, ErrStopped) {
		t.Errorf("renewing a lease in a stopped store: %v; want ErrStopped at once", err)
	}
}

// TestPutAppUnlocked: a change of an app made outside a deployment is
// written only from the record as it is, and never while a deployment
// holds the app's lock (its writes would be lost, or undo the change).
func TestPutAppUnlocked(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	if err := s.CreateApp(ctx, App{Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	a, rev, err := s.AppAt(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	// A deployment takes the lock and makes v1 live meanwhile.
	if err := s.Lock(ctx, "shop", 7); err != nil {
		t.Fatal(err)
	}
	a.Settings.Instances = 3
	if err := s.PutAppUnlocked(ctx, a, rev); !errors.Is(err, ErrChanged) {
		t.Errorf("a write while the lock is held: %v, want ErrChanged", err)
	}
	live, _ := s.App(ctx, "shop")
	live.CurrentRelease = 1
	if err := s.PutApp(ctx, live); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock(ctx, "shop", 7); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAppUnlocked(ctx, a, rev); !errors.Is(err, ErrChanged) {
		t.Errorf("a write from a record read before the deployment's: %v, want ErrChanged", err)
	}
	// Read again, the change keeps what the deployment wrote.
	a, rev, _ = s.AppAt(ctx, "shop")
	a.Settings.Instances = 3
	if err := s.PutAppUnlocked(ctx, a, rev); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.App(ctx, "shop"); got.CurrentRelease != 1 || got.Settings.Instances != 3 {
		t.Errorf("the app: release %d, %d instances; want 1 and 3", got.CurrentRelease, got.Settings.Instances)
	}
}

// TestLeaseKeeperSurvivesPanic: when what hangs on the session lease
// (OnLease) panics, the panic is logged with its stack and the keeper goes
// on: the new lease is kept alive, and the next lapse is handled too.
func TestLeaseKeeperSurvivesPanic(t *testing.T) {
	ctx := context.Background()
	logs := &logBuffer{}
	s, err := Open(Options{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var calls atomic.Int32
	s.OnLease(func() {
		if calls.Add(1) == 1 {
			panic("cannot register the node")
		}
	})
	// lapse ends the session lease, as a cluster that forgot it would,
	// and waits until the keeper has granted a new one and called OnLease.
	lapse := func(wantCalls int32) {
		t.Helper()
		old := s.leaseID()
		if _, err := s.rawCli.Revoke(ctx, old); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for calls.Load() < wantCalls || s.leaseID() == old {
			if time.Now().After(deadline) {
				t.Fatalf("the keeper did not replace lease %x: OnLease called %d times, want %d", old, calls.Load(), wantCalls)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	lapse(1)
	lapse(2)
	ttl, err := s.rawCli.TimeToLive(ctx, s.leaseID())
	if err != nil || ttl.TTL <= 0 {
		t.Errorf("the new session lease is not alive: %+v, %v", ttl, err)
	}
	for _, want := range []string{"recovered a panic", "session lease keeper", "cannot register the node", "TestLeaseKeeperSurvivesPanic", "restarting after a panic"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the store's log lacks %q:\n%s", want, logs)
		}
	}
}

// logBuffer is a slog destination that the store's goroutines write to
// while the test reads it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
