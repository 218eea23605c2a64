package node

import (
	"context"
	"fmt"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/peer"
	"github.com/lifeboat/lifeboat/placement"
)

// start starts the planned move it if its workload does not move yet and
// a target has room; false ends the round (paced, or Raft refused).
func (e *evacuation) start(ctx context.Context, r *evacRound, it placement.PlannedMove) bool {
	w := it.Workload
	from := r.leaving[w.Holder]
	if e.busy(w.ID) {
		return true
	}
	room := e.withReservations(r.nodes, w.ID, r.now) // nodes as this workload finds them
	target, err := placement.EvacuationTarget(w, placementNode(from), room)
	if err != nil {
		e.noTarget(ctx, r, w, room, err)
		return true
	}
	if !e.limiter.Allow() {
		return false
	}
	if !e.claim(w.ID, move{on: target, need: w.Request.Need}) {
		return true
	}
	// The claim holds the target's room (withReservations); its load and
	// in-flight count are taken here.
	r.took(target, e.cfg.Inflight)
	if !it.Fits {
		e.metrics.late.Inc()
		e.log.Warn("evacuation will likely not finish before the deadline", "workload", w.ID, "from", from.Name,
			"estimate", it.Est.Round(time.Millisecond), "deadline", from.Deadline)
	}
	reason := "drain"
	if from.State == fsm.NodeDoomed {
		reason = "doomed"
	}
	// Recorded here, in plan order, before any move starts: the record
	// also keeps a next leader from starting the move again.
	mig := fsm.Migration{ID: migrationID(w.ID, r.now), Workload: w.ID, From: from.Name, To: target, Reason: reason}
	idx, _, err := e.host.apply(ctx, fsm.MigrationBegin{Migration: mig, At: e.now()})
	if err != nil {
		e.release(w.ID)
		e.log.Warn("evacuation not recorded", "workload", w.ID, "err", err)
		return false
	}
	e.startMove(ctx, peer.MigrateRequest{ID: w.ID, To: target, Reason: reason, Migration: mig.ID, Index: idx}, from.Name)
	return true
}

// noTarget handles a workload no node has room for: it waits while a
// target is busy or a preemption makes room for it, else preempts less
// important work where that makes room.
func (e *evacuation) noTarget(ctx context.Context, r *evacRound, w placement.Workload, room []placement.Node, err error) {
	switch {
	case r.full:
		return // a target is busy: wait for a slot before preempting anything
	case e.reservedFor(w.ID, r.now):
		return // a preemption is making room for it
	}
	if on, victims := placement.PreemptionPlan(w, w.Holder, room, r.all, r.moving); len(victims) > 0 {
		e.preempt(ctx, w, on, victims)
		return
	}
	e.log.Warn("no target for an evacuation", "workload", w.ID, "from", w.Holder, "err", err)
}

// preempt makes room on node on for w by taking victims (less important
// work held there) off it: each is checkpointed, stopped and returned to
// pending, to be placed again where capacity allows. The room is reserved
// for w until its move starts.
func (e *evacuation) preempt(ctx context.Context, w placement.Workload, on string, victims []placement.Workload) {
	e.reserve(on, w.ID, w.Request.Need, e.now().Add(restoreWait))
	for _, v := range victims {
		if !e.claim(v.ID, move{on: on}) {
			continue
		}
		reason := fmt.Sprintf("preempted for %s (%s)", w.ID, w.Priority)
		mig := fsm.Migration{ID: migrationID(v.ID, e.now()), Workload: v.ID, From: on, Reason: reason}
		idx, _, err := e.host.apply(ctx, fsm.MigrationBegin{Migration: mig, At: e.now()})
		if err != nil {
			e.release(v.ID)
			e.log.Warn("preemption not recorded", "workload", v.ID, "err", err)
			return
		}
		e.metrics.preemptions.Inc()
		e.startMove(ctx, peer.MigrateRequest{ID: v.ID, Park: true, Reason: reason, Migration: mig.ID, Index: idx}, on)
	}
}

// retryReservation is how long the room of a failed move stays held for
// its retry.
const retryReservation = 10 * time.Second

// startMove runs one move on its holder in a goroutine the evacuation
// owns; the claim on req.ID ends with it.
func (e *evacuation) startMove(ctx context.Context, req peer.MigrateRequest, from string) {
	id, to := req.ID, req.To
	e.log.Info("evacuating", "workload", id, "from", from, "to", to, "reason", req.Reason, "park", req.Park)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer e.release(id)
		begin := e.mono()
		res, err := e.host.migrateVia(ctx, req)
		took := e.mono().Sub(begin)
		if err != nil {
			e.moveFailed(ctx, req, from, took, err)
			return
		}
		e.metrics.moves.WithLabelValues("ok").Observe(took.Seconds())
		if !req.Park {
			e.measured(res.Bytes, took)
		}
		e.log.Info("evacuated", "workload", id, "from", from, "to", to, "took", took.Round(time.Millisecond))
	}()
}

// moveFailed records a failed move; a move's room stays held for its
// retry, as it may be room a preemption made.
func (e *evacuation) moveFailed(ctx context.Context, req peer.MigrateRequest, from string, took time.Duration, err error) {
	if m, ok := e.moving(req.ID); ok && m.on != "" && !req.Park {
		e.reserve(m.on, req.ID, m.need, e.now().Add(retryReservation))
	}
	e.metrics.moves.WithLabelValues("failed").Observe(took.Seconds())
	e.log.Error("evacuation move failed", "workload", req.ID, "from", from, "to", req.To, "err", err)
	e.host.applyLogged(context.WithoutCancel(ctx), fsm.MigrationPhase{ID: req.Migration, Phase: fsm.PhaseFailed, Error: err.Error(), At: e.now()})
}
