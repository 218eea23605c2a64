package runtime

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/transfer"
)

// checkpointTimeout bounds one checkpoint (a 1 GiB dump takes ~1 s here).
const checkpointTimeout = 2 * time.Minute

// checkpoint takes a leave-running checkpoint into the store and commits it.
func (u *unit) checkpoint(proc *os.Process) (Result, error) {
	w := u.workload()
	res := Result{Workload: w.Spec.ID, Epoch: w.Epoch}
	if w.Spec.Checkpoint.Mode == fsm.ModeNone {
		return res, ErrNoCheckpoint
	}
	ctx, cancel := context.WithTimeout(u.ctx, checkpointTimeout)
	defer cancel()
	begin := time.Now()
	st, err := u.s.store.Stage(w.Spec.ID)
	if err != nil {
		return res, fmt.Errorf("%w: staging: %v", ErrCheckpoint, err)
	}
	stats, err := u.ck.Checkpoint(ctx, w, proc, st.Dir, true)
	if err != nil {
		_ = st.Abort()
		return res, err
	}
	c, err := u.seal(ctx, st, w)
	if err != nil {
		return res, err
	}
	res.Seq, res.Digest, res.Bytes = c.Manifest.Seq, c.Digest, c.Manifest.Bytes()
	res.Freeze, res.Took = stats.Freeze, time.Since(begin)
	return res, nil
}

// periodicCheckpoint takes a periodic checkpoint; a failed one is logged
// and the next tick tries again.
func (u *unit) periodicCheckpoint(proc *os.Process) {
	if _, err := u.checkpoint(proc); err != nil {
		u.s.log.Warn("periodic checkpoint failed", "workload", u.spec.ID, "err", err)
	}
}

// seal seals a staged checkpoint and commits it through the cluster; a
// checkpoint the cluster refuses is removed again.
func (u *unit) seal(ctx context.Context, st *transfer.Staging, w Workload) (*transfer.Checkpoint, error) {
	c, err := u.sealLocal(st, w, false)
	if err != nil {
		return nil, err
	}
	if err := u.s.cluster.Commit(ctx, w.Spec.ID, w.Epoch, c); err != nil {
		_ = u.s.store.Remove(w.Spec.ID, c.Manifest.Seq)
		return nil, fmt.Errorf("%w: committing checkpoint #%d: %v", ErrCheckpoint, c.Manifest.Seq, err)
	}
	return c, nil
}

// sealLocal seals a staged checkpoint under the workload's next seq; a
// volatile one without fsync (transfer.Manifest.Volatile).
func (u *unit) sealLocal(st *transfer.Staging, w Workload, volatile bool) (*transfer.Checkpoint, error) {
	info := transfer.Info{Workload: w.Spec.ID, Epoch: w.Epoch, Seq: u.s.cluster.NextSeq(w.Spec.ID),
		Mode: w.Spec.Checkpoint.Mode, CreatedAt: time.Now(), Volatile: volatile}
	c, err := u.s.store.Seal(st, info)
	if err != nil {
		_ = st.Abort()
		return nil, fmt.Errorf("%w: sealing: %v", ErrCheckpoint, err)
	}
	return c, nil
}

// committed reports whether Raft committed checkpoint c.
func (u *unit) committed(c *transfer.Checkpoint) bool {
	for _, rec := range u.s.cluster.Committed(u.spec.ID) {
		if rec.Seq == c.Manifest.Seq && rec.Digest == c.Digest {
			return true
		}
	}
	return false
}

// dropUncommitted removes checkpoint c (if any) from the store unless
// Raft committed it: a move that failed may or may not have.
func (u *unit) dropUncommitted(c *transfer.Checkpoint) {
	if c != nil && !u.committed(c) {
		_ = u.s.store.Remove(u.spec.ID, c.Manifest.Seq)
	}
}
