// Package version says which build of slipway runs: its version and
// commit, stamped at build time, and the Go version it was built with.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped at build time (scripts/install, the end-to-end tests):
//
//	go build -ldflags "-X github.com/slipway-dev/slipway/internal/version.version=v1.2.3 -X github.com/slipway-dev/slipway/internal/version.commit=abc123" ./cmd/slipway
//
// Left empty, Get falls back to what the Go toolchain recorded in the
// binary (the module version, vcs.revision).
var (
	version string
	commit  string
)

// Info names a build.
type Info struct {
	// Version is the stamped version, else the module's version as the
	// toolchain recorded it ("(devel)" for a build from a checkout).
	Version string `json:"version"`
	// Commit is the stamped commit, else vcs.revision (with "-dirty" when
	// the work tree had changes); empty when neither is known.
	Commit string `json:"commit,omitempty"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"go_version"`
}

// Get returns this binary's build information.
func Get() Info {
	i := Info{Version: version, Commit: commit, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if i.Version == "" {
			i.Version = "unknown"
		}
		return i
	}
	if i.Version == "" {
		i.Version = bi.Main.Version
	}
	if i.Version == "" {
		i.Version = "(devel)"
	}
	if i.Commit == "" {
		i.Commit = vcsRevision(bi.Settings)
	}
	return i
}

func vcsRevision(settings []debug.BuildSetting) string {
	var rev string
	var dirty bool
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	return rev
}

// String is the one-line form: "v1.2.3 (commit abc123, go1.26.8)".
func (i Info) String() string {
	if i.Commit == "" {
		return fmt.Sprintf("%s (%s)", i.Version, i.GoVersion)
	}
	return fmt.Sprintf("%s (commit %s, %s)", i.Version, i.Commit, i.GoVersion)
}
