package cli

import (
	"bytes"
	"github.com/slipway-dev/slipway/internal/golden"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
)

// TestLeasesTable pins `slipway leases`: a lease a job took, the single
// runner, one that ran out a moment ago, and none at all.
func TestLeasesTable(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	ls := []api.Lease{
		{Name: "nightly", Holder: "promo-v3-1a2b3c", Release: 3, FencingToken: 4211, Expires: now.Add(12400 * time.Millisecond)},
		{Name: "report-mailer", Holder: "promo-v2-0f0f0f", Release: 2, FencingToken: 977, Expires: now.Add(-time.Second)},
		{Name: "runner", Holder: "promo-v3-4d5e6f", Release: 3, FencingToken: 4090, SingleRunner: true},
	}
	var b bytes.Buffer
	if err := printLeases(&b, "promo", ls, now); err != nil {
		t.Fatal(err)
	}
	b.WriteString("---\n")
	if err := printLeases(&b, "promo", nil, now); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "leases.txt", b.Bytes())
}
