package deploy_test

import (
	"os"
	"testing"
)

// testAppEnv, set in an instance's startup command, makes the test binary
// run as the fake app instead of running the tests (see testapp_test.go).
const testAppEnv = "SLIPWAY_TESTAPP_MODE"

func TestMain(m *testing.M) {
	if os.Getenv(testAppEnv) != "" {
		os.Exit(runTestApp())
	}
	os.Exit(m.Run())
}
