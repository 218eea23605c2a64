package node

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/placement"
)

// recoverLost re-grants the workloads of nodes that vanished without a
// notice (their lease lapsed: lost) or left, once the lease bound allows:
// to a node holding the latest committed checkpoint first, under the next
// epoch, restored from that checkpoint.
func (n *Node) recoverLost(ctx context.Context) {
	v := n.rep.machine
	now, mono := n.now(), n.mono()
	slack := time.Duration(float64(n.cfg.LeaseTTL)*n.cfg.DriftBound) + n.cfg.LockDelay
	if n.cfg.UnsafeNoFencing {
		slack = 0
	}
	gone := map[string]fsm.Node{}
	for _, rec := range v.Nodes() {
		if rec.State == fsm.NodeLost || rec.State == fsm.NodeLeft {
			gone[rec.Name] = rec
		}
	}
	if len(gone) == 0 {
		return
	}
	nodes := n.placementNodes(v.Workloads())
	for i := range nodes {
		if _, ok := gone[nodes[i].Name]; ok {
			nodes[i].Eligible = false
		}
	}
	for _, w := range v.Workloads() {
		h, ok := gone[w.Assignment.Holder]
		if !ok || w.Assignment.Epoch == 0 || w.Assignment.State == fsm.WorkloadStopped {
			continue
		}
		if h.State == fsm.NodeLost && mono.Before(n.leaseEnd(h.Name).Add(slack)) {
			continue // the lost holder may still think it holds the lease
		}
		if n.evac.busy(w.Spec.ID) {
			continue
		}
		target, err := evacuationTarget(w, h, n.evac.withReservations(nodes, w.Spec.ID, now))
		if err != nil {
			n.log.Warn("no node can take a lost holder's workload", "workload", w.Spec.ID, "holder", h.Name, "err", err)
			continue
		}
		if !n.evac.claim(w.Spec.ID, move{on: target, need: placement.Resources{MemoryMiB: w.Spec.Resources.MemoryMiB, CPUMillis: w.Spec.Resources.CPUMillis}}) {
			continue
		}
		n.regrant(ctx, w, h.Name, target)
	}
}

// regrant gives a lost holder's workload to target and follows it until
// it runs there, recording the move.
func (n *Node) regrant(ctx context.Context, w fsm.Workload, from, target string) {
	id := w.Spec.ID
	mig := fsm.Migration{ID: migrationID(id, n.now()), Workload: id, From: from, To: target, Reason: "lost", Phase: fsm.PhasePlanned}
	if _, _, err := n.apply(ctx, fsm.MigrationBegin{Migration: mig, At: n.now()}); err != nil {
		n.evac.release(id)
		n.log.Warn("re-grant not recorded", "workload", id, "err", err)
		return
	}
	standbys := slices.DeleteFunc(slices.Clone(w.Assignment.Standbys), func(s string) bool { return s == target || s == from })
	idx, _, err := n.apply(ctx, fsm.WorkloadGrant{Workload: id, Holder: target, Standbys: standbys, PrevEpoch: w.Assignment.Epoch, At: n.now()})
	if err != nil {
		n.evac.release(id)
		n.applyLogged(ctx, fsm.MigrationPhase{ID: mig.ID, Phase: fsm.PhaseFailed, Error: err.Error(), At: n.now()})
		return
	}
	n.log.Warn("re-granted a lost holder's workload", "workload", id, "from", from, "to", target, "epoch", idx)
	n.applyLogged(ctx, fsm.MigrationPhase{ID: mig.ID, Phase: fsm.PhaseRestoring, Epoch: idx, At: n.now()})
	n.evac.wg.Add(1)
	go func() {
		defer n.evac.wg.Done()
		defer n.evac.release(id)
		phase := fsm.MigrationPhase{ID: mig.ID, Phase: fsm.PhaseDone, At: n.now()}
		if err := n.waitRunning(ctx, id, idx); err != nil {
			phase.Phase, phase.Error = fsm.PhaseFailed, fmt.Sprint(err)
		}
		phase.At = n.now()
		n.applyLogged(context.WithoutCancel(ctx), phase)
	}()
}
