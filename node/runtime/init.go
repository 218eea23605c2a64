package runtime

import (
	"os/exec"
	"path/filepath"
)

// The workload init: a shell run as PID 1 of its PID namespace ignores the
// SIGTERM of a stop (the kernel drops a signal to a namespace init that has
// no handler for it) or, with a trap, defers it until its foreground
// command ends, so every stop waited the whole StopTimeout and ended in
// SIGKILL. A shell command therefore runs under lifeboat-init
// (cmd/lifeboat-init), which forwards the signal and reaps orphans; CRIU
// dumps and restores it with the workload. Other programs run as PID 1
// themselves: an init would make a one-process workload a two-process one,
// whose lazy moves relay pages without fetching ahead (lazyRuns), and a
// program that handles SIGTERM (a Go one does) needs none.

// shells are the programs, by base name, run under the init.
var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true, "ksh": true,
	"mksh": true, "zsh": true, "yash": true, "posh": true}

// needsInit reports whether command runs under the workload init.
func needsInit(command []string) bool {
	return len(command) > 0 && shells[filepath.Base(command[0])]
}

// argv is the command line that starts w: its command, or, for a shell
// started in a PID namespace of its own (ownPIDNS) when the init is set,
// the init with the shell's path found here, as exec.Command would find it.
func argv(w Workload, ownPIDNS bool) ([]string, error) {
	cmd := w.Spec.Command
	if !ownPIDNS || w.Init == "" || !needsInit(cmd) {
		return cmd, nil
	}
	path, err := exec.LookPath(cmd[0])
	if err != nil {
		return nil, err
	}
	return append([]string{w.Init, "--", path}, cmd[1:]...), nil
}
