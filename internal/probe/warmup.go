// Package probe decides when an instance is ready: warmup checks before it
// takes traffic.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/slipway-dev/slipway/internal/settings"
)

// Defaults for Warmup.
const (
	DefaultInterval       = 250 * time.Millisecond
	DefaultReportInterval = 15 * time.Second
	// attemptTimeout bounds one warmup request; a slow first answer (a cold
	// JIT) still counts as long as it arrives within this.
	attemptTimeout = 30 * time.Second
)

// Sentinel errors of Warmup.
var (
	ErrTimeout = errors.New("no response with an accepted status within the start time limit")
	ErrExited  = errors.New("instance exited while warming up")
)

// WarmupOptions says what to ask and how long to wait.
type WarmupOptions struct {
	// URL is the instance's warmup URL on loopback.
	URL string
	// Host is sent as the Host header, so the app sees its public name.
	Host   string
	Accept settings.StatusSet
	// Limit is the start time limit.
	Limit time.Duration
	// Interval between attempts; 0 means DefaultInterval.
	Interval time.Duration
	// ReportEvery is how often Report is called while waiting; 0 means
	// DefaultReportInterval.
	ReportEvery time.Duration
	// Report is called with the time waited so far; may be nil.
	Report func(elapsed time.Duration)
	// Exited is closed when the instance's process ends.
	Exited <-chan struct{}
}

var client = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true},
	// A redirect is an answer: the app is up.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Warmup requests opts.URL until it answers with an accepted status, the
// instance exits, the limit passes, or ctx ends.
func Warmup(ctx context.Context, opts WarmupOptions) error {
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.ReportEvery == 0 {
		opts.ReportEvery = DefaultReportInterval
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, opts.Limit)
	defer cancel()
	report := time.NewTicker(opts.ReportEvery)
	defer report.Stop()
	retry := time.NewTimer(0)
	defer retry.Stop()
	last := "no answer yet"
	for {
		select {
		case <-opts.Exited:
			return ErrExited
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && context.Cause(ctx) == context.DeadlineExceeded {
				return fmt.Errorf("%w of %s (last attempt: %s)", ErrTimeout, opts.Limit, last)
			}
			return context.Cause(ctx)
		case <-report.C:
			if opts.Report != nil {
				opts.Report(time.Since(start))
			}
		case <-retry.C:
			code, err := attempt(ctx, opts)
			switch {
			case err == nil && opts.Accept.Contains(code):
				return nil
			case ctx.Err() != nil:
				// Cut off by the limit: keep the last real answer for the
				// message; the loop ends at the top.
			case err == nil:
				last = fmt.Sprintf("status %d", code)
			default:
				last = err.Error()
			}
			retry.Reset(opts.Interval)
		}
	}
}

func attempt(ctx context.Context, opts WarmupOptions) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, opts.URL, nil)
	if err != nil {
		return 0, err
	}
	req.Host = opts.Host
	req.Header.Set("User-Agent", "Slipway-Warmup")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}
