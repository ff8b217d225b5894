package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/testapp"
)

// netns is a network namespace of the test's, linked to the host by a
// veth pair: the host's end has hostIP, the namespace's nsIP. A node
// started in it (ip netns exec) can be cut off from its peers with
// iptables inside the namespace, while the test still reaches its router
// and API.
type netns struct {
	t              *testing.T
	name           string
	hostIP, nsIP   string
	hostIf, nsIf   string
	peerPortsOther []string
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the cluster test makes a network namespace, which needs root")
	}
	id := os.Getpid() % 250
	n := &netns{t: t, name: fmt.Sprintf("slwtest%d", os.Getpid()), hostIf: fmt.Sprintf("slwh%d", os.Getpid()%100000),
		nsIf: fmt.Sprintf("slwn%d", os.Getpid()%100000), hostIP: fmt.Sprintf("10.213.%d.1", id), nsIP: fmt.Sprintf("10.213.%d.2", id)}
	run(t, "ip", "netns", "add", n.name)
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", n.name).Run()
		exec.Command("ip", "link", "del", n.hostIf).Run()
	})
	run(t, "ip", "link", "add", n.hostIf, "type", "veth", "peer", "name", n.nsIf)
	run(t, "ip", "link", "set", n.nsIf, "netns", n.name)
	run(t, "ip", "addr", "add", n.hostIP+"/30", "dev", n.hostIf)
	run(t, "ip", "link", "set", n.hostIf, "up")
	run(t, "ip", "netns", "exec", n.name, "ip", "addr", "add", n.nsIP+"/30", "dev", n.nsIf)
	run(t, "ip", "netns", "exec", n.name, "ip", "link", "set", n.nsIf, "up")
	run(t, "ip", "netns", "exec", n.name, "ip", "link", "set", "lo", "up")
	return n
}

