package probe

import (
	"context"
	"fmt"
	"time"

	"github.com/slipway-dev/slipway/internal/settings"
)

// Check makes one health request to url and says why it failed, or nil if
// it answered with an accepted status within timeout.
func Check(ctx context.Context, url, host string, accept settings.StatusSet, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	code, err := attempt(ctx, WarmupOptions{URL: url, Host: host})
	if err != nil {
		return err
	}
	if !accept.Contains(code) {
		return fmt.Errorf("status %d", code)
	}
	return nil
}
