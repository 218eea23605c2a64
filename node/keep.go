package node

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/lifeboat/lifeboat/node/keeper"
)

// The keeper (node/keeper) is the fence that works while this agent is
// stopped: a separate process that freezes the workloads when the lease
// the agent last wrote down runs out. fence.keeperLoop starts it and keeps its
// state file current.

// keeperLoop starts the keeper (command + --state DATA_DIR/keeper.json)
// and writes the lease's end and the workloads' process groups whenever
// they change. The keeper is stopped when the node closes.
func (f *fence) keeperLoop(ctx context.Context, command []string, dataDir string) {
	path := filepath.Join(dataDir, "keeper.json")
	_ = os.Remove(path) // a previous agent's: its lease is not ours
	args := append(slices.Clone(command[1:]), "--state", path)
	cmd := exec.Command(command[0], args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // not stopped or killed with the agent's group
	if err := cmd.Start(); err != nil {
		f.log.Error("the fence keeper did not start: a stopped agent cannot fence its workloads", "err", err)
		return
	}
	f.log.Info("fence keeper started", "pid", cmd.Process.Pid, "state", path)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		// A closing agent stops its workloads itself.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(2 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	var last keeper.State
	t := time.NewTicker(fenceInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-exited:
			f.log.Error("the fence keeper exited", "err", err)
			exited <- err // for the deferred wait
			return
		case <-t.C:
		}
		s := keeper.State{ValidUntil: f.leases.validUntil(), Groups: f.sup.PIDs(), Agent: os.Getpid()}
		if s.ValidUntil == last.ValidUntil && slices.Equal(s.Groups, last.Groups) {
			continue
		}
		if err := keeper.Write(path, s); err != nil {
			f.log.Warn("fence keeper state not written", "err", err)
			continue
		}
		last = s
	}
}
