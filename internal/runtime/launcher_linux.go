package runtime

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsyscall "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// LauncherArg, as slipway's first argument, makes it the launcher of an
// instance under Landlock: Go runs no code of ours between fork and exec,
// so the daemon starts its own binary again, which confines itself and
// then execs the instance's command in its place (same pid). The
// arguments that follow are "--ro DIR" and "--rw DIR", any number, then
// "--" and the command line.
const LauncherArg = "__exec-instance"

// Launch is the launcher. It returns only if it failed, with the exit
// status to use; it never runs the command unconfined, unless the kernel
// has no Landlock at all (which the daemon says when it starts).
func Launch(args []string) int {
	ro, rw, argv, err := parseLauncherArgs(args)
	if err == nil {
		err = confine(ro, rw)
	}
	if err == nil {
		err = syscall.Exec(argv[0], argv, os.Environ())
	}
	fmt.Fprintf(os.Stderr, "slipway: starting the instance under Landlock: %v\n", err)
	return 126
}

func parseLauncherArgs(args []string) (ro, rw, argv []string, err error) {
	for len(args) >= 2 && (args[0] == "--ro" || args[0] == "--rw") {
		if args[0] == "--ro" {
			ro = append(ro, args[1])
		} else {
			rw = append(rw, args[1])
		}
		args = args[2:]
	}
	if len(args) < 2 || args[0] != "--" {
		return nil, nil, nil, errors.New("usage: " + LauncherArg + " [--ro DIR | --rw DIR]... -- COMMAND [ARG]...")
	}
	return ro, rw, args[1:], nil
}

// confine restricts this process, and what it will exec, to reading ro,
// the device files, and reading and writing rw; signals and abstract Unix
// sockets cannot reach outside its domain. The network is left alone: an
// app listens on its port and calls what it calls. Best effort: an older
// kernel enforces what it knows.
func confine(ro, rw []string) error {
	c := landlock.V11
	c.HandledAccessNet = 0
	return c.BestEffort().Restrict(
		landlock.RODirs(ro...).IgnoreIfMissing(),
		landlock.RWFiles(deviceFiles...).IgnoreIfMissing(),
		landlock.RWDirs(rw...),
	)
}

// LandlockABI is the Landlock ABI version the kernel offers, 0 without
// Landlock.
func LandlockABI() int {
	v, err := llsyscall.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	return v
}