// cut drops the peer traffic of the namespace's node: what comes to its
// peer port, and what it sends to the other nodes' peer ports.
func (n *netns) cut(ownPeerPort string, otherPeerPorts ...string) {
	n.t.Helper()
	// Healed before the nodes stop, should the test end first.
	n.t.Cleanup(func() { exec.Command("ip", "netns", "exec", n.name, "iptables", "-F").Run() })
	run(n.t, "ip", "netns", "exec", n.name, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", ownPeerPort, "-j", "DROP")
	for _, p := range otherPeerPorts {
		run(n.t, "ip", "netns", "exec", n.name, "iptables", "-A", "OUTPUT", "-p", "tcp", "--dport", p, "-j", "DROP")
	}
}

// heal takes the cut away.
func (n *netns) heal() {
	n.t.Helper()
	run(n.t, "ip", "netns", "exec", n.name, "iptables", "-F")
}

// haproxy runs HAProxy in front of the nodes' routers, as a team's load
// balancer would: health checks on /healthz, and idempotent requests
// retried on another node when one breaks off.
func haproxy(t *testing.T, nodes ...*daemon) *daemon {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("no haproxy: install it with 'scripts/test install' (Debian's haproxy)")
	}
	port := freePort(t)
	var servers strings.Builder
	for i, d := range nodes {
		fmt.Fprintf(&servers, "    server n%d %s check inter 300ms fall 2 rise 2\n", i, strings.TrimPrefix(d.httpURL, "http://"))
	}
	cfg := fmt.Sprintf(`global
    log stderr format raw local0 err
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    retry-on all-retryable-errors
    option redispatch 1
frontend apps
    bind 127.0.0.1:%d
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
%s`, port, servers.String())
	dir := t.TempDir()
	file := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "-db", "-f", file)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy log:\n%s", log.String())
		}
	})
	lb := &daemon{t: t, httpURL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	waitFor(t, 20*time.Second, "haproxy to listen", func() bool {
		resp, err := http.Get(lb.httpURL + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return lb
}

// killNode kills a node's daemon and its instances with SIGKILL, as a
// machine that loses power.
func killNode(t *testing.T, d *daemon) {
	t.Helper()
	d.kill()
	killLeftoversQuietly(d.dataDir)
}

// coordinator is the node the others name as their coordinator.
func coordinator(t *testing.T, nodes ...*daemon) *daemon {
	t.Helper()
	var found *daemon
	waitFor(t, 30*time.Second, "a coordinator", func() bool {
		for _, n := range nodes[0:1] {
			for name, st := range nodesOf(t, n) {
				if st.Coordinator {
					for _, d := range nodes {
						if d.name == name {
							found = d
						}
					}
				}
			}
		}
		return found != nil
	})
	return found
}

func nodesOf(t *testing.T, d *daemon) map[string]api.Node { return nodes(t, d) }

// deployAsync uploads jar to app through d's API without waiting, and
// returns the deployment's id.
func deployAsync(t *testing.T, d *daemon, app, jar string) int {
	t.Helper()
	b, err := os.ReadFile(jar)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := d.api(http.MethodPost, "/api/v1/apps/"+app+"/deployments?filename="+filepath.Base(jar), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("deploying %s: %s: %s", jar, resp.Status, body)
	}
	var dep api.Deployment
	if err := jsonUnmarshal(body, &dep); err != nil {
		t.Fatal(err)
	}
	return dep.ID
}

// TestClusterHA runs three nodes behind HAProxy, the third in a network
// namespace of its own, with requests flowing through HAProxy all along,
// and not one of them may fail:
//   - v2, which takes 30 s to start, is deployed through one node's API:
//     every node ends on v2, and no request that started after the last
//     node switched is answered by v1;
//   - a node is killed (daemon and instances): the two others deploy v3,
//     and the node, started again, catches up and serves v3;
//   - the coordinator is killed during a deployment: another node takes
//     it over, it ends (failed or succeeded, never stuck), and a new
//     deploy works;
//   - the third node is cut off from its peers: it serves, refuses
//     changes saying why, and catches up once it is back.
func TestClusterHA(t *testing.T) {
	ns := newNetns(t)
	// Two releases kept: each node prunes its own release directories.
	keep := []string{"--keep-releases", "2"}
	a := startNodeWith(t, &daemon{host: ns.hostIP, name: "a"}, "a", nil, keep...)
	b := startNodeWith(t, &daemon{host: ns.hostIP, name: "b"}, "b", a, keep...)
	c := startNodeWith(t, &daemon{host: ns.nsIP, name: "c", wrap: []string{"ip", "netns", "exec", ns.name}}, "c", b, append(keep, "--label", "zone=west")...)
	all := []*daemon{a, b, c}
	for _, name := range []string{"a", "b", "c"} {
		waitNodeState(t, a, name, "ready")
	}
	jar := func(v int, props ...string) string {
		p := map[string]string{"version": fmt.Sprint(v)}
		for i := 0; i+1 < len(props); i += 2 {
			p[props[i]] = props[i+1]
		}
		return testapp.Jar(t, fmt.Sprintf("promo-%d.jar", v), p)
	}
	b.mustCLI("apps", "create", "promo")
	c.mustCLI("deploy", "-a", "promo", jar(1), "-m", "first")
	waitVersion(t, "promo", 1, all...)
	lb := haproxy(t, all...)
	l := startLoad(t, lb, "promo", loadOptions{Steady: 2, Hammer: 2, Slow: 1, MaxDuration: 6 * time.Minute, AcrossNodes: true})
	time.Sleep(2 * time.Second)

	{ // deploy v2 under load
		t.Log("== deploy v2 under load")
		out := b.mustCLI("deploy", "-a", "promo", jar(2, "startDelaySeconds", "30"), "-m", "slow start")
		t.Logf("slipway deploy v2 through b:\n%s", out)
		for _, want := range []string{"coordinates", "Node a: warm", "Node b: warm", "Node c: warm", "switch window", "succeeded"} {
			if !strings.Contains(out, want) {
				t.Errorf("deploy output lacks %q", want)
			}
		}
		deps := a.deployments("promo")
		switched := stepTime(t, deps[len(deps)-1], api.StepSwitched)
		time.Sleep(2 * time.Second)
		if n := l.startedAfterOn(switched, 1); n > 0 {
			t.Errorf("%d requests that started after every node had switched were answered by v1", n)
		}
		t.Logf("answers of v1 to a client that had seen v2: %d; the first: %q; switched at %s", l.wentBack, l.wentBackSeen, switched.Format("15:04:05.000"))
		waitVersion(t, "promo", 2, all...)
		// One node's answer covers every node: the status lists each
		// one's instances, the log has every node's lines, tagged.
		var st api.Status
		a.getJSON("/api/v1/apps/promo/status", &st)
		if len(st.Nodes) != 3 {
			t.Errorf("status at a lists the instances of %d nodes, want 3: %+v", len(st.Nodes), st.Nodes)
		}
		logs := a.mustCLI("logs", "-a", "promo", "--tail", "5000")
		for _, n := range []string{"a", "b", "c"} {
			if !strings.Contains(logs, " "+n+"/promo-v2-") {
				t.Errorf("the log at a has no line of node %s's v2 instance", n)
			}
		}
	}

	{ // kill a node
		t.Log("== kill a node")
		killNode(t, a)
		out := b.mustCLI("deploy", "-a", "promo", jar(3), "-m", "with two")
		if !strings.Contains(out, "succeeded") {
			t.Errorf("deploy with a node down:\n%s", out)
		}
		waitVersion(t, "promo", 3, b, c)
		a.start()
		waitFor(t, 60*time.Second, "a's health endpoint to answer ready", func() bool {
			resp, err := http.Get(a.httpURL + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
		waitVersion(t, "promo", 3, a)
	}

	{ // kill the coordinator during a deployment
		t.Log("== kill the coordinator during a deployment")
		co := coordinator(t, all...)
		var other *daemon
		for _, d := range all {
			if d != co && d != c {
				other = d
			}
		}
		if other == nil {
			other = c
		}
		id := deployAsync(t, other, "promo", jar(4, "startDelaySeconds", "8"))
		waitFor(t, 30*time.Second, "every node to be warming", func() bool {
			d := deploymentByID(t, other, "promo", id)
			return strings.Count(eventsText(d), "warming") >= 3
		})
		killNode(t, co)
		var d api.Deployment
		waitFor(t, 90*time.Second, "the deployment to end", func() bool {
			d = deploymentByID(t, other, "promo", id)
			return d.State != "running"
		})
		t.Logf("the deployment the coordinator %s left ended %s: %s", co.name, d.State, d.Reason)
		if !strings.Contains(eventsText(d), "took the deployment over") {
			t.Errorf("the deployment does not say another node took it over:\n%s", eventsText(d))
		}
		if out := other.mustCLI("deploy", "-a", "promo", jar(5), "-m", "after the takeover"); !strings.Contains(out, "succeeded") {
			t.Errorf("a deploy after the takeover:\n%s", out)
		}
		co.start()
		waitVersion(t, "promo", 5, all...)
	}

	{ // placement
		t.Log("== placement")
		// An app placed on the nodes labelled zone=west runs on c only;
		// a and b forward its requests to c over the peer link.
		a.mustCLI("apps", "create", "west", "--placement", "zone=west")
		a.mustCLI("deploy", "-a", "west", jar(7), "-m", "west only")
		var st api.Status
		a.getJSON("/api/v1/apps/west/status", &st)
		if len(st.Nodes) != 1 || st.Nodes[0].Node != "c" || len(st.Nodes[0].Instances) != 1 {
			t.Errorf("the placed app's instances per node: %+v, want one on c", st.Nodes)
		}
		want := "instance=" + st.Nodes[0].Instances[0].ID
		for _, d := range []*daemon{a, b, lb} {
			waitFor(t, 30*time.Second, "west at "+d.httpURL+" to be answered by c's instance", func() bool {
				code, body, err := d.get(context.Background(), http.DefaultClient, "west", "/")
				return err == nil && code == 200 && strings.Contains(body, want)
			})
		}
	}

	// A node cut off serves its release while the others go on to the
	// next: a client sent to either sees both, so the load ends here.
	l.check(t)

	{ // cut a node off
		t.Log("== cut a node off")
		ports := map[*daemon]string{}
		for _, d := range all {
			ports[d] = peerPort(t, a, d.name)
		}
		ns.cut(ports[c], ports[a], ports[b])
		// The first change may come before c has noticed (an election
		// timeout); it may wait for the majority then, up to the store's
		// call timeout, and is given up after 10 s.
		waitFor(t, 60*time.Second, "c to refuse changes", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, "restart", "-a", "promo")
			cmd.Env = append(os.Environ(), "SLIPWAY_URL="+c.apiURL, "SLIPWAY_TOKEN="+c.token)
			out, err := cmd.CombinedOutput()
			return err != nil && strings.Contains(string(out), "cannot reach a majority")
		})
		waitVersion(t, "promo", 5, c) // it serves what it has
		if out := a.mustCLI("deploy", "-a", "promo", jar(6), "-m", "without c"); !strings.Contains(out, "succeeded") {
			t.Errorf("a deploy while c is cut off:\n%s", out)
		}
		ns.heal()
		waitVersion(t, "promo", 6, all...)
	}

	// Every node keeps the release directories of the last two releases
	// only, whether it coordinated, followed or caught up.
	for _, d := range all {
		dir := filepath.Join(d.dataDir, "apps", "promo", "releases")
		waitFor(t, 60*time.Second, "node "+d.name+" to keep two releases of promo", func() bool {
			entries, err := os.ReadDir(dir)
			return err == nil && len(entries) <= 2
		})
	}

}

// killLeftoversQuietly kills what runs in a data directory: a killed
// node's instances.
func killLeftoversQuietly(dataDir string) {
	cwds, _ := filepath.Glob("/proc/[0-9]*/cwd")
	for _, c := range cwds {
		dir, err := os.Readlink(c)
		if err != nil || !strings.HasPrefix(dir, dataDir+"/") {
			continue
		}
		var pid int
		fmt.Sscanf(filepath.Base(filepath.Dir(c)), "%d", &pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func deploymentByID(t *testing.T, d *daemon, app string, id int) api.Deployment {
	t.Helper()
	var dep api.Deployment
	d.getJSON(fmt.Sprintf("/api/v1/apps/%s/deployments/%d", app, id), &dep)
	return dep
}

func eventsText(d api.Deployment) string {
	var b strings.Builder
	for _, e := range d.Events {
		b.WriteString(e.Message + "\n")
	}
	return b.String()
}

// peerPort is the peer port of the named node, as d lists it.
func peerPort(t *testing.T, d *daemon, name string) string {
	t.Helper()
	u := nodes(t, d)[name].PeerURL
	i := strings.LastIndex(u, ":")
	if i < 0 {
		t.Fatalf("node %s has no peer URL", name)
	}
	return u[i+1:]
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
