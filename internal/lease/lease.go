// Package lease gives an app's instances named leases, so that a job runs
// in one instance at a time, even while two releases overlap during a
// swap. Each instance gets SLIPWAY_LEASE_URL, a loopback URL of the
// daemon's lease endpoint with a secret that names the instance:
//
//	POST   $SLIPWAY_LEASE_URL/NAME?ttl=15s   take lease NAME for the app, or renew it
//	GET    $SLIPWAY_LEASE_URL/NAME           who holds it
//	DELETE $SLIPWAY_LEASE_URL/NAME           give it up
//
// The leases are etcd leases underneath (see the store), so they end on
// their own when nobody renews them, on one node or on many; an instance's
// leases end at once when it exits or gets its stop signal (the deploy
// package says when). The HTTP side is the api package's; this one holds
// the instances' secrets and the rules.
package lease

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/atomicfile"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// Sentinel errors; the api package maps them to statuses.
var (
	// ErrUnknownSecret means the URL's secret names no running instance:
	// it was mistyped, or its instance has stopped.
	ErrUnknownSecret = errors.New("unknown lease secret: use the SLIPWAY_LEASE_URL of a running instance as it is")
	// ErrStopping means the instance got its stop signal: its leases
	// ended then, and it may take none any more.
	ErrStopping = errors.New("the instance is stopping: its leases ended with its stop signal (or with its app, which was deleted), and it can take none")
	// ErrBadTTL is a TTL that is not a whole number of seconds in bounds.
	ErrBadTTL = errors.New("invalid lease TTL")
	// ErrRunnerName means the name is the app's single runner lease,
	// which only the platform takes.
	ErrRunnerName = errors.New("the lease is the app's single runner lease")
)

// DefaultTTL is a lease's TTL when the taker names none.
const DefaultTTL = 15 * time.Second

// KeyBytes is the length of the key that signs the secrets.
const KeyBytes = 32

// Options configures a Service.
type Options struct {
	Store *store.Store
	// URL is the lease endpoint's base, like http://127.0.0.1:7071; an
	// instance's SLIPWAY_LEASE_URL is URL/v1/leases/SECRET.
	URL string
	// Key signs the instances' secrets (see LoadKey).
	Key    []byte
	Logger *slog.Logger
}

// Service holds the instances' secrets and takes leases for them.
type Service struct {
	opts   Options
	logger *slog.Logger

	mu sync.Mutex // guards bySecret, byID and runners
	// bySecret finds an instance by the SHA-256 of its secret, so that
	// no lookup compares secrets themselves byte by byte.
	bySecret map[[sha256.Size]byte]*holder
	byID     map[string]*holder
	// runners is each app's single runner lease name, where it has one.
	runners map[string]string
}

// holder is a running instance that may hold leases.
type holder struct {
	app, id string
	release int
	sum     [sha256.Size]byte

	// mu makes the instance's calls one at a time, so that none can
	// take a lease back after its stop signal ended them; it guards
	// stopping.
	mu       sync.Mutex
	stopping bool
}

// New returns a service.
func New(opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Service{opts: opts, logger: opts.Logger, bySecret: make(map[[sha256.Size]byte]*holder),
		byID: make(map[string]*holder), runners: make(map[string]string)}
}

// LoadKey reads the key that signs the instances' secrets from path (the
// data directory's lease.key, mode 0600), making it on the first start.
// Secrets are derived from it, so an instance that outlives its daemon
// keeps a URL that the next daemon honours (on the same port, see
// secret), and no secret is ever stored.
func LoadKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, KeyBytes)
		rand.Read(key) // never fails (crypto/rand)
		if err := atomicfile.WriteFile(path, key, 0o600); err != nil {
			return nil, fmt.Errorf("writing the lease key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the lease key: %w", err)
	}
	if len(key) != KeyBytes {
		return nil, fmt.Errorf("the lease key %s is %d bytes long, not %d: it is damaged; remove it, and restart the apps afterwards (slipway restart), whose instances' SLIPWAY_LEASE_URL it signed",
			path, len(key), KeyBytes)
	}
	return key, nil
}

