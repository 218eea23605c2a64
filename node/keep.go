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
// the agent last wrote down runs out. keeperLoop starts it and keeps its
// state file current.

// keeperPath is the keeper's state file.
func (n *Node) keeperPath() string { return filepath.Join(n.cfg.DataDir, "keeper.json") }

// keeperLoop starts the keeper (Config.KeeperCommand + --state PATH) and
// writes the lease's end and the workloads' process groups whenever they
// change. The keeper is stopped when the node closes.
func (n *Node) keeperLoop(ctx context.Context) {
	path := n.keeperPath()
	_ = os.Remove(path) // a previous agent's: its lease is not ours
	args := append(slices.Clone(n.cfg.KeeperCommand[1:]), "--state", path)
	cmd := exec.Command(n.cfg.KeeperCommand[0], args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // not stopped or killed with the agent's group
	if err := cmd.Start(); err != nil {
		n.log.Error("the fence keeper did not start: a stopped agent cannot fence its workloads", "err", err)
		return
	}
	n.log.Info("fence keeper started", "pid", cmd.Process.Pid, "state", path)
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
			n.log.Error("the fence keeper exited", "err", err)
			exited <- err // for the deferred wait
			return
		case <-t.C:
		}
		s := keeper.State{ValidUntil: n.leaseValidUntil(), Groups: n.sup.PIDs(), Agent: os.Getpid()}
		if s.ValidUntil == last.ValidUntil && slices.Equal(s.Groups, last.Groups) {
			continue
		}
		if err := keeper.Write(n.keeperPath(), s); err != nil {
			n.log.Warn("fence keeper state not written", "err", err)
			continue
		}
		last = s
	}
}
