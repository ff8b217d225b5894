package deploy_test

import (
	"context"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// TestTruncatedAnswerDoesNotHoldTheDrain: an instance promises 1 MB and
// hangs up after 7 bytes. Once that request is over, the router must not
// count it in flight any more, or the next deployment waits out the whole
// drain timeout for a request that ended long ago.
//
// While the router counts the request for ever, this test waits out the
// drain timeout; it runs in parallel with the scale test meanwhile.
func TestTruncatedAnswerDoesNotHoldTheDrain(t *testing.T) {
	t.Parallel()
	const drain = 20 // seconds; the deployment must not need them
	h := newHarness(t, func(s *settings.Settings) { s.DrainTimeout = drain })
	h.deployLive(appConf{Version: "1"})
	b := h.router.Backends(testApp)[0]

	code, body, err := h.get(context.Background(), "/truncated")
	if err == nil {
		t.Errorf("GET /truncated: got %d with %d bytes and no error, want the answer cut off", code, len(body))
	}
	if !eventually(2*time.Second, func() bool { return b.InFlight() == 0 }) {
		t.Errorf("after the truncated answer, the backend counts %d request(s) in flight, want 0", b.InFlight())
	}

	d, _, err := h.m.ChangeSettings(context.Background(), testApp, settings.Change{Set: map[string]string{"COLOUR": "blue"}}, false, deploy.Meta{Author: "test"})
	if err != nil {
		t.Fatal(err)
	}
	got := h.wantState(d.ID, store.StateSucceeded)
	if hasEvent(got, "Drain timeout passed") {
		t.Errorf("the settings change waited out the %d s drain timeout for a request that had ended:\n%s", drain, events(got))
	}
	h.wantBody("/env?k=COLOUR", "blue")
	h.onlyInstancesRun()
}

// eventually polls cond every 50 ms until it holds or timeout passes, and
// says whether it held.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
