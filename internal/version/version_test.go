package version

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestGetStamped(t *testing.T) {
	version, commit = "v9.8.7", "0123abc"
	t.Cleanup(func() { version, commit = "", "" })
	got := Get()
	want := Info{Version: "v9.8.7", Commit: "0123abc", GoVersion: runtime.Version()}
	if got != want {
		t.Errorf("Get() = %+v, want %+v", got, want)
	}
	if s, want := got.String(), "v9.8.7 (commit 0123abc, "+runtime.Version()+")"; s != want {
		t.Errorf("String() = %q, want %q", s, want)
	}
}

func TestGetFallsBackToBuildInfo(t *testing.T) {
	got := Get()
	if got.Version == "" || got.GoVersion != runtime.Version() {
		t.Errorf("Get() = %+v: want a version from the build info and Go %s", got, runtime.Version())
	}
}

func TestVCSRevision(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings []debug.BuildSetting
		want     string
	}{
		{"clean", []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}, "abc"},
		{"dirty", []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}, "abc-dirty"},
		{"none", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := vcsRevision(tc.settings); got != tc.want {
				t.Errorf("vcsRevision = %q, want %q", got, tc.want)
			}
		})
	}
}
