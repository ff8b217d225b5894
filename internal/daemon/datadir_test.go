package daemon

import (
	"errors"
	"strings"
	"testing"
)

// TestDefaultDataDir: a user without a home directory gets no default
// (not a directory relative to wherever the daemon started), and the
// start then asks for --data-dir.
func TestDefaultDataDir(t *testing.T) {
	tests := []struct {
		name, xdg, home string
		euid            int
		want            string
	}{
		{"XDG_DATA_HOME", "/xdg", "/home/ana", 1000, "/xdg/slipway"},
		{"a user's home", "", "/home/ana", 1000, "/home/ana/.local/share/slipway"},
		{"a user without a home", "", "", 1000, ""},
		{"root without a home", "", "", 0, rootDataDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultDataDir(tt.xdg, tt.home, tt.euid); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	err := Config{HTTPListen: ":8080", APIListen: ":7070", BaseDomain: "localhost", KeepReleases: 1, MaxUpload: 1}.Validate()
	if !errors.Is(err, ErrNoDataDir) || !strings.Contains(err.Error(), "--data-dir DIR or SLIPWAY_DATA_DIR") {
		t.Errorf("Validate without a data directory: got %v, want ErrNoDataDir naming --data-dir", err)
	}
	if _, _, err := ResetAdminToken(t.Context(), ""); !errors.Is(err, ErrNoDataDir) {
		t.Errorf("ResetAdminToken without a data directory: got %v, want ErrNoDataDir", err)
	}
}
