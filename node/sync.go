package node

import (
	"context"
	"sync"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/internal/wait"
	"github.com/lifeboat/lifeboat/node/runtime"
)

// syncer keeps the supervisor running exactly the workloads the
// replicated state grants to this node.
type syncer struct {
	name string
	rep  *replica
	sup  follower // set by Node.startRuntime, before any loop runs

	mu sync.Mutex // guards index
	// index is the index of the newest replica the supervisor followed
	// (syncTo): it never follows an older one.
	index uint64
}

// follower runs what it is told to (runtime.Supervisor): Sync may be
// called from any goroutine; RetryReports too.
type follower interface {
	Sync(desired []runtime.Desired)
	RetryReports()
}

var _ follower = (*runtime.Supervisor)(nil)

// syncTo hands the supervisor what replica v grants to this node — unless
// v is older than a replica it already followed. Switching between the
// Raft replica and the mirror (a demotion, an orphaned voter) can show an
// older state, in which a workload since re-granted elsewhere is still
// this node's: Jepsen caught a demoted old holder starting it again under
// its finished epoch.
func (s *syncer) syncTo(v *fsm.Machine) {
	idx := v.Index()
	s.mu.Lock()
	if idx < s.index {
		s.mu.Unlock()
		return
	}
	s.index = idx
	s.mu.Unlock()
	s.sup.Sync(desired(v, s.name))
}

// loop follows the replica as it changes.
func (s *syncer) loop(ctx context.Context) {
	for {
		v := s.rep.view()
		changed := v.Notify()
		s.syncTo(v)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(time.Second): // the view itself may switch (member ↔ Raft)
		}
	}
}

// reportLoop sends again the workload state reports the cluster missed.
func (s *syncer) reportLoop(ctx context.Context) {
	for wait.Sleep(ctx, time.Second) {
		s.sup.RetryReports()
	}
}

// desired is what node should run according to replica v.
func desired(v *fsm.Machine, node string) []runtime.Desired {
	var out []runtime.Desired
	for _, w := range v.Workloads() {
		a := w.Assignment
		if a.Holder != node || a.Epoch == 0 || a.State == fsm.WorkloadStopped {
			continue
		}
		d := runtime.Desired{Spec: w.Spec, Epoch: a.Epoch}
		if k := len(w.Checkpoints); k > 0 {
			rec := w.Checkpoints[k-1]
			d.From = &rec
		}
		out = append(out, d)
	}
	return out
}
