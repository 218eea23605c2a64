package node

import (
	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/placement"
)

// The one conversion from the state machine's records to placement's
// inputs: every decision placement makes for this node starts here.

// requestFor is what a workload's spec asks of a holder.
func requestFor(s fsm.WorkloadSpec) placement.Request {
	return placement.Request{
		Workload: s.ID, Mode: s.Checkpoint.Mode,
		Need:   needOf(s),
		Prefer: s.Placement.Prefer, AvoidZones: s.Placement.AvoidZones, Clouds: s.Placement.Clouds,
	}
}

// needOf is the capacity a workload's spec requests.
func needOf(s fsm.WorkloadSpec) placement.Resources {
	return placement.Resources{MemoryMiB: s.Resources.MemoryMiB, CPUMillis: s.Resources.CPUMillis}
}

// placementNodes describes every recorded node (recs) with what it has
// left once workloads' requests are taken off its capacity. A node is
// eligible when gossip sees it alive (members), it is alive in the state
// machine and not drained.
func placementNodes(recs []fsm.Node, workloads []fsm.Workload, members map[string]gossip.Member) []placement.Node {
	used := map[string]placement.Resources{}
	load := map[string]int{}
	for _, w := range workloads {
		h := w.Assignment.Holder
		if h == "" {
			continue
		}
		u := used[h]
		u.MemoryMiB += w.Spec.Resources.MemoryMiB
		u.CPUMillis += w.Spec.Resources.CPUMillis
		used[h] = u
		load[h]++
	}
	out := make([]placement.Node, 0, len(recs))
	for _, rec := range recs {
		free := placement.Resources{
			MemoryMiB: rec.Capacity.MemoryMiB - used[rec.Name].MemoryMiB,
			CPUMillis: rec.Capacity.CPUMillis - used[rec.Name].CPUMillis,
		}
		out = append(out, placement.Node{
			Name: rec.Name, Zone: rec.Zone, Cloud: rec.Cloud, Modes: rec.Modes, Load: load[rec.Name], Free: free,
			Capacity: placement.Resources{MemoryMiB: rec.Capacity.MemoryMiB, CPUMillis: rec.Capacity.CPUMillis},
			Eligible: memberAlive(members, rec.Name) && rec.State == fsm.NodeAlive && !rec.Drained,
		})
	}
	return out
}

// memberAlive reports whether gossip sees node name alive.
func memberAlive(members map[string]gossip.Member, name string) bool {
	m, ok := members[name]
	return ok && m.State == gossip.MemberAlive
}

// placementNode is a node record as the node a workload leaves: its name
// and zone.
func placementNode(rec fsm.Node) placement.Node {
	return placement.Node{Name: rec.Name, Zone: rec.Zone, Cloud: rec.Cloud}
}

// placementWorkload is a workload as evacuation planning sees it.
func placementWorkload(w fsm.Workload) placement.Workload {
	pw := placement.Workload{
		ID: w.Spec.ID, Priority: w.Spec.Priority, Submitted: w.SubmittedAt,
		Holder: w.Assignment.Holder, Placed: w.Assignment.Epoch != 0,
		Request: requestFor(w.Spec), DumpsMemory: w.Spec.Checkpoint.Mode == fsm.ModeCRIU,
	}
	if k := len(w.Checkpoints); k > 0 {
		pw.Checkpoint = &placement.Checkpoint{Bytes: w.Checkpoints[k-1].Bytes, Holders: w.Checkpoints[k-1].Standbys}
	}
	return pw
}

// placementWorkloads converts every workload of ws.
func placementWorkloads(ws []fsm.Workload) []placement.Workload {
	out := make([]placement.Workload, len(ws))
	for i, w := range ws {
		out[i] = placementWorkload(w)
	}
	return out
}

// pendingExplainer returns what says why a workload waits (its
// PendingReason): placement.Explain over the nodes of the replica v as
// gossip (members) sees them now, "" for a workload that is not pending.
// The nodes are worked out once, at the first pending workload.
func pendingExplainer(v *fsm.Machine, members map[string]gossip.Member) func(fsm.Workload) string {
	var nodes []placement.Node
	return func(w fsm.Workload) string {
		if w.Assignment.State != fsm.WorkloadPending {
			return ""
		}
		if nodes == nil {
			nodes = placementNodes(v.Nodes(), v.Workloads(), members)
		}
		return placement.Explain(requestFor(w.Spec), nodes)
	}
}
