package node

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/peer"
	"github.com/lifeboat/lifeboat/node/runtime"
	"github.com/lifeboat/lifeboat/transfer"
)

// handoff is one move on its holder: the runtime's unit calls Move with
// the final checkpoint (runtime.Mover), and the move's phases are
// recorded in its Migration record.
type handoff struct {
	mv        *moves
	ctx       context.Context // the move's: recording outlives it
	req       peer.MigrateRequest
	standbys  []string // the workload's standbys when the move began
	migration string   // the Migration record's id
	// epoch is the epoch the target was granted; zero until the grant.
	// Written by Move on the unit's goroutine, read after Handoff returns.
	epoch uint64
}

var _ runtime.Mover = (*handoff)(nil)

// begin records the move: a new Migration record for a move asked by
// hand, the checkpointing phase of one the leader planned.
func (h *handoff) begin() error {
	mv := h.mv
	if h.migration != "" {
		h.phase(fsm.PhaseCheckpointing, 0, nil)
		return nil
	}
	h.migration = migrationID(h.req.ID, mv.now())
	mig := fsm.Migration{ID: h.migration, Workload: h.req.ID, From: mv.name, To: h.req.To, Reason: h.req.Reason, Phase: fsm.PhaseCheckpointing}
	if _, _, err := mv.prop.apply(h.ctx, fsm.MigrationBegin{Migration: mig, At: mv.now()}); err != nil {
		return fmt.Errorf("recording the migration: %w", err)
	}
	return nil
}

// phase records a phase of the move.
func (h *handoff) phase(p string, epoch uint64, err error) {
	c := fsm.MigrationPhase{ID: h.migration, Phase: p, Epoch: epoch, At: h.mv.now()}
	if err != nil {
		c.Error = err.Error()
	}
	h.mv.prop.applyLogged(context.WithoutCancel(h.ctx), c)
}

// finish records how the move ended and returns err.
func (h *handoff) finish(epoch uint64, err error) error {
	if err != nil {
		h.mv.metrics.migrations.WithLabelValues("failed").Inc()
		h.phase(fsm.PhaseFailed, epoch, err)
		return err
	}
	h.mv.metrics.migrations.WithLabelValues("ok").Inc()
	h.phase(fsm.PhaseDone, epoch, nil)
	return nil
}

// Move commits the final checkpoint c and hands the workload over: to
// the target under the next epoch, or back to pending for a park.
func (h *handoff) Move(ctx context.Context, w runtime.Workload, c *transfer.Checkpoint, lazy bool) error {
	h.phase(fsm.PhaseTransferring, 0, nil)
	if h.req.Park {
		return h.park(ctx, w, c)
	}
	epoch, err := h.grant(ctx, w, c, lazy)
	h.epoch = epoch
	return err
}

// park commits the final checkpoint (to the standbys) and returns the
// workload to pending under a CAS on its epoch; it returns once this
// node's replica shows the workload is no longer its.
func (h *handoff) park(ctx context.Context, w runtime.Workload, c *transfer.Checkpoint) error {
	mv := h.mv
	if c != nil {
		if err := mv.commits.commit(ctx, w.Spec.ID, w.Epoch, c); err != nil {
			return err
		}
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mv.timeout) // as in grant
	_, _, err := mv.prop.apply(actx, fsm.WorkloadPreempt{Workload: w.Spec.ID, PrevEpoch: w.Epoch, Reason: h.req.Reason, At: mv.now()})
	cancel()
	if err != nil {
		return fmt.Errorf("preempting %s: %w", w.Spec.ID, err)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreWait)
	defer cancel()
	return mv.rep.waitView(wctx, func(v *fsm.Machine) bool {
		cur, ok := v.Workload(w.Spec.ID)
		return !ok || cur.Assignment.Epoch != w.Epoch
	})
}

// grant commits the final checkpoint with the target among its holders
// and grants the workload to it under the next epoch; it returns that
// epoch once this node's replica shows the grant.
func (h *handoff) grant(ctx context.Context, w runtime.Workload, c *transfer.Checkpoint, lazy bool) (uint64, error) {
	mv, to := h.mv, h.req.To
	switch {
	case c != nil && lazy:
		if err := mv.commits.commitLazy(ctx, w.Spec.ID, w.Epoch, c, to); err != nil {
			return 0, err
		}
	case c != nil:
		if err := mv.commits.commit(ctx, w.Spec.ID, w.Epoch, c, to); err != nil {
			return 0, err
		}
	}
	rest := slices.DeleteFunc(slices.Clone(h.standbys), func(s string) bool { return s == to })
	grant := fsm.WorkloadGrant{Workload: w.Spec.ID, Holder: to, Standbys: rest, PrevEpoch: w.Epoch, At: mv.now()}
	// Not under ctx: the grant, once applied here, stops the unit whose
	// context ctx is — possibly before the leader's answer to a forwarded
	// apply arrives, which would report a committed grant as failed.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mv.timeout)
	idx, _, err := mv.prop.apply(actx, grant)
	cancel()
	if err != nil {
		// The outcome is unknown: the grant may have committed all the
		// same. Starting the workload here again would then run it twice,
		// so look for the grant in the replica first.
		unknown := errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, api.ErrUnavailable)
		if e, ok := h.grantSeen(ctx, w.Spec.ID, w.Epoch, to); unknown && ok {
			mv.log.Warn("the grant's answer was lost but the replica shows it", "workload", w.Spec.ID, "to", to, "epoch", e, "err", err)
			return e, nil
		}
		return 0, fmt.Errorf("granting %s to %s: %w", w.Spec.ID, to, err)
	}
	mv.crash.at(crashGranted)
	// The grant is committed: the workload is the target's now. Wait for
	// this node's replica to show it — even if the unit is stopped
	// meanwhile, which happens exactly because the replica shows it — so
	// that the supervisor never starts it here again.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreWait)
	defer cancel()
	err = mv.rep.waitView(wctx, func(v *fsm.Machine) bool {
		cur, ok := v.Workload(w.Spec.ID)
		return !ok || cur.Assignment.Epoch >= idx
	})
	return idx, err
}

// grantSeen waits briefly for this node's replica to show id granted to
// `to` after epoch prev, and returns that epoch.
func (h *handoff) grantSeen(ctx context.Context, id string, prev uint64, to string) (uint64, bool) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*h.mv.timeout)
	defer cancel()
	var epoch uint64
	err := h.mv.rep.waitView(wctx, func(v *fsm.Machine) bool {
		cur, ok := v.Workload(id)
		if ok && cur.Assignment.Epoch > prev && cur.Assignment.Holder == to {
			epoch = cur.Assignment.Epoch
			return true
		}
		return ok && cur.Assignment.Epoch > prev // granted elsewhere: not ours to claim
	})
	return epoch, err == nil && epoch != 0
}
