// Package runtime starts and stops instances. The process driver runs each
// instance as a child process group on a loopback port.
package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

const (
	// DefaultStopGrace is the time between SIGTERM and SIGKILL.
	DefaultStopGrace = 30 * time.Second
	// killWait bounds the wait for a process group after SIGKILL.
	killWait = 5 * time.Second
	// tailLines is how many of its last output lines an instance keeps, to
	// say why it died.
	tailLines = 20
	// maxLine is the longest output line; longer ones are split.
	maxLine = 64 << 10
)

// Spec says what to run.
type Spec struct {
	ID string
	// Dir is the working directory, the release directory.
	Dir string
	// Command is run by /bin/sh -c. Starting it with "exec" makes the app
	// itself the group leader, so it also dies if the daemon is killed.
	Command string
	Env     []string
	Port    int
	// Output is called with each line the instance writes, stream "stdout"
	// or "stderr". It must not block for long; it is called from the
	// goroutine that reads the pipe.
	Output func(stream, line string)
}

// Instance is a handle on a running process group. One goroutine waits for
// the process; Done is closed when it has exited.
type Instance struct {
	ID         string
	Port       int
	PID        int
	StartTicks uint64

	done     chan struct{}
	exitCode int    // valid after done; -1 when killed by a signal
	exitDesc string // valid after done: "exit code 1", "killed by signal …"

	mu   sync.Mutex // guards tail
	tail []string
}

// Start starts spec's command in a new process group. The process gets
// SIGKILL if the daemon dies (on Linux, via the parent-death signal).
func Start(spec Spec) (*Instance, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd := exec.Command("/bin/sh", "-c", spec.Command)
	cmd.Dir = spec.Dir
	cmd.Env = spec.Env
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.SysProcAttr = sysProcAttr()
	err = spawn(cmd)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("starting instance %s: %w", spec.ID, err)
	}
	inst := &Instance{ID: spec.ID, Port: spec.Port, PID: cmd.Process.Pid, done: make(chan struct{})}
	inst.StartTicks, _ = StartTicks(inst.PID)
	var readers sync.WaitGroup
	readers.Add(2)
	go inst.read(outR, "stdout", spec.Output, &readers)
	go inst.read(errR, "stderr", spec.Output, &readers)
	go inst.wait(cmd)
	return inst, nil
}

func (i *Instance) read(r io.ReadCloser, stream string, out func(string, string), wg *sync.WaitGroup) {
	defer wg.Done()
	defer r.Close()
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			s := string(trimNewline(line))
			i.remember(s)
			if out != nil {
				out(stream, s)
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

func (i *Instance) remember(line string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.tail) == tailLines {
		i.tail = i.tail[1:]
	}
	i.tail = append(i.tail, line)
}

func (i *Instance) wait(cmd *exec.Cmd) {
	err := cmd.Wait()
	i.exitCode, i.exitDesc = describeExit(cmd.ProcessState, err)
	// The leader is gone; take down anything it left in its group.
	syscall.Kill(-i.PID, syscall.SIGKILL)
	close(i.done)
}

func describeExit(ps *os.ProcessState, err error) (int, string) {
	if ps == nil {
		return -1, fmt.Sprintf("wait failed: %v", err)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, fmt.Sprintf("killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	}
	return ps.ExitCode(), fmt.Sprintf("exit code %d", ps.ExitCode())
}

// Done is closed when the instance's process has exited.
func (i *Instance) Done() <-chan struct{} { return i.done }

// Exit describes how the process ended ("exit code 1"); call after Done.
func (i *Instance) Exit() string {
	<-i.done
	return i.exitDesc
}

// LastLines returns the last lines the instance wrote.
func (i *Instance) LastLines() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]string(nil), i.tail...)
}

// Stop ends the instance: SIGTERM to its process group, up to grace for it
// to exit, then SIGKILL to the whole group and a bounded wait. It returns
// once the process has exited or the bounded wait is over.
func (i *Instance) Stop(grace time.Duration) error {
	select {
	case <-i.done:
		return nil
	default:
	}
	syscall.Kill(-i.PID, syscall.SIGTERM)
	select {
	case <-i.done:
		return nil
	case <-time.After(grace):
	}
	syscall.Kill(-i.PID, syscall.SIGKILL)
	select {
	case <-i.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("instance %s (pid %d) did not exit %s after SIGKILL", i.ID, i.PID, killWait)
	}
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
