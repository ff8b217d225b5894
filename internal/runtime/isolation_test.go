package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain makes the test binary the Landlock launcher when a landlock
// sandbox starts it again (Sandbox.command runs /proc/self/exe).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == LauncherArg {
		os.Exit(Launch(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// probe is a shell script that tries each path and says what it could do,
// one line per attempt: "read PATH: ok" or "read PATH: denied".
const probe = `
try() { if eval "$2" >/dev/null 2>&1; then echo "$1: ok"; else echo "$1: denied"; fi; }
try "read secret" 'cat "$SECRET"'
try "list hidden" 'ls "$HIDDEN"'
try "write release" 'touch ./new'
try "write storage" 'touch "$STORAGE/new"'
try "write tmp" 'touch "$TMPDIR/new"'
try "read system" 'cat /etc/hostname /usr/bin/env'
try "signal daemon" 'kill -0 $DAEMON'
`

// sandboxFixture lays out a data directory like the daemon's: a hidden
// tree with a secret, and inside it the release, storage and temp
// directories an instance may use.
type sandboxFixture struct {
	hidden, secret, release, storage, tmp string
}

func newSandboxFixture(t *testing.T) sandboxFixture {
	t.Helper()
	base := t.TempDir()
	os.Chmod(base, 0o711)
	os.Chmod(filepath.Dir(base), 0o711) // made by the testing package, 0700
	f := sandboxFixture{hidden: filepath.Join(base, "data")}
	f.secret = filepath.Join(f.hidden, "admin.token")
	f.release = filepath.Join(f.hidden, "apps", "a", "releases", "v1")
	f.storage = filepath.Join(f.hidden, "apps", "a", "storage")
	f.tmp = filepath.Join(f.hidden, "apps", "a", "tmp", "i")
	for _, d := range []string{f.release, f.storage, f.tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(f.secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f sandboxFixture) env() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "SECRET=" + f.secret, "HIDDEN=" + f.hidden,
		"STORAGE=" + f.storage, "TMPDIR=" + f.tmp, "DAEMON=" + strconv.Itoa(os.Getpid())}
}

// TestLandlockSandbox: under Landlock an instance reads the system and
// its release, writes its storage and temp directory, and nothing else.
func TestLandlockSandbox(t *testing.T) {
	if LandlockABI() < 6 {
		t.Skipf("the kernel offers Landlock ABI %d; this test wants 6 or later (signal scoping)", LandlockABI())
	}
	f := newSandboxFixture(t)
	sb := Sandbox{Mode: IsolationLandlock, ReadOnly: []string{f.release}, ReadWrite: []string{f.storage, f.tmp}, Hidden: []string{f.hidden}}
	got := runProbe(t, f, sb)
	want := map[string]string{"read secret": "denied", "list hidden": "denied", "write release": "denied",
		"write storage": "ok", "write tmp": "ok", "read system": "ok", "signal daemon": "denied"}
	checkProbe(t, got, want)
}

// TestUserSandbox: as a user of its own, an instance cannot read the
// daemon's files; file permissions decide the rest.
func TestUserSandbox(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	f := newSandboxFixture(t)
	const uid = 2_000_000_321
	for _, d := range []string{f.storage, f.tmp} {
		os.Chown(d, uid, uid)
	}
	for _, d := range []string{f.hidden, filepath.Join(f.hidden, "apps"), filepath.Dir(f.storage), filepath.Dir(f.release), filepath.Dir(f.tmp)} {
		os.Chmod(d, 0o711)
	}
	os.Chown(f.release, 0, uid)
	os.Chmod(f.release, 0o750)
	got := runProbe(t, f, Sandbox{Mode: IsolationUser, UID: uid, GID: uid})
	want := map[string]string{"read secret": "denied", "list hidden": "denied", "write release": "denied",
		"write storage": "ok", "write tmp": "ok", "read system": "ok", "signal daemon": "denied"}
	checkProbe(t, got, want)
}

func runProbe(t *testing.T, f sandboxFixture, sb Sandbox) map[string]string {
	t.Helper()
	c := &collector{}
	inst, err := Start(Spec{ID: "probe", Dir: f.release, LogDir: t.TempDir(), Command: probe, Env: f.env(), Output: c.out, Sandbox: sb})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, inst, 10*time.Second)
	inst.WaitOutput()
	got := map[string]string{}
	for _, line := range strings.Split(c.text(), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "stdout: "), ": "); ok {
			got[k] = v
		}
	}
	return got
}

func checkProbe(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %q, want %s", k, got[k], w)
		}
	}
}

// TestWithoutHidden: a system directory that holds a hidden path is
// granted entry by entry, without it.
func TestWithoutHidden(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"opt/java", "opt/slipway/data", "opt/slipway/bin"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	got := withoutHidden(filepath.Join(root, "opt"), []string{filepath.Join(root, "opt/slipway/data")})
	want := []string{filepath.Join(root, "opt/java"), filepath.Join(root, "opt/slipway/bin")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("withoutHidden = %v, want %v", got, want)
	}
	if got := withoutHidden(filepath.Join(root, "opt/java"), []string{filepath.Join(root, "opt/slipway")}); len(got) != 1 {
		t.Errorf("a directory that holds nothing hidden: %v, want it whole", got)
	}
}

// TestStopKillsDetachedChild: a child that left the instance's session
// with setsid is stopped with the instance, with a cgroup and without.
func TestStopKillsDetachedChild(t *testing.T) {
	cgroups, cgErr := NewCgroups(fmt.Sprintf("slipway-test-%d", os.Getpid()))
	if cgroups != nil {
		t.Cleanup(cgroups.Close)
	}
	for _, tc := range []struct {
		name   string
		cgroup bool
		// leaderFirst: the leader exits on its own before Stop.
		leaderFirst bool
	}{
		{"cgroup", true, false},
		{"cgroup, leader gone first", true, true},
		{"process tree", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cgroup && cgroups == nil {
				t.Skipf("no cgroup here: %v", cgErr)
			}
			c := &collector{}
			spec := Spec{ID: "detacher", Dir: t.TempDir(), LogDir: t.TempDir(), Env: []string{"PATH=" + os.Getenv("PATH")}, Output: c.out,
				Command: `setsid sleep 300 & echo child $!; trap 'exit 0' TERM; read _ < ./go; exit 0`}
			if tc.cgroup {
				spec.Cgroup = cgroups.Path(spec.ID)
			}
			if err := syscall.Mkfifo(spec.Dir+"/go", 0o600); err != nil {
				t.Fatal(err)
			}
			inst, err := Start(spec)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { inst.Stop(time.Second); inst.WaitOutput() })
			child := childPID(t, c)
			if tc.leaderFirst {
				os.WriteFile(spec.Dir+"/go", []byte("\n"), 0o600)
				waitDone(t, inst, 5*time.Second)
			}
			if err := inst.Stop(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			if alive(child) {
				t.Errorf("the detached child %d still runs after Stop", child)
			}
			if tc.cgroup {
				if _, err := os.Stat(spec.Cgroup); err == nil {
					t.Errorf("cgroup %s is still there", spec.Cgroup)
				}
			}
		})
	}
}

func childPID(t *testing.T, c *collector) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range strings.Split(c.text(), "\n") {
			if s, ok := strings.CutPrefix(l, "stdout: child "); ok {
				return atoi(s)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the child never started")
	return 0
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := statFields(string(b))
	return len(f) > 0 && f[0] != "Z"
}