// secret is instance id of app's secret: the key's HMAC of both and of
// the endpoint's URL, in base64url (43 characters). With the URL in it,
// an endpoint that had to move (its port was taken while the daemon was
// down) honours none of the secrets sent to the old port, which whoever
// took it saw; the instances that had them cannot reach the new port
// with their URL anyway.
func (s *Service) secret(app, id string) string {
	mac := hmac.New(sha256.New, s.opts.Key)
	mac.Write([]byte("slipway lease\x00" + s.opts.URL + "\x00" + app + "\x00" + id))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Register lets instance id of app's release take leases, and returns its
// SLIPWAY_LEASE_URL. An instance adopted after a restart gets the same
// URL it had.
func (s *Service) Register(app, id string, release int) string {
	secret := s.secret(app, id)
	h := &holder{app: app, id: id, release: release, sum: sha256.Sum256([]byte(secret))}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.byID[id]; old != nil {
		delete(s.bySecret, old.sum)
	}
	s.bySecret[h.sum], s.byID[id] = h, h
	return s.opts.URL + "/v1/leases/" + secret
}

// Stopping ends at once every lease instance id of app holds, and keeps it
// from taking any more: it got its stop signal, or it exited. An instance
// keeps its leases while it drains; this comes after.
func (s *Service) Stopping(ctx context.Context, app, id string) {
	s.mu.Lock()
	h := s.byID[id]
	s.mu.Unlock()
	if h != nil {
		h.mu.Lock()
		defer h.mu.Unlock() // until its leases are gone: no call of its own slips in between
		h.stopping = true
	}
	n, err := s.opts.Store.RevokeLeases(ctx, app, id)
	if err != nil {
		// Their TTLs end them anyway.
		s.logger.Error("ending the leases of a stopping instance", "app", app, "instance", id, "err", err)
		return
	}
	if n > 0 {
		s.logger.Debug("ended the leases of a stopping instance", "app", app, "instance", id, "leases", n)
	}
}

// Forget drops instance id's secret: it has stopped.
func (s *Service) Forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.byID[id]; h != nil {
		delete(s.bySecret, h.sum)
		delete(s.byID, id)
	}
}

// SetRunner records app's single runner lease name, "" for none: no
// instance may take that name through the endpoint.
func (s *Service) SetRunner(app, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		delete(s.runners, app)
		return
	}
	s.runners[app] = name
}

// Sweep ends the leases of instances that keep does not know: those of an
// earlier daemon that no longer run. Call it at start, once the running
// instances are adopted.
func (s *Service) Sweep(ctx context.Context, keep func(app, instance string) bool) error {
	return s.opts.Store.SweepLeases(ctx, keep)
}

// Caller is the instance a secret names.
type Caller struct {
	App, Instance string
	Release       int
}

// call runs fn as the instance secret names, one call of it at a time.
func (s *Service) call(secret string, fn func(h *holder) error) (Caller, error) {
	s.mu.Lock()
	h := s.bySecret[sha256.Sum256([]byte(secret))]
	s.mu.Unlock()
	if h == nil {
		return Caller{}, ErrUnknownSecret
	}
	c := Caller{App: h.app, Instance: h.id, Release: h.release}
	h.mu.Lock()
	defer h.mu.Unlock()
	return c, fn(h)
}

// Who returns the instance secret names; ErrUnknownSecret if none.
func (s *Service) Who(secret string) (Caller, error) {
	return s.call(secret, func(*holder) error { return nil })
}

