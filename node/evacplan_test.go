package node

import (
	"slices"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/placement"
)

func planWorkload(id, prio, holder string, mib int64, submitted int) fsm.Workload {
	return fsm.Workload{
		Spec:        fsm.WorkloadSpec{ID: id, Priority: prio, Resources: fsm.Resources{MemoryMiB: mib}},
		Assignment:  fsm.Assignment{Holder: holder, Epoch: 10, State: fsm.WorkloadRunning},
		SubmittedAt: t0.Add(time.Duration(submitted) * time.Second),
	}
}

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func ids(items []evacItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.w.Spec.ID)
	}
	return out
}

// The plan is in priority order, then submission order, when there is no
// deadline (a drain) or when everything fits.
func TestPlanEvacuationPriorityOrder(t *testing.T) {
	todo := []fsm.Workload{
		planWorkload("b1", fsm.PriorityBatch, "d", 16, 1),
		planWorkload("c1", fsm.PriorityCritical, "d", 16, 3),
		planWorkload("n1", fsm.PriorityNormal, "d", 16, 2),
		planWorkload("c0", fsm.PriorityCritical, "d", 16, 0),
		planWorkload("h1", fsm.PriorityHigh, "d", 16, 4),
	}
	est := func(fsm.Workload) time.Duration { return time.Second }
	want := []string{"c0", "c1", "h1", "n1", "b1"}
	for _, left := range []map[string]time.Duration{nil, {"d": time.Hour}} {
		plan := planEvacuation(todo, left, est, 4, 8)
		if got := ids(plan); !slices.Equal(got, want) {
			t.Fatalf("left %v: plan %v, want %v", left, got, want)
		}
		for _, it := range plan {
			if !it.fits {
				t.Fatalf("left %v: %s does not fit", left, it.w.Spec.ID)
			}
		}
	}
}

// With a deadline too close for everything, what fits starts first, in
// priority order; what cannot finish goes last, still in priority order.
func TestPlanEvacuationStartsWhatFitsFirst(t *testing.T) {
	todo := []fsm.Workload{
		planWorkload("huge-critical", fsm.PriorityCritical, "d", 8192, 0),
		planWorkload("small-high", fsm.PriorityHigh, "d", 16, 1),
		planWorkload("small-batch", fsm.PriorityBatch, "d", 16, 2),
		planWorkload("big-normal", fsm.PriorityNormal, "d", 4096, 3),
		planWorkload("elsewhere", fsm.PriorityBatch, "other", 8192, 4), // its host has no deadline
	}
	for i := range todo {
		todo[i].Spec.Checkpoint.Mode = fsm.ModeCRIU // sized by their memory
	}
	// 100 MB/s: 8 GiB takes ~86 s, 4 GiB ~43 s, 16 MiB 0.17 s (+0.5 s each).
	est := (&evacuation{}).estimator(100e6, 500*time.Millisecond)
	plan := planEvacuation(todo, map[string]time.Duration{"d": 30 * time.Second}, est, 1, 8)
	want := []string{"small-high", "small-batch", "elsewhere", "huge-critical", "big-normal"}
	if got := ids(plan); !slices.Equal(got, want) {
		t.Fatalf("plan %v, want %v", got, want)
	}
	fits := map[string]bool{}
	for _, it := range plan {
		fits[it.w.Spec.ID] = it.fits
	}
	if !fits["small-high"] || !fits["small-batch"] || !fits["elsewhere"] || fits["huge-critical"] || fits["big-normal"] {
		t.Fatalf("fits %v", fits)
	}
}

// The rate bounds the schedule too: 10 small moves at 2 per second cannot
// all start within 3 seconds.
func TestPlanEvacuationCountsThePace(t *testing.T) {
	var todo []fsm.Workload
	for i := range 10 {
		todo = append(todo, planWorkload(string(rune('a'+i)), fsm.PriorityNormal, "d", 1, i))
	}
	est := func(fsm.Workload) time.Duration { return 100 * time.Millisecond }
	plan := planEvacuation(todo, map[string]time.Duration{"d": 3 * time.Second}, est, 100, 2)
	n := 0
	for _, it := range plan {
		if it.fits {
			n++
		}
	}
	if n != 6 { // starts at 0, 0.5, … 2.5 s finish by 2.6 s; the 7th would start at 3 s
		t.Fatalf("%d moves fit, want 6", n)
	}
}

