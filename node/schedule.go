package node

import (
	"context"
	"errors"
	"slices"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/placement"
)

// grantPending places every pending workload: placement picks a holder and
// standbys among eligible peers, and a WorkloadGrant gives the holder the
// first epoch. A workload nobody can take stays pending and is logged.
func (n *Node) grantPending(ctx context.Context) {
	workloads := n.rep.machine.Workloads()
	// Room a preemption freed for an evacuee is not given away.
	nodes := n.evac.withReservations(placementNodes(n.rep.machine.Nodes(), workloads, n.dir.members()), "", n.now())
	for _, w := range workloads {
		if w.Assignment.State != fsm.WorkloadPending {
			continue
		}
		req := requestFor(w.Spec)
		holder, err := placement.ChooseHolder(req, nodes)
		if err != nil {
			if errors.Is(err, placement.ErrNoCandidate) {
				n.log.Debug("workload waits for a holder", "workload", w.Spec.ID, "why", err)
			}
			continue
		}
		standbys := placement.ChooseStandbys(req, holder, nodes, w.Spec.Standbys)
		n.prop.applyLogged(ctx, fsm.WorkloadGrant{Workload: w.Spec.ID, Holder: holder, Standbys: standbys, At: n.now()})
		nodes = n.evac.withReservations(placementNodes(n.rep.machine.Nodes(), n.rep.machine.Workloads(), n.dir.members()), "", n.now())
	}
}

// refillStandbys keeps every placed workload at its standby count: a
// standby that is no longer eligible (lost, drained, gone) is replaced,
// and a missing one is added, by the same placement choice as at grant.
// Checkpoints then go to the new standby from the next one on.
func (n *Node) refillStandbys(ctx context.Context) {
	workloads := n.rep.machine.Workloads()
	nodes := placementNodes(n.rep.machine.Nodes(), workloads, n.dir.members())
	eligible := map[string]bool{}
	for _, nd := range nodes {
		eligible[nd.Name] = nd.Eligible
	}
	for _, w := range workloads {
		a := w.Assignment
		if a.Holder == "" || a.State == fsm.WorkloadPending || a.State == fsm.WorkloadStopped || w.Spec.Standbys == 0 {
			continue
		}
		keep := slices.DeleteFunc(slices.Clone(a.Standbys), func(s string) bool { return !eligible[s] || s == a.Holder })
		if len(keep) == len(a.Standbys) && len(keep) >= w.Spec.Standbys {
			continue
		}
		want := keep
		if len(keep) < w.Spec.Standbys {
			for _, s := range placement.ChooseStandbys(requestFor(w.Spec), a.Holder, nodes, w.Spec.Standbys+len(keep)) {
				if len(want) < w.Spec.Standbys && !slices.Contains(want, s) {
					want = append(want, s)
				}
			}
		}
		if slices.Equal(want, a.Standbys) {
			continue
		}
		n.log.Info("standbys changed", "workload", w.Spec.ID, "from", a.Standbys, "to", want)
		n.prop.applyLogged(ctx, fsm.WorkloadSetStandbys{Workload: w.Spec.ID, Standbys: want})
	}
}
