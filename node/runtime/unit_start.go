package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/internal/wait"
	"github.com/lifeboat/lifeboat/transfer"
)

// A unit's starts: what it starts from (a committed checkpoint, an older
// one when that fails, or nothing) and the start itself.

// start starts the process, restored from `from` (verified first) or
// fresh — once the supervisor is not fenced.
func (u *unit) start(from *fsm.CheckpointRecord) (*os.Process, Result, error) {
	for u.s.isFenced() {
		if !wait.Sleep(u.ctx, 50*time.Millisecond) {
			return nil, Result{}, u.ctx.Err()
		}
	}
	w := u.workload()
	res := Result{Workload: w.Spec.ID, Epoch: w.Epoch}
	begin := time.Now()
	if proc, ok := u.resumePrestart(from); ok {
		res.Seq, res.Digest, res.Bytes = from.Seq, from.Digest, from.Bytes
		res.PID, res.Took = proc.Pid, time.Since(begin)
		return proc, res, nil
	}
	if err := u.ctx.Err(); err != nil {
		return nil, res, err
	}
	dir := ""
	if from != nil {
		var err error
		if dir, err = u.localCheckpoint(w, *from); err != nil {
			return nil, res, err
		}
		res.Seq, res.Digest, res.Bytes = from.Seq, from.Digest, from.Bytes
	}
	ctx, cancel := context.WithTimeout(u.ctx, checkpointTimeout)
	defer cancel()
	if from != nil && from.LazyFrom != "" {
		return u.startLazy(ctx, w, dir, *from, res, begin)
	}
	proc, err := u.ck.Start(ctx, w, dir)
	res.Took = time.Since(begin)
	if err != nil {
		return nil, res, err
	}
	res.PID = proc.Pid
	return proc, res, nil
}

// localCheckpoint is the files directory of the committed checkpoint
// from in this node's store, fetched first if the store lacks it, and
// verified against its committed digest.
func (u *unit) localCheckpoint(w Workload, from fsm.CheckpointRecord) (string, error) {
	c, err := u.s.store.Get(w.Spec.ID, from.Seq)
	if errors.Is(err, transfer.ErrNotFound) {
		// Granted here without a copy (no standby had room, or a
		// preempted workload placed anew): fetch it from one.
		fctx, cancel := context.WithTimeout(u.ctx, checkpointTimeout)
		ferr := u.s.cluster.Fetch(fctx, w.Spec.ID, from)
		cancel()
		if ferr != nil {
			return "", fmt.Errorf("%w: checkpoint #%d of %s is not in this node's store and fetching it failed: %v", ErrRestore, from.Seq, w.Spec.ID, ferr)
		}
		c, err = u.s.store.Get(w.Spec.ID, from.Seq)
	}
	if err != nil {
		return "", fmt.Errorf("%w: checkpoint #%d of %s is not in this node's store: %v", ErrRestore, from.Seq, w.Spec.ID, err)
	}
	if err := u.s.store.Verify(c, from.Digest); err != nil {
		return "", fmt.Errorf("%w: refusing checkpoint #%d of %s: %v", ErrRestore, from.Seq, w.Spec.ID, err)
	}
	return c.FilesDir(), nil
}

// resumePrestart resumes the process restored from `from` ahead of the
// grant (Supervisor.PrestartLazy), if there is one; any other prestart of
// the workload is gone when it returns.
func (u *unit) resumePrestart(from *fsm.CheckpointRecord) (*os.Process, bool) {
	p, err := u.s.claimPrestart(u.ctx, u.spec.ID, from)
	if err != nil {
		return nil, false
	}
	if err := resume(p.proc); err != nil {
		u.s.log.Warn("resuming the lazy restore prepared before the grant failed; restoring again", "workload", u.spec.ID, "err", err)
		p.kill()
		return nil, false
	}
	u.s.log.Info("resumed the lazy restore prepared before the grant", "workload", u.spec.ID, "seq", from.Seq, "pid", p.proc.Pid)
	u.lazy.begin(p.lazy)
	return p.proc, true
}

func startMessage(r Result) string {
	if r.Seq == 0 {
		return fmt.Sprintf("started (pid %d)", r.PID)
	}
	return fmt.Sprintf("restored from checkpoint #%d (pid %d)", r.Seq, r.PID)
}

// afterCrash reports a crash and picks what to restart from: the latest
// committed checkpoint, so that as little state as possible is lost.
func (u *unit) afterCrash(exit error, backoff time.Duration) *fsm.CheckpointRecord {
	msg := fmt.Sprintf("exited (%v); restarting in %v", exit, backoff)
	u.s.log.Warn("workload exited", "workload", u.spec.ID, "exit", exit, "backoff", backoff)
	u.report(fsm.WorkloadFailed, msg)
	if u.spec.Checkpoint.Mode == fsm.ModeNone {
		return nil
	}
	return u.latest()
}

// latest is the newest complete committed checkpoint, or nil. A lazy one
// is restored only by the start right after its move (Desired.From): its
// memory is gone once that restore fetched it.
func (u *unit) latest() *fsm.CheckpointRecord {
	recs := u.s.cluster.Committed(u.spec.ID)
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].LazyFrom == "" {
			return &recs[i]
		}
	}
	return nil
}

// fallback decides what the next start tries after a failed one: a
// checkpoint that cannot be restored (missing, corrupt, refused by CRIU)
// gives way to the committed one before it, and the oldest to a fresh
// start; the failed report before names the reason.
func (u *unit) fallback(from *fsm.CheckpointRecord) *fsm.CheckpointRecord {
	if from == nil {
		return nil
	}
	recs := u.s.cluster.Committed(u.spec.ID)
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Seq < from.Seq && recs[i].LazyFrom == "" {
			u.s.log.Error("falling back to an older checkpoint", "workload", u.spec.ID, "failed", from.Seq, "next", recs[i].Seq)
			return &recs[i]
		}
	}
	u.s.log.Error("no older checkpoint; starting fresh", "workload", u.spec.ID, "failed", from.Seq)
	return nil
}
