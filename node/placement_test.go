package node

import (
	"testing"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/placement"
)

// A node is eligible only when gossip sees it alive and the state machine
// has it alive and not drained; its free room and load count what it holds.
func TestPlacementNodes(t *testing.T) {
	capacity := fsm.Resources{MemoryMiB: 1024, CPUMillis: 1000}
	recs := []fsm.Node{
		{Name: "ok", Zone: "z", Cloud: "aws", Modes: []string{"app"}, Capacity: capacity, State: fsm.NodeAlive},
		{Name: "drained", Capacity: capacity, State: fsm.NodeDraining, Drained: true},
		{Name: "doomed", Capacity: capacity, State: fsm.NodeDoomed},
		{Name: "silent", Capacity: capacity, State: fsm.NodeAlive},
		{Name: "unknown", Capacity: capacity, State: fsm.NodeAlive},
	}
	members := map[string]gossip.Member{}
	for _, r := range recs[:3] {
		members[r.Name] = gossip.Member{Name: r.Name, State: gossip.MemberAlive}
	}
	members["silent"] = gossip.Member{Name: "silent", State: gossip.MemberDead}
	held := func(id, on string, mib, cpu int64) fsm.Workload {
		return fsm.Workload{Spec: fsm.WorkloadSpec{ID: id, Resources: fsm.Resources{MemoryMiB: mib, CPUMillis: cpu}},
			Assignment: fsm.Assignment{Holder: on}}
	}
	workloads := []fsm.Workload{held("a", "ok", 100, 10), held("b", "ok", 200, 20), held("p", "", 999, 999)}
	got := placementNodes(recs, workloads, members)
	want := placement.Node{Name: "ok", Zone: "z", Cloud: "aws", Modes: []string{"app"}, Eligible: true, Load: 2,
		Free: placement.Resources{MemoryMiB: 724, CPUMillis: 970}}
	if len(got) != len(recs) || got[0].Name != want.Name || got[0].Zone != want.Zone || got[0].Cloud != want.Cloud ||
		got[0].Eligible != want.Eligible || got[0].Load != want.Load || got[0].Free != want.Free || len(got[0].Modes) != 1 ||
		got[0].Capacity != (placement.Resources{MemoryMiB: 1024, CPUMillis: 1000}) {
		t.Fatalf("ok: %+v, want %+v", got[0], want)
	}
	for _, nd := range got[1:] {
		if nd.Eligible || nd.Free.MemoryMiB != 1024 {
			t.Errorf("%s: %+v, want ineligible with all its room", nd.Name, nd)
		}
	}
}

// The conversion keeps what planning reads: the rank of the priority,
// the latest checkpoint, whether a checkpoint dumps the memory.
func TestPlacementWorkload(t *testing.T) {
	w := fsm.Workload{
		Spec: fsm.WorkloadSpec{ID: "w", Priority: fsm.PriorityHigh, Checkpoint: fsm.CheckpointPolicy{Mode: fsm.ModeCRIU},
			Resources: fsm.Resources{MemoryMiB: 64, CPUMillis: 5}, Placement: fsm.Constraints{Prefer: []string{"b"}}},
		Assignment:  fsm.Assignment{Holder: "a", Epoch: 3},
		SubmittedAt: evacNow,
		Checkpoints: []fsm.CheckpointRecord{{Seq: 1, Bytes: 1}, {Seq: 2, Bytes: 2, Standbys: []string{"s"}}},
	}
	pw := placementWorkload(w)
	if pw.ID != "w" || pw.Holder != "a" || !pw.Placed || !pw.DumpsMemory || !pw.Submitted.Equal(evacNow) ||
		pw.Request.Need != (placement.Resources{MemoryMiB: 64, CPUMillis: 5}) || pw.Request.Prefer[0] != "b" ||
		pw.Checkpoint == nil || pw.Checkpoint.Bytes != 2 || pw.Checkpoint.Holders[0] != "s" {
		t.Fatalf("%+v", pw)
	}
	w.Checkpoints, w.Assignment.Epoch = nil, 0
	if pw := placementWorkload(w); pw.Checkpoint != nil || pw.Placed {
		t.Fatalf("without checkpoint or epoch: %+v", pw)
	}
	for i, p := range []string{fsm.PriorityCritical, fsm.PriorityHigh, fsm.PriorityNormal, fsm.PriorityBatch} {
		if placement.PriorityRank(p) != i {
			t.Errorf("placement ranks fsm's priority %q %d, want %d", p, placement.PriorityRank(p), i)
		}
	}
}
