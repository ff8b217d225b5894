package runtime

import (
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// collector gathers an instance's output lines.
type collector struct {
	mu    sync.Mutex
	lines []string
}

func (c *collector) out(stream, line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, stream+": "+line)
}

func (c *collector) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

func start(t *testing.T, command string, c *collector) *Instance {
	t.Helper()
	inst, err := Start(Spec{ID: "test", Dir: t.TempDir(), LogDir: t.TempDir(), Command: command, Env: []string{"PATH=" + os.Getenv("PATH"), "GREETING=hi"}, Output: c.out})
	if err != nil {
		t.Fatal(err)
	}
	// Its followers write offset files until they end: wait for them, or
	// removing the test's folders races with them.
	t.Cleanup(func() { inst.Stop(time.Second); inst.WaitOutput() })
	return inst
}

func waitDone(t *testing.T, inst *Instance, d time.Duration) {
	t.Helper()
	select {
	case <-inst.Done():
	case <-time.After(d):
		t.Fatalf("instance still running after %s", d)
	}
}

func TestOutputAndExit(t *testing.T) {
	c := &collector{}
	inst := start(t, `echo "$GREETING from $(pwd)"; echo oops >&2; printf 'no newline'; exit 3`, c)
	waitDone(t, inst, 10*time.Second)
	if got, want := inst.Exit(), "exit code 3"; got != want {
		t.Errorf("Exit() = %q, want %q", got, want)
	}
	// Each stream has its own reader: wait for both, not for one line of
	// stdout (which let the test read before stderr's line arrived).
	inst.WaitOutput()
	for _, want := range []string{"stdout: hi from /", "stderr: oops", "stdout: no newline"} {
		if !strings.Contains(c.text(), want) {
			t.Errorf("output lacks %q:\n%s", want, c.text())
		}
	}
	if got := inst.LastLines(); len(got) != 3 {
		t.Errorf("LastLines() = %q, want 3 lines", got)
	}
}

// TestStopEscalates: a process that ignores SIGTERM gets SIGKILL after the
// grace period, and so does the child it left in its group.
func TestStopEscalates(t *testing.T) {
	c := &collector{}
	inst := start(t, `trap '' TERM; sleep 300 & echo child $!; wait`, c)
	var child int
	deadline := time.Now().Add(5 * time.Second)
	for child == 0 && time.Now().Before(deadline) {
		for _, l := range strings.Split(c.text(), "\n") {
			if strings.HasPrefix(l, "stdout: child ") {
				child = atoi(strings.TrimPrefix(l, "stdout: child "))
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if child == 0 {
		t.Fatal("the child never started")
	}
	began := time.Now()
	if err := inst.Stop(500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < 500*time.Millisecond {
		t.Errorf("Stop returned after %s, before the grace period", took)
	}
	if got, want := inst.Exit(), "killed by SIGKILL: it had not ended within the stop grace period"; got != want {
		t.Errorf("Exit() = %q, want %q", got, want)
	}
	deadline = time.Now().Add(5 * time.Second)
	for syscall.Kill(child, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if syscall.Kill(child, 0) == nil {
		t.Errorf("child %d of the stopped instance is still alive", child)
	}
}

// TestStopGraceful: a process that exits on SIGTERM is not waited for,
// and its end is a stop, however it reports it: killed by the signal, or
// exit code 143 as a JVM exits on it. An exit nobody asked for keeps its
// code, 143 included.
func TestStopGraceful(t *testing.T) {
	for _, tt := range []struct{ name, command string }{
		{"killed by SIGTERM", `exec sleep 300`},
		{"exit code 143 on SIGTERM", `trap 'exit 143' TERM; sleep 300 & wait`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inst := start(t, tt.command, &collector{})
			began := time.Now()
			inst.Stop(30 * time.Second)
			if took := time.Since(began); took > 5*time.Second {
				t.Errorf("Stop took %s for a process that exits on SIGTERM", took)
			}
			if got, want := inst.Exit(), "ended on SIGTERM"; got != want {
				t.Errorf("Exit() = %q, want %q", got, want)
			}
		})
	}
	inst := start(t, `exit 143`, &collector{})
	waitDone(t, inst, 10*time.Second)
	if got, want := inst.Exit(), "exit code 143"; got != want {
		t.Errorf("an exit nobody asked for: Exit() = %q, want %q", got, want)
	}
}

func TestKillGroup(t *testing.T) {
	inst := start(t, `exec sleep 300`, &collector{})
	if n := KillGroup(inst.PID, inst.StartTicks+1, ""); n != 0 {
		t.Errorf("KillGroup with the wrong start time killed %d processes", n)
	}
	if n := KillGroup(inst.PID, inst.StartTicks, ""); n != 1 {
		t.Errorf("KillGroup killed %d, want 1", n)
	}
	waitDone(t, inst, 5*time.Second)
}

func TestParseStartTicks(t *testing.T) {
	stat := "1234 (java (weird) name) S 1 1234 1234 0 -1 4194304 100 0 0 0 5 3 0 0 20 0 30 0 987654 123 456"
	got, err := parseStartTicks(stat)
	if err != nil || got != 987654 {
		t.Errorf("parseStartTicks = %d, %v; want 987654", got, err)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range strings.TrimSpace(s) {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestAdopt detaches from a running instance, lets it write while nobody
// reads, and adopts it again: the same process, no output lost.
func TestAdopt(t *testing.T) {
	c := &collector{}
	spec := Spec{ID: "adoptee", Dir: t.TempDir(), LogDir: t.TempDir(), Env: []string{"PATH=" + os.Getenv("PATH")},
		Command: `echo before; read _ < ./go; echo while-detached; exec sleep 300`, Output: c.out}
	if err := syscall.Mkfifo(spec.Dir+"/go", 0o600); err != nil {
		t.Fatal(err)
	}
	inst, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-inst.PID, syscall.SIGKILL) })
	waitLine(t, c, "stdout: before")
	inst.Detach()
	if err := os.WriteFile(spec.Dir+"/go", []byte("\n"), 0o600); err != nil { // unblocks the read
		t.Fatal(err)
	}
	c2 := &collector{}
	spec.Output = c2.out
	if _, err := Adopt(spec, inst.PID, inst.StartTicks+1); err == nil {
		t.Error("Adopt with the wrong start time succeeded")
	}
	again, err := Adopt(spec, inst.PID, inst.StartTicks)
	if err != nil {
		t.Fatal(err)
	}
	waitLine(t, c2, "stdout: while-detached")
	if strings.Contains(c2.text(), "before") {
		t.Errorf("the adopter passed on output the first reader had read:\n%s", c2.text())
	}
	if err := again.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	again.WaitOutput()
	if !strings.Contains(again.Exit(), "exit status is unknown") {
		t.Errorf("Exit() = %q", again.Exit())
	}
}

func waitLine(t *testing.T, c *collector, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.text(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output:\n%s", want, c.text())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
