package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// sysProcAttr puts the child in its own process group and asks the kernel to
// SIGKILL it when the thread that started it dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// The parent-death signal fires when the *thread* that forked the child
// exits, not the process (golang/go#27505). Every child is therefore started
// from one goroutine locked to a thread that never exits.
var spawnCh = make(chan spawnReq)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func init() {
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the daemon
		for req := range spawnCh {
			req.done <- req.cmd.Start()
		}
	}()
}

func spawn(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	spawnCh <- spawnReq{cmd: cmd, done: done}
	return <-done
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