// The estimate uses the latest checkpoint's size when there is one, and
// the measured throughput once a move has measured it.
func TestEvacuationEstimator(t *testing.T) {
	e := &evacuation{}
	w := planWorkload("w", fsm.PriorityNormal, "d", 100, 0) // 100 MiB
	w.Spec.Checkpoint.Mode = fsm.ModeCRIU                   // CRIU dumps the memory
	if got := (&evacuation{}).estimator(100e6, 0)(planWorkload("app", fsm.PriorityNormal, "d", 100, 0)); got != 0 {
		t.Fatalf("an app-mode workload without a checkpoint: %v, want only the overhead", got)
	}
	if got := e.estimator(100e6, 0)(w); got < 1040*time.Millisecond || got > 1050*time.Millisecond {
		t.Fatalf("100 MiB at the assumed 100 MB/s: %v", got)
	}
	w.Checkpoints = []fsm.CheckpointRecord{{Seq: 1, Bytes: 10e6}}
	if got := e.estimator(100e6, 0)(w); got != 100*time.Millisecond {
		t.Fatalf("10 MB checkpoint: %v", got)
	}
	e.measured(1000, 10*time.Second, 0) // too small to tell the throughput: ignored
	if got := e.estimator(100e6, 0)(w); got != 100*time.Millisecond {
		t.Fatalf("after a tiny move: %v", got)
	}
	e.measured(50e6, 1500*time.Millisecond, 500*time.Millisecond) // 50 MB/s measured
	if got := e.estimator(100e6, 0)(w); got != 200*time.Millisecond {
		t.Fatalf("10 MB at the measured 50 MB/s: %v", got)
	}
}

// Preemption takes the fewest, least important workloads off the node
// that then has room, never more important or equal work, never the
// leaving node's, never one already moving.
func TestPreemptionPlan(t *testing.T) {
	vip := planWorkload("vip", fsm.PriorityHigh, "d", 600, 0)
	nodes := []placement.Node{
		{Name: "d", Free: placement.Resources{MemoryMiB: 0, CPUMillis: 1000}},
		{Name: "x", Eligible: true, Free: placement.Resources{MemoryMiB: 100, CPUMillis: 1000}},
		{Name: "y", Eligible: true, Free: placement.Resources{MemoryMiB: 200, CPUMillis: 1000}},
		{Name: "z", Eligible: false, Free: placement.Resources{MemoryMiB: 0, CPUMillis: 1000}},
	}
	workloads := []fsm.Workload{
		vip,
		planWorkload("x-batch-small", fsm.PriorityBatch, "x", 300, 1),
		planWorkload("x-normal", fsm.PriorityNormal, "x", 300, 2),
		planWorkload("x-batch-big", fsm.PriorityBatch, "x", 400, 3),
		planWorkload("y-high", fsm.PriorityHigh, "y", 800, 4),    // as important: never a victim
		planWorkload("y-batch", fsm.PriorityBatch, "y", 400, 5),  // frees enough alone …
		planWorkload("z-batch", fsm.PriorityBatch, "z", 1000, 6), // … z is not eligible
		planWorkload("d-batch", fsm.PriorityBatch, "d", 1000, 7), // the leaving node's own
	}
	on, victims := preemptionPlan(vip, "d", nodes, workloads, nil)
	if on != "y" || len(victims) != 1 || victims[0].Spec.ID != "y-batch" {
		t.Fatalf("plan: %s %v, want y-batch on y", on, ids(toItems(victims)))
	}
	// y-batch already moving: x needs its two batch workloads, biggest first.
	on, victims = preemptionPlan(vip, "d", nodes, workloads, map[string]bool{"y-batch": true})
	if on != "x" || !slices.Equal(ids(toItems(victims)), []string{"x-batch-big", "x-batch-small"}) {
		t.Fatalf("plan: %s %v, want x-batch-big and x-batch-small on x", on, ids(toItems(victims)))
	}
	// Critical work finds nothing it may take when only equals are there.
	crit := planWorkload("c", fsm.PriorityBatch, "d", 600, 0)
	if on, victims := preemptionPlan(crit, "d", nodes, workloads, nil); len(victims) != 0 {
		t.Fatalf("batch work preempted %v on %s", ids(toItems(victims)), on)
	}
}

func toItems(ws []fsm.Workload) []evacItem {
	out := make([]evacItem, len(ws))
	for i, w := range ws {
		out[i].w = w
	}
	return out
}
