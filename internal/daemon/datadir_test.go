package daemon

import (
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/store"
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

// TestResetTokenRefusesAnotherUsersDir: admin reset-token run as another
// user than the data directory's owner is refused, before it opens the
// store (as root, etcd would leave files the daemon's user cannot read).
func TestResetTokenRefusesAnotherUsersDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a directory to another user needs root") // CI runs as root
	}
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, _, err = ResetAdminToken(t.Context(), dir)
	if err == nil || !strings.Contains(err.Error(), "belongs to user id 65534: run this as that user") {
		t.Errorf("reset-token on another user's data directory: %v, want a refusal naming the owner", err)
	}
}
