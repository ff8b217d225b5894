package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/lease"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// newLeaseHarness is newHarness with leases: a lease service on the
// harness's store, with a key of its own. The fake app does not call the
// lease endpoint; the tests call the service with the secret of the
// SLIPWAY_LEASE_URL an instance was given, as the endpoint would.
func newLeaseHarness(t *testing.T, edit func(*settings.Settings)) (*harness, *lease.Service) {
	t.Helper()
	var svc *lease.Service
	h := newHarnessWith(t, edit, func(o *deploy.Options) {
		svc = newLeases(t, o.Store, o.DataDir)
		o.Leases = svc
	})
	return h, svc
}

// newLeases is a lease service with the key of the data directory dir,
// as the daemon makes it at each start.
func newLeases(t *testing.T, st *store.Store, dir string) *lease.Service {
	t.Helper()
	key, err := lease.LoadKey(filepath.Join(dir, "lease.key"))
	if err != nil {
		t.Fatal(err)
	}
	return lease.New(lease.Options{Store: st, URL: "http://127.0.0.1:1", Key: key})
}

// env asks instance i for its environment variable k.
func (h *harness) env(i deploy.InstanceStatus, k string) string {
	h.t.Helper()
	resp, err := h.client.Get(fmt.Sprintf("http://127.0.0.1:%d/env?k=%s", i.Port, k))
	if err != nil {
		h.t.Fatalf("asking instance %s for $%s: %v", i.ID, k, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (h *harness) secret(i deploy.InstanceStatus) string {
	h.t.Helper()
	s := lease.SecretOf(h.env(i, "SLIPWAY_LEASE_URL"))
	if s == "" {
		h.t.Fatalf("instance %s has no SLIPWAY_LEASE_URL", i.ID)
	}
	return s
}

func (h *harness) instanceOf(release int) deploy.InstanceStatus {
	h.t.Helper()
	for _, i := range h.instances() {
		if i.Release == release {
			return i
		}
	}
	h.t.Fatalf("no instance of release %d: %+v", release, h.instances())
	return deploy.InstanceStatus{}
}

// TestLeasesEndAtTheStopSignal: an old instance keeps its lease while it
// drains, so the new release's instance cannot take it yet; the lease
// ends when the old one is stopped, long before its TTL, and its secret
// no longer works.
func TestLeasesEndAtTheStopSignal(t *testing.T) {
	ctx := context.Background()
	h, svc := newLeaseHarness(t, func(s *settings.Settings) { s.DrainTimeout = 20 })
	h.deployLive(appConf{Version: "1"})
	old := h.instances()[0]
	oldSecret := h.secret(old)
	taken, err := svc.Take(ctx, oldSecret, "nightly", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	slow := make(chan error, 1)
	go func() { _, _, err := h.get(context.Background(), "/slow?d=2s&only=1"); slow <- err }()
	b := h.router.Backends(testApp)[0]
	waitFor(t, 5*time.Second, "the slow request to be in flight", func() (bool, string) {
		return b.InFlight() == 1, fmt.Sprintf("%d in flight", b.InFlight())
	})
	d := h.deploy(appConf{Version: "2"})
	h.waitStep(d.ID, store.StepDraining)
	newSecret := h.secret(h.instanceOf(2))
	if _, err := svc.Take(ctx, newSecret, "nightly", 10*time.Second); !errors.Is(err, store.ErrLeaseHeld) {
		t.Errorf("the new release's take while the old instance drains: %v, want ErrLeaseHeld", err)
	}
	if got, err := h.store.GetLease(ctx, testApp, "nightly"); err != nil || got.Holder != old.ID {
		t.Errorf("while draining: %+v, %v; want the old instance to hold it", got, err)
	}
	h.wantState(d.ID, store.StateSucceeded)
	if err := <-slow; err != nil {
		t.Errorf("the slow request: %v", err)
	}
	got, err := svc.Take(ctx, newSecret, "nightly", 10*time.Second)
	if err != nil || got.Token <= taken.Token {
		t.Errorf("the new release's take once the old instance stopped: %+v, %v; want it, token above %d", got, err, taken.Token)
	}
	if _, err := svc.Take(ctx, oldSecret, "other", 10*time.Second); !errors.Is(err, lease.ErrUnknownSecret) {
		t.Errorf("the stopped instance's secret: %v, want ErrUnknownSecret", err)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "apps", testApp, "leases", old.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stopped instance's lease directory: %v, want it gone", err)
	}
}

// TestLeaseEndsWhenItsInstanceDies: an instance killed with SIGKILL loses
// its leases at once, not when their TTL runs out.
func TestLeaseEndsWhenItsInstanceDies(t *testing.T) {
	ctx := context.Background()
	h, svc := newLeaseHarness(t, func(s *settings.Settings) { s.Instances = 2 })
	h.deployLive(appConf{Version: "1"})
	insts := h.instances()
	if _, err := svc.Take(ctx, h.secret(insts[0]), "poller", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	other := h.secret(insts[1])
	if err := syscall.Kill(insts[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, 5*time.Second, "the other instance to take the lease", func() (bool, string) {
		_, err := svc.Take(ctx, other, "poller", 10*time.Second)
		return err == nil, fmt.Sprint(err)
	})
	t.Logf("taken over %s after the holder was killed", time.Since(start).Round(time.Millisecond))
}

// runnerFiles returns the instances whose lease directory holds the
// single runner file name, with its content.
func (h *harness) runnerFiles(name string) map[string]string {
	files, _ := filepath.Glob(filepath.Join(h.dir, "apps", testApp, "leases", "*", name))
	out := make(map[string]string)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			out[filepath.Base(filepath.Dir(f))] = strings.TrimSpace(string(b))
		}
	}
	return out
}

// TestSingleRunner: the platform gives the single runner lease to one
// instance, as a file in its lease directory holding the fencing token.
// The file is never in two places at once; it passes to another instance
// only after its holder has exited, when killed, and in a deployment, to
// the new release once the old holder is stopped; the token grows.
func TestSingleRunner(t *testing.T) {
	h, svc := newLeaseHarness(t, func(s *settings.Settings) { s.Instances = 2; s.SingleRunner = "batch" })
	h.deployLive(appConf{Version: "1"})

	var mu sync.Mutex
	var seen []string // holder changes, as "id=token"
	most := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // watch the files as an app would, often
		defer close(done)
		last := ""
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			files := h.runnerFiles("batch")
			mu.Lock()
			most = max(most, len(files))
			for id, token := range files {
				if now := id + "=" + token; now != last {
					seen, last = append(seen, now), now
				}
			}
			mu.Unlock()
		}
	}()
	holder := func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return ""
		}
		id, _, _ := strings.Cut(seen[len(seen)-1], "=")
		return id
	}
	waitFor(t, 10*time.Second, "an instance to hold the single runner lease", func() (bool, string) {
		return len(h.runnerFiles("batch")) == 1, fmt.Sprint(h.runnerFiles("batch"))
	})
	first := holder()
	var firstInst deploy.InstanceStatus
	for _, i := range h.instances() {
		if i.ID == first {
			firstInst = i
		}
	}
	if got, want := h.env(firstInst, "SLIPWAY_LEASE_DIR"), filepath.Join(h.dir, "apps", testApp, "leases", first); got != want {
		t.Errorf("SLIPWAY_LEASE_DIR %q, want %q", got, want)
	}
	if _, err := svc.Take(context.Background(), h.secret(firstInst), "batch", 10*time.Second); !errors.Is(err, lease.ErrRunnerName) {
		t.Errorf("taking the single runner's name through the endpoint: %v, want ErrRunnerName", err)
	}

	syscall.Kill(firstInst.PID, syscall.SIGKILL)
	waitFor(t, 10*time.Second, "another instance to hold it", func() (bool, string) {
		return holder() != first && holder() != "", fmt.Sprint(h.runnerFiles("batch"))
	})
	h.settle()
	h.deployLive(appConf{Version: "2"})
	waitFor(t, 10*time.Second, "an instance of v2 to hold it", func() (bool, string) {
		return strings.Contains(holder(), "-v2-"), fmt.Sprint(h.runnerFiles("batch"))
	})
	close(stop)
	<-done

	if most > 1 {
		t.Errorf("%d instances had the single runner file at once", most)
	}
	var tokens []int64
	for _, s := range seen {
		_, tok, _ := strings.Cut(s, "=")
		n, _ := strconv.ParseInt(tok, 10, 64)
		tokens = append(tokens, n)
	}
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Errorf("holders %v: the token did not grow", seen)
		}
	}
	// Each new holder came after the last one had exited.
	var holds, releases int
	for _, line := range strings.Split(h.appLog(), "\n") {
		switch {
		case strings.Contains(line, "no longer holds the single runner lease batch"):
			releases++
		case strings.Contains(line, "holds the single runner lease batch"):
			if holds++; holds > releases+1 {
				t.Errorf("a new holder before the last one let go: %s", line)
			}
		}
	}
	if holds < 3 {
		t.Errorf("%d holders in the log, want at least 3 (first, after the kill, v2)", holds)
	}
}

