package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
)

// launch starts a workload's process as the DESIGN says: its own PID
// namespace (when root) with setsid inside it, stdin /dev/null, stdout and
// stderr appended to the log file, no inherited descriptors beyond 0-2
// (Go sets close-on-exec on everything it opens), no mount namespace,
// GODEBUG=multipathtcp=0 (CRIU cannot dump MPTCP sockets) and the epoch in
// LIFEBOAT_EPOCH. extraEnv comes last and wins. A shell command runs under
// the workload init (argv).
func launch(w Workload, extraEnv ...string) (*os.Process, error) {
	if len(w.Spec.Command) == 0 {
		return nil, fmt.Errorf("workload %s: empty command", w.Spec.ID)
	}
	if err := os.MkdirAll(w.Dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(w.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("workload %s: log file: %w", w.Spec.ID, err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	ownPIDNS := os.Geteuid() == 0
	args, err := argv(w, ownPIDNS)
	if err != nil {
		return nil, fmt.Errorf("workload %s: starting %s: %w", w.Spec.ID, filepath.Base(w.Spec.Command[0]), err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = w.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.Env = workloadEnv(w, extraEnv)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if ownPIDNS {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("workload %s: starting %s: %w", w.Spec.ID, filepath.Base(w.Spec.Command[0]), err)
	}
	return cmd.Process, nil
}

// workloadEnv is the environment of a workload: a minimal PATH, the spec's
// variables, lifeboat's own, then extra.
func workloadEnv(w Workload, extra []string) []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + w.Dir}
	keys := make([]string, 0, len(w.Spec.Env))
	for k := range w.Spec.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+w.Spec.Env[k])
	}
	env = append(env, w.Env...)
	env = append(env,
		"GODEBUG=multipathtcp=0",
		"LIFEBOAT_WORKLOAD="+w.Spec.ID,
		"LIFEBOAT_EPOCH="+strconv.FormatUint(w.Epoch, 10),
	)
	return append(env, extra...)
}
