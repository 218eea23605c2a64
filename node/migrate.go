package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/runtime"
	"github.com/lifeboat/lifeboat/placement"
	"github.com/lifeboat/lifeboat/transfer"
)

// restoreWait bounds how long a move waits for the new holder to report
// the workload running.
const restoreWait = 2 * time.Minute

type migrateRequest struct {
	ID     string `json:"id"`
	To     string `json:"to"`
	Reason string `json:"reason"`
	// Migration is the record the leader planned the move under; empty
	// for a move asked by hand, which the holder records itself.
	Migration string `json:"migration,omitempty"`
	// Park takes the workload off its holder without a target: the final
	// checkpoint is committed and the workload is pending again
	// (preemption). To is empty.
	Park bool `json:"park,omitempty"`
	// Index is the leader's Raft index when it planned the move: the
	// holder checks the target on a replica at least that fresh.
	Index uint64 `json:"index,omitempty"`
}

// Migrate moves a workload to node to: on the holder, the final
// checkpoint (the process stops), the transfer of what to lacks, the
// commit, the grant of the next epoch to to, which restores it. It returns
// once to reports the workload running (or failed).
func (n *Node) Migrate(ctx context.Context, id, to string) (api.ActionResult, error) {
	return n.migrateVia(ctx, migrateRequest{ID: id, To: to, Reason: "manual"})
}

// migrateVia runs a move on the workload's holder.
func (n *Node) migrateVia(ctx context.Context, req migrateRequest) (api.ActionResult, error) {
	id, to := req.ID, req.To
	if err := n.checkMove(req); err != nil {
		return api.ActionResult{}, err
	}
	var res runtime.Result
	body, _ := json.Marshal(req)
	err := n.onHolder(ctx, id, "/v1/internal/migrate", body, &res, func() error {
		var err error
		res, err = n.migrateLocal(ctx, req)
		return err
	})
	ar := actionResult(res)
	if err == nil {
		ar.Holder = to
	}
	return ar, err
}

// migrationID names a new migration record.
func migrationID(workload string, now time.Time) string {
	return workload + "-" + strconv.FormatInt(now.UnixNano(), 36)
}

// checkMove refuses a move that cannot be made: to a node that cannot
// take the workload, or a park of a workload nobody holds.
func (n *Node) checkMove(req migrateRequest) error {
	if !req.Park {
		return n.checkTarget(req.ID, req.To)
	}
	switch w, ok := n.view().Workload(req.ID); {
	case !ok:
		return fmt.Errorf("%w: no workload %q", fsm.ErrNotFound, req.ID)
	case req.To != "":
		return fmt.Errorf("%w: a park names no target, got %q", api.ErrBadRequest, req.To)
	case w.Assignment.Holder == "" || w.Assignment.Epoch == 0:
		return fmt.Errorf("%w: %s has no holder to take it off", api.ErrConflict, req.ID)
	}
	return nil
}

// park commits the final checkpoint (to the standbys) and returns the
// workload to pending under a CAS on its epoch; it returns once this
// node's replica shows the workload is no longer its.
func (n *Node) park(ctx context.Context, w runtime.Workload, c *transfer.Checkpoint, reason string) error {
	if c != nil {
		if err := n.commitCheckpoint(ctx, w.Spec.ID, w.Epoch, c); err != nil {
			return err
		}
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.ForwardTimeout) // as in handoffTo
	_, _, err := n.apply(actx, fsm.WorkloadPreempt{Workload: w.Spec.ID, PrevEpoch: w.Epoch, Reason: reason, At: n.now()})
	cancel()
	if err != nil {
		return fmt.Errorf("preempting %s: %w", w.Spec.ID, err)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreWait)
	defer cancel()
	return n.waitView(wctx, func(v *fsm.Machine) bool {
		cur, ok := v.Workload(w.Spec.ID)
		return !ok || cur.Assignment.Epoch != w.Epoch
	})
}

