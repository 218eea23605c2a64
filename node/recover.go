package node

import (
	"context"
	"fmt"
	"slices"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/placement"
)

// Silent loss, on the leader. A node whose lease lapsed is lost; its
// workloads are re-granted only RegrantAfter (TTL·ρ + lock delay) after
// that lease ended, by when the holder has frozen them (fence.go).

// recoverLost re-grants the workloads of nodes that vanished without a
// notice (their lease lapsed: lost) or left, once the lease bound allows:
// to a node holding the latest committed checkpoint first, under the next
// epoch, restored from that checkpoint.
func (e *evacuation) recoverLost(ctx context.Context) {
	now, mono := e.now(), e.mono()
	gone := map[string]fsm.Node{}
	for _, rec := range e.replica.Nodes() {
		if rec.State == fsm.NodeLost || rec.State == fsm.NodeLeft {
			gone[rec.Name] = rec
		}
	}
	if len(gone) == 0 {
		return
	}
	workloads := e.replica.Workloads()
	nodes := placementNodes(e.replica.Nodes(), workloads, e.host.members())
	for i := range nodes {
		if _, ok := gone[nodes[i].Name]; ok {
			nodes[i].Eligible = false
		}
	}
	for _, w := range workloads {
		h, ok := gone[w.Assignment.Holder]
		if !ok || w.Assignment.Epoch == 0 || w.Assignment.State == fsm.WorkloadStopped {
			continue
		}
		if h.State == fsm.NodeLost && mono.Before(e.host.leaseEnd(h.Name).Add(e.cfg.RegrantAfter)) {
			continue // the lost holder may still think it holds the lease
		}
		if e.busy(w.Spec.ID) {
			continue
		}
		target, err := placement.EvacuationTarget(placementWorkload(w), placementNode(h), e.withReservations(nodes, w.Spec.ID, now))
		if err != nil {
			e.log.Warn("no node can take a lost holder's workload", "workload", w.Spec.ID, "holder", h.Name, "err", err)
			continue
		}
		if !e.claim(w.Spec.ID, move{on: target, need: needOf(w.Spec)}) {
			continue
		}
		e.regrant(ctx, w, h.Name, target)
	}
}

// regrant gives a lost holder's workload to target and follows it until
// it runs there, recording the move.
func (e *evacuation) regrant(ctx context.Context, w fsm.Workload, from, target string) {
	id := w.Spec.ID
	mig := fsm.Migration{ID: migrationID(id, e.now()), Workload: id, From: from, To: target, Reason: "lost", Phase: fsm.PhasePlanned}
	if _, _, err := e.host.apply(ctx, fsm.MigrationBegin{Migration: mig, At: e.now()}); err != nil {
		e.release(id)
		e.log.Warn("re-grant not recorded", "workload", id, "err", err)
		return
	}
	standbys := slices.DeleteFunc(slices.Clone(w.Assignment.Standbys), func(s string) bool { return s == target || s == from })
	idx, _, err := e.host.apply(ctx, fsm.WorkloadGrant{Workload: id, Holder: target, Standbys: standbys, PrevEpoch: w.Assignment.Epoch, At: e.now()})
	if err != nil {
		e.release(id)
		e.host.applyLogged(ctx, fsm.MigrationPhase{ID: mig.ID, Phase: fsm.PhaseFailed, Error: err.Error(), At: e.now()})
		return
	}
	e.log.Warn("re-granted a lost holder's workload", "workload", id, "from", from, "to", target, "epoch", idx)
	e.host.applyLogged(ctx, fsm.MigrationPhase{ID: mig.ID, Phase: fsm.PhaseRestoring, Epoch: idx, At: e.now()})
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer e.release(id)
		phase := fsm.MigrationPhase{ID: mig.ID, Phase: fsm.PhaseDone, At: e.now()}
		if err := e.host.waitRunning(ctx, id, idx); err != nil {
			phase.Phase, phase.Error = fsm.PhaseFailed, fmt.Sprint(err)
		}
		phase.At = e.now()
		e.host.applyLogged(context.WithoutCancel(ctx), phase)
	}()
}