// Take takes lease name of the caller's app for ttl, or renews it if the
// caller holds it. A *store.LeaseHeldError names another holder.
func (s *Service) Take(ctx context.Context, secret, name string, ttl time.Duration) (store.Lease, error) {
	var l store.Lease
	_, err := s.call(secret, func(h *holder) error {
		if err := settings.ValidateLeaseName(name); err != nil {
			return err
		}
		if err := checkTTL(ttl); err != nil {
			return err
		}
		if h.stopping {
			return ErrStopping
		}
		if s.runnerName(h.app) == name {
			return fmt.Errorf("%w: the platform holds %s for one instance of the live release, which finds the file $SLIPWAY_LEASE_DIR/%s; take a lease of another name", ErrRunnerName, name, name)
		}
		var err error
		l, err = s.opts.Store.TakeLease(ctx, store.Lease{App: h.app, Name: name, Holder: h.id, Release: h.release, TTL: int64(ttl / time.Second)})
		return err
	})
	return l, err
}

// Release gives up lease name, which the caller holds. A
// *store.NotFoundError says nobody holds it; a *store.LeaseHeldError,
// that another instance does.
func (s *Service) Release(ctx context.Context, secret, name string) error {
	_, err := s.call(secret, func(h *holder) error {
		if err := settings.ValidateLeaseName(name); err != nil {
			return err
		}
		return s.opts.Store.ReleaseLease(ctx, h.app, name, h.id)
	})
	return err
}

// Get shows lease name of the caller's app, whoever holds it; a
// *store.NotFoundError when nobody does.
func (s *Service) Get(ctx context.Context, secret, name string) (store.Lease, error) {
	var l store.Lease
	_, err := s.call(secret, func(h *holder) error {
		if err := settings.ValidateLeaseName(name); err != nil {
			return err
		}
		var err error
		l, err = s.opts.Store.GetLease(ctx, h.app, name)
		return err
	})
	return l, err
}

// List returns the leases app's instances hold, by name.
func (s *Service) List(ctx context.Context, app string) ([]store.Lease, error) {
	return s.opts.Store.Leases(ctx, app)
}

func (s *Service) runnerName(app string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runners[app]
}

// ParseTTL reads the ttl parameter: a duration like 15s or 2m, or a number
// of seconds; "" is DefaultTTL. It must be whole seconds, from
// store.MinLeaseTTL to store.MaxLeaseTTL.
func ParseTTL(v string) (time.Duration, error) {
	if v == "" {
		return DefaultTTL, nil
	}
	d, err := time.ParseDuration(v)
	if n, nerr := strconv.Atoi(v); nerr == nil {
		// Bounded before it is multiplied, which could wrap around.
		d, err = time.Duration(min(max(n, -1), int(store.MaxLeaseTTL/time.Second)+1))*time.Second, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w %q: want a duration like ttl=15s or ttl=2m, from %s to %s", ErrBadTTL, shorten(v), store.MinLeaseTTL, store.MaxLeaseTTL)
	}
	if checkTTL(d) != nil {
		return 0, fmt.Errorf("%w %q: want whole seconds from %s to %s, like ttl=15s", ErrBadTTL, shorten(v), store.MinLeaseTTL, store.MaxLeaseTTL)
	}
	return d, nil
}

func checkTTL(d time.Duration) error {
	if d < store.MinLeaseTTL || d > store.MaxLeaseTTL || d%time.Second != 0 {
		return fmt.Errorf("%w %s: want whole seconds from %s to %s", ErrBadTTL, d, store.MinLeaseTTL, store.MaxLeaseTTL)
	}
	return nil
}

func shorten(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// EndpointURL is the base URL of an endpoint listening on addr
// (host:port), as instances reach it.
func EndpointURL(addr string) string {
	return (&url.URL{Scheme: "http", Host: addr}).String()
}

// SecretOf returns the secret in an instance's SLIPWAY_LEASE_URL, for
// tests and tools; "" if u is not one.
func SecretOf(u string) string {
	_, secret, ok := strings.Cut(u, "/v1/leases/")
	if !ok || strings.Contains(secret, "/") {
		return ""
	}
	return secret
}