// checkTarget refuses a move to a node that cannot take the workload.
func (n *Node) checkTarget(id, to string) error {
	v := n.view()
	w, ok := v.Workload(id)
	if !ok {
		return fmt.Errorf("%w: no workload %q", fsm.ErrNotFound, id)
	}
	if to == "" {
		return fmt.Errorf("%w: migrate: \"to\" names no node", api.ErrBadRequest)
	}
	if to == w.Assignment.Holder {
		return fmt.Errorf("%w: %s already holds %s", api.ErrConflict, to, id)
	}
	rec, ok := v.Node(to)
	if !ok {
		return fmt.Errorf("%w: no node %q", fsm.ErrNotFound, to)
	}
	members := n.members()
	// A move by hand may go where the spec's placement preferences would
	// not: only eligibility, the mode and the room count.
	req := placement.Request{Workload: id, Mode: w.Spec.Checkpoint.Mode, Need: needOf(w.Spec)}
	err := placement.Fits(req, placementNodes([]fsm.Node{rec}, v.Workloads(), members)[0])
	var u *placement.Unfit
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &u):
		return fmt.Errorf("%w: %v", api.ErrConflict, err)
	case u.Reason == placement.ErrIneligible && (rec.State != fsm.NodeAlive || !memberAlive(members, to)):
		return fmt.Errorf("%w: node %s is not alive (%s)", api.ErrConflict, to, rec.State)
	case u.Reason == placement.ErrIneligible:
		return fmt.Errorf("%w: node %s is drained", api.ErrConflict, to)
	case u.Reason == placement.ErrMode:
		return fmt.Errorf("%w: node %s cannot run checkpoint mode %s (it offers %v)", api.ErrConflict, to, u.Mode, u.Modes)
	}
	return fmt.Errorf("%w: node %s has %d MiB and %d millicores free, %s needs %d MiB and %d millicores",
		api.ErrConflict, to, u.Free.MemoryMiB, u.Free.CPUMillis, id, u.Need.MemoryMiB, u.Need.CPUMillis)
}

// migrateLocal runs a move on this node, the holder.
func (n *Node) migrateLocal(ctx context.Context, req migrateRequest) (runtime.Result, error) {
	id, to := req.ID, req.To
	if req.Index > 0 {
		// The leader planned on its state; a lagging replica here would
		// refuse the target for room the leader saw freed.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := n.waitView(wctx, func(v *fsm.Machine) bool { return v.Index() >= req.Index })
		cancel()
		if err != nil {
			return runtime.Result{}, fmt.Errorf("%w: this node's replica did not reach index %d: %v", api.ErrUnavailable, req.Index, err)
		}
	}
	if err := n.checkMove(req); err != nil {
		return runtime.Result{}, err
	}
	w, _ := n.view().Workload(id)
	mig := fsm.Migration{ID: req.Migration, Workload: id, From: n.cfg.Name, To: to, Reason: req.Reason, Phase: fsm.PhaseCheckpointing}
	if mig.ID == "" {
		mig.ID = migrationID(id, n.now())
		if _, _, err := n.apply(ctx, fsm.MigrationBegin{Migration: mig, At: n.now()}); err != nil {
			return runtime.Result{}, fmt.Errorf("recording the migration: %w", err)
		}
	} else {
		n.applyLogged(ctx, fsm.MigrationPhase{ID: mig.ID, Phase: fsm.PhaseCheckpointing, At: n.now()})
	}
	phase := func(p string, epoch uint64, err error) {
		c := fsm.MigrationPhase{ID: mig.ID, Phase: p, Epoch: epoch, At: n.now()}
		if err != nil {
			c.Error = err.Error()
		}
		n.applyLogged(context.WithoutCancel(ctx), c)
	}
	var epoch uint64
	lazy := n.lazyMove(w, to, req.Park)
	// Requests already admitted finish before the final checkpoint; new
	// ones wait at the fronts for the next holder.
	reopen := n.closeGate(ctx, id, w.Assignment.Epoch)
	res, err := n.localSup(func(sup *runtime.Supervisor) (runtime.Result, error) {
		return sup.Handoff(ctx, id, lazy, func(ctx context.Context, rw runtime.Workload, c *transfer.Checkpoint, lazy bool) error {
			phase(fsm.PhaseTransferring, 0, nil)
			var err error
			if req.Park {
				return n.park(ctx, rw, c, req.Reason)
			}
			epoch, err = n.handoffTo(ctx, rw, c, lazy, to, w.Assignment.Standbys)
			return err
		})
	})
	if err != nil {
		if epoch == 0 {
			reopen() // it runs on here
		}
		n.metrics.migrations.WithLabelValues("failed").Inc()
		phase(fsm.PhaseFailed, 0, err)
		return res, err
	}
	if req.Park {
		n.metrics.migrations.WithLabelValues("ok").Inc()
		phase(fsm.PhaseDone, 0, nil)
		return res, nil
	}
	phase(fsm.PhaseRestoring, epoch, nil)
	res.Epoch = epoch
	if err := n.waitRunning(ctx, id, epoch); err != nil {
		n.metrics.migrations.WithLabelValues("failed").Inc()
		phase(fsm.PhaseFailed, epoch, err)
		return res, err
	}
	n.metrics.migrations.WithLabelValues("ok").Inc()
	phase(fsm.PhaseDone, epoch, nil)
	return res, nil
}