// TestLeasesOutliveTheDaemon: instances left running by a daemon that
// stopped keep their leases; the next daemon honours their
// SLIPWAY_LEASE_URL, with the same key, and keeps the single runner where
// it was.
func TestLeasesOutliveTheDaemon(t *testing.T) {
	ctx := context.Background()
	h, svc := newLeaseHarness(t, func(s *settings.Settings) { s.SingleRunner = "batch" })
	h.deployLive(appConf{Version: "1"})
	inst := h.instances()[0]
	secret := h.secret(inst)
	taken, err := svc.Take(ctx, secret, "nightly", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the single runner file", func() (bool, string) {
		return h.runnerFiles("batch")[inst.ID] != "", fmt.Sprint(h.runnerFiles("batch"))
	})
	runnerToken := h.runnerFiles("batch")[inst.ID]

	h.m.Close(true) // --keep-instances
	opts := h.opts
	svc2 := newLeases(t, h.store, h.dir)
	opts.Leases = svc2
	h.m = deploy.New(opts)
	if err := h.m.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.instances(); len(got) != 1 || got[0].ID != inst.ID || !got[0].Adopted {
		t.Fatalf("after the restart: %+v, want %s adopted", got, inst.ID)
	}
	again, err := svc2.Take(ctx, secret, "nightly", time.Minute)
	if err != nil || again.Token != taken.Token {
		t.Errorf("renewing with the URL of before: %+v, %v; want token %d", again, err, taken.Token)
	}
	holds(t, 3*time.Second, "the single runner to stay with its holder", func() (bool, string) {
		f := h.runnerFiles("batch")
		return len(f) == 1 && f[inst.ID] == runnerToken, fmt.Sprint(f)
	})
	l, err := h.store.GetLease(ctx, testApp, "batch")
	if err != nil || l.Holder != inst.ID || !l.Runner {
		t.Errorf("the single runner's lease after the restart: %+v, %v", l, err)
	}
}

