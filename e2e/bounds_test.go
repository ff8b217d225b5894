package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestOversizeInputsRefused plays a caller that sends more than the store
// can hold: a 262,000-character deploy message, 15,000 variables. Each is
// refused with 400 before anything is stored, and the daemon goes on
// deploying and starting as before.
func TestOversizeInputsRefused(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "bounded", "--command", "exec ./wsapp", "--env", "VERSION=1")
	zip := wsappZip(t)
	d.mustCLI("deploy", "-a", "bounded", zip)

	body, err := os.ReadFile(zip)
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"filename": {"wsapp.zip"}, "message": {strings.Repeat("m", 262_000)}}
	code, text := d.send("POST", "/api/v1/apps/bounded/deployments?"+q.Encode(), string(body))
	if code != http.StatusBadRequest || !strings.Contains(text, "limit is 4096") {
		t.Errorf("a 262,000-character message: %d %s; want 400 naming the limit", code, text)
	}

	env := make(map[string]string, 15_000)
	for i := range 15_000 {
		env["VAR_"+strconv.Itoa(i)] = strings.Repeat("v", 100)
	}
	change, _ := json.Marshal(map[string]any{"set": env})
	code, text = d.send("PATCH", "/api/v1/apps/bounded/settings", string(change))
	if code != http.StatusBadRequest {
		t.Errorf("15,000 variables: %d %.300s; want 400", code, text)
	}
	if got := d.app("bounded").Settings.Env; len(got) != 1 {
		t.Errorf("after the refused change the app has %d variables, want the 1 it had", len(got))
	}

	d.mustCLI("config", "set", "-a", "bounded", "VERSION=2")
	if got := d.body("bounded", "/"); !strings.HasPrefix(got, "version=2 ") {
		t.Errorf("after the refusals a change went live as %q, want version=2", got)
	}
	d.stop()
	d.start()
	if got := d.body("bounded", "/"); !strings.HasPrefix(got, "version=2 ") {
		t.Errorf("after a restart the app answers %q", got)
	}
}

// send makes an API request as admin and returns the status and body.
func (d *daemon) send(method, path, body string) (int, string) {
	d.t.Helper()
	resp, err := d.api(method, path, strings.NewReader(body))
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestLocalUserReachesNothing plays another local user (nobody): the
// daemon listens on no port but the router's, the API's and the lease
// endpoint's (which needs an instance's secret); the store listens on
// nothing at all, neither a port nor a socket (store's
// TestListensOnNoPort). Its data directory, where the admin token and the
// store's files are, is closed.
func TestLocalUserReachesNothing(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to act as another user; CI runs as root")
	}
	lease := strconv.Itoa(freePort(t))
	d := startDaemon(t, "--lease-listen", "127.0.0.1:"+lease)
	ports := listening(t, d.cmd.Process.Pid)
	want := []string{port(d.httpURL), port(d.apiURL), lease}
	if len(ports) != 3 || !ports[want[0]] || !ports[want[1]] || !ports[want[2]] {
		t.Errorf("the daemon listens on TCP ports %v, want only %v", ports, want)
	}
	for _, args := range [][]string{
		{"cat", filepath.Join(d.dataDir, "admin.token")},
		{"ls", filepath.Join(d.dataDir, "etcd")},
		{"ls", d.dataDir},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Errorf("as nobody, %v: %v\n%s", args, err, out)
		}
	}
}

func port(u string) string { return u[strings.LastIndex(u, ":")+1:] }

// listening returns the TCP ports process pid listens on, from /proc.
func listening(t *testing.T, pid int) map[string]bool {
	t.Helper()
	inodes := map[string]bool{}
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, _ := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if s, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(s, "]")] = true
		}
	}
	ports := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 9 && f[3] == "0A" && inodes[f[9]] { // 0A: LISTEN
				p, _ := strconv.ParseInt(f[1][strings.LastIndex(f[1], ":")+1:], 16, 32)
				ports[strconv.Itoa(int(p))] = true
			}
		}
	}
	return ports
}
