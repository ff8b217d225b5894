package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

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

// KillGroup sends SIGKILL to the process group that pid led, if the leader
// is still the process that started at startTicks, or, once the leader is
// gone, to every process still in its group. It is how a daemon that died
// without stopping its instances cleans up after itself on its next start.
func KillGroup(pid int, startTicks uint64) int {
	if ticks, err := StartTicks(pid); err == nil {
		if ticks != startTicks {
			return 0 // the pid belongs to another process now
		}
		syscall.Kill(-pid, syscall.SIGKILL)
		return 1
	}
	killed := 0
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