// TestSingleRunnerLeftover: a single runner lease left in the store for an
// instance that is gone does not keep the job from running.
func TestSingleRunnerLeftover(t *testing.T) {
	h, _ := newLeaseHarness(t, func(s *settings.Settings) { s.SingleRunner = "batch" })
	if _, err := h.store.HoldRunner(context.Background(), store.Lease{App: testApp, Name: "batch", Holder: "shop-v0-gone", Release: 0}); err != nil {
		t.Fatal(err)
	}
	h.deployLive(appConf{Version: "1"})
	inst := h.instances()[0]
	waitFor(t, 10*time.Second, "the instance to hold the single runner lease", func() (bool, string) {
		return h.runnerFiles("batch")[inst.ID] != "", fmt.Sprint(h.runnerFiles("batch"))
	})
	if l, err := h.store.GetLease(context.Background(), testApp, "batch"); err != nil || l.Holder != inst.ID {
		t.Errorf("the lease: %+v, %v; want %s to hold it", l, err, inst.ID)
	}
}

// TestDeletedAppTakesNoLeases: the leases of a deleted app go with it,
// and its instances, which drain before they stop, take none any more:
// an app created again under the same name finds its lease names free,
// not held by an instance of the app that was deleted.
func TestDeletedAppTakesNoLeases(t *testing.T) {
	ctx := context.Background()
	h, svc := newLeaseHarness(t, func(s *settings.Settings) { s.DrainTimeout = 20 })
	h.deployLive(appConf{Version: "1"})
	old := h.instances()[0]
	oldSecret := h.secret(old)
	if _, err := svc.Take(ctx, oldSecret, "nightly", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	slow := make(chan error, 1)
	go func() { _, _, err := h.get(context.Background(), "/slow?d=2s&only=1"); slow <- err }()
	b := h.router.Backends(testApp)[0]
	waitFor(t, 5*time.Second, "the slow request to be in flight", func() (bool, string) {
		return b.InFlight() == 1, fmt.Sprintf("%d in flight", b.InFlight())
	})
	deleted := make(chan error, 1)
	go func() { deleted <- h.m.DeleteApp(context.Background(), testApp) }()
	waitFor(t, 5*time.Second, "the app to be gone from the store", func() (bool, string) {
		_, err := h.store.App(ctx, testApp)
		return errors.Is(err, store.ErrNotFound), fmt.Sprint(err)
	})
	// The old instance drains its slow request, and asks again.
	if l, err := svc.Take(ctx, oldSecret, "nightly", 10*time.Minute); !errors.Is(err, lease.ErrStopping) {
		t.Errorf("the deleted app's draining instance takes its lease again: %+v, %v; want ErrStopping", l, err)
	}
	if ls, err := h.store.Leases(ctx, testApp); err != nil || len(ls) != 0 {
		t.Errorf("the deleted app's leases: %+v, %v; want none", ls, err)
	}
	// Its name is not free until its instances have stopped and its
	// directory is gone: one created meanwhile would lose its own
	// directory (its storage, its releases) to the end of the deletion.
	if _, err := h.m.CreateApp(ctx, testApp, testSettings(h.ctl)); !errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), "being deleted") {
		t.Errorf("creating the app again while it is being deleted: %v; want ErrExists saying it is being deleted", err)
	}
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	if err := <-slow; err != nil {
		t.Errorf("the slow request: %v", err)
	}
	if _, err := h.m.CreateApp(ctx, testApp, testSettings(h.ctl)); err != nil {
		t.Errorf("creating the app again once it is deleted: %v", err)
	}
}