// handoffTo commits the final checkpoint with to among its holders and
// grants the workload to to under the next epoch; it returns that epoch
// once this node's replica shows the grant.
func (n *Node) handoffTo(ctx context.Context, w runtime.Workload, c *transfer.Checkpoint, lazy bool, to string, standbys []string) (uint64, error) {
	switch {
	case c != nil && lazy:
		if err := n.commitLazy(ctx, w.Spec.ID, w.Epoch, c, to); err != nil {
			return 0, err
		}
	case c != nil:
		if err := n.commitCheckpoint(ctx, w.Spec.ID, w.Epoch, c, to); err != nil {
			return 0, err
		}
	}
	rest := slices.DeleteFunc(slices.Clone(standbys), func(s string) bool { return s == to })
	grant := fsm.WorkloadGrant{Workload: w.Spec.ID, Holder: to, Standbys: rest, PrevEpoch: w.Epoch, At: n.now()}
	// Not under ctx: the grant, once applied here, stops the unit whose
	// context ctx is — possibly before the leader's answer to a forwarded
	// apply arrives, which would report a committed grant as failed.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.ForwardTimeout)
	idx, _, err := n.apply(actx, grant)
	cancel()
	if err != nil {
		// The outcome is unknown: the grant may have committed all the
		// same. Starting the workload here again would then run it twice,
		// so look for the grant in the replica first.
		unknown := errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, api.ErrUnavailable)
		if e, ok := n.grantSeen(ctx, w.Spec.ID, w.Epoch, to); unknown && ok {
			n.log.Warn("the grant's answer was lost but the replica shows it", "workload", w.Spec.ID, "to", to, "epoch", e, "err", err)
			return e, nil
		}
		return 0, fmt.Errorf("granting %s to %s: %w", w.Spec.ID, to, err)
	}
	n.crashPoint(crashGranted)
	// The grant is committed: the workload is the target's now. Wait for
	// this node's replica to show it — even if the unit is stopped
	// meanwhile, which happens exactly because the replica shows it — so
	// that the supervisor never starts it here again.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreWait)
	defer cancel()
	err = n.waitView(wctx, func(v *fsm.Machine) bool {
		cur, ok := v.Workload(w.Spec.ID)
		return !ok || cur.Assignment.Epoch >= idx
	})
	return idx, err
}

// grantSeen waits briefly for this node's replica to show id granted to
// `to` after epoch prev, and returns that epoch.
func (n *Node) grantSeen(ctx context.Context, id string, prev uint64, to string) (uint64, bool) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*n.cfg.ForwardTimeout)
	defer cancel()
	var epoch uint64
	err := n.waitView(wctx, func(v *fsm.Machine) bool {
		cur, ok := v.Workload(id)
		if ok && cur.Assignment.Epoch > prev && cur.Assignment.Holder == to {
			epoch = cur.Assignment.Epoch
			return true
		}
		return ok && cur.Assignment.Epoch > prev // granted elsewhere: not ours to claim
	})
	return epoch, err == nil && epoch != 0
}

// waitRunning waits until the workload runs under epoch (or fails).
func (n *Node) waitRunning(ctx context.Context, id string, epoch uint64) error {
	ctx, cancel := context.WithTimeout(ctx, restoreWait)
	defer cancel()
	var last fsm.Assignment
	err := n.waitView(ctx, func(v *fsm.Machine) bool {
		w, ok := v.Workload(id)
		if !ok {
			return true
		}
		last = w.Assignment
		return w.Assignment.Epoch != epoch || w.Assignment.State == fsm.WorkloadRunning || w.Assignment.State == fsm.WorkloadFailed
	})
	switch {
	case err != nil:
		return fmt.Errorf("%w: %s did not report %s running under epoch %d: %v", api.ErrUnavailable, last.Holder, id, epoch, err)
	case last.Epoch != epoch:
		return fmt.Errorf("%w: %s moved on to epoch %d before it ran under %d", api.ErrConflict, id, last.Epoch, epoch)
	case last.State == fsm.WorkloadFailed:
		return fmt.Errorf("%w: %s on %s: %s", api.ErrRestoreFailed, id, last.Holder, last.Message)
	}
	return nil
}

// waitView waits until ok holds on this node's replica.
func (n *Node) waitView(ctx context.Context, ok func(*fsm.Machine) bool) error {
	for {
		v := n.view()
		changed := v.Notify()
		if ok(v) {
			return nil
		}
		select {
		case <-changed:
		case <-time.After(200 * time.Millisecond): // the view itself may switch (member ↔ Raft)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (n *Node) serveMigrate(w http.ResponseWriter, r *http.Request) {
	var req migrateRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1024)).Decode(&req); err != nil {
		api.WriteError(w, fmt.Errorf("%w: migrate request: %v", api.ErrBadRequest, err))
		return
	}
	if req.Reason == "" {
		req.Reason = "manual"
	}
	res, err := n.migrateLocal(r.Context(), req)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	writeJSON(w, res)
}
