package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// openPidfd returns a pidfd for pid, which stays bound to that process
// even if its pid is reused later.
func openPidfd(pid int) (int, error) {
	fd, _, errno := syscall.Syscall(unix.SYS_PIDFD_OPEN, uintptr(pid), 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// waitPidfd blocks until the process behind pidfd has exited.
func waitPidfd(pidfd int) {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, -1)
		if n > 0 || (err != nil && err != unix.EINTR) {
			return
		}
	}
}

// StartTicks reads a process's start time, in clock ticks since boot, from
// /proc/PID/stat. With the pid it identifies a process for good.
func StartTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStartTicks(string(b))
}

// statFields returns the fields after the command name, which may itself
// hold spaces and parentheses: field 3 of proc(5) is index 0.
func statFields(stat string) []string {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return nil
	}
	return strings.Fields(stat[end+1:])
}

func parseStartTicks(stat string) (uint64, error) {
	f := statFields(stat)
	if len(f) < 20 {
		return 0, fmt.Errorf("short /proc stat line")
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22, starttime
}

// KillGroup kills what is left of an instance that a daemon which died
// without stopping it left behind: everything in its cgroup if it has one
// (cgroup, "" if not), which is then removed; then its process group, if
// the leader pid is still the process that started at startTicks, or once
// the leader is gone, every process still in that group. It returns how
// many processes it found. It is how a daemon cleans up after an earlier
// one on its next start.
func KillGroup(pid int, startTicks uint64, cgroup string) int {
	killed := 0
	if cgroup != "" {
		killed = killCgroup(cgroup)
	}
	if ticks, err := StartTicks(pid); err == nil {
		if ticks != startTicks {
			return killed // the pid belongs to another process now
		}
		syscall.Kill(-pid, syscall.SIGKILL)
		return max(killed, 1)
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		f := statFields(string(b))
		if len(f) > 2 && f[2] == strconv.Itoa(pid) { // field 5, pgrp
			member, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			syscall.Kill(member, syscall.SIGKILL)
			killed++
		}
	}
	return killed
}

// proc names a process for good: its pid and start time.
type proc struct {
	pid   int
	ticks uint64
}

// signal sends sig to p if p is still that process.
func (p proc) signal(sig syscall.Signal) {
	if ticks, err := StartTicks(p.pid); err == nil && ticks == p.ticks {
		syscall.Kill(p.pid, sig)
	}
}

// processTree lists the processes that descend from leader, or share its
// process group or session, as /proc shows them now: without a cgroup,
// this is how the processes of an instance that left its group (setsid)
// are found, as long as their parent lives.
func processTree(leader int) []proc {
	type entry struct {
		proc
		ppid, pgrp, sid int
	}
	var all []entry
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		f := statFields(string(b))
		if len(f) < 20 {
			continue
		}
		e := entry{}
		e.pid, _ = strconv.Atoi(filepath.Base(filepath.Dir(path)))
		e.ppid, _ = strconv.Atoi(f[1])
		e.pgrp, _ = strconv.Atoi(f[2])
		e.sid, _ = strconv.Atoi(f[3])
		e.ticks, _ = strconv.ParseUint(f[19], 10, 64)
		all = append(all, e)
	}
	in := map[int]bool{leader: true}
	for grew := true; grew; { // parents may come after their children in /proc
		grew = false
		for _, e := range all {
			if !in[e.pid] && (in[e.ppid] || e.pgrp == leader || e.sid == leader) {
				in[e.pid], grew = true, true
			}
		}
	}
	var out []proc
	for _, e := range all {
		if in[e.pid] && e.pid != leader {
			out = append(out, e.proc)
		}
	}
	return out
}

// waitGone waits until none of procs runs any more (a zombie does not
// count), or timeout.
func waitGone(procs []proc, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, p := range procs {
		for p.running() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// running reports whether p still runs: the same process, not a zombie.
func (p proc) running() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return false
	}
	f := statFields(string(b))
	if len(f) < 20 || f[0] == "Z" {
		return false
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64)
	return err == nil && ticks == p.ticks
}
