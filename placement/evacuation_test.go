package placement

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func planWorkload(id, prio, holder string, mib int64, submitted int) Workload {
	return Workload{
		ID: id, Priority: prio, Holder: holder, Placed: true,
		Request:   Request{Workload: id, Need: Resources{MemoryMiB: mib}},
		Submitted: t0.Add(time.Duration(submitted) * time.Second),
	}
}

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func moveIDs(items []PlannedMove) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Workload.ID)
	}
	return out
}

func workloadIDs(ws []Workload) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.ID)
	}
	return out
}

// The plan is in priority order, then submission order, when there is no
// deadline (a drain) or when everything fits.
func TestPlanEvacuationPriorityOrder(t *testing.T) {
	todo := []Workload{
		planWorkload("b1", "batch", "d", 16, 1),
		planWorkload("c1", "critical", "d", 16, 3),
		planWorkload("n1", "normal", "d", 16, 2),
		planWorkload("c0", "critical", "d", 16, 0),
		planWorkload("h1", "high", "d", 16, 4),
	}
	est := func(Workload) time.Duration { return time.Second }
	want := []string{"c0", "c1", "h1", "n1", "b1"}
	for _, left := range []map[string]time.Duration{nil, {"d": time.Hour}} {
		plan := PlanEvacuation(todo, left, est, 4, 8)
		if got := moveIDs(plan); !slices.Equal(got, want) {
			t.Fatalf("left %v: plan %v, want %v", left, got, want)
		}
		for _, it := range plan {
			if !it.Fits {
				t.Fatalf("left %v: %s does not fit", left, it.Workload.ID)
			}
		}
	}
}

// With a deadline too close for everything, what fits starts first, in
// priority order; what cannot finish goes last, still in priority order.
func TestPlanEvacuationStartsWhatFitsFirst(t *testing.T) {
	todo := []Workload{
		planWorkload("huge-critical", "critical", "d", 8192, 0),
		planWorkload("small-high", "high", "d", 16, 1),
		planWorkload("small-batch", "batch", "d", 16, 2),
		planWorkload("big-normal", "normal", "d", 4096, 3),
		planWorkload("elsewhere", "batch", "other", 8192, 4), // its host has no deadline
	}
	for i := range todo {
		todo[i].DumpsMemory = true // sized by their memory
	}
	// 100 MB/s: 8 GiB takes ~86 s, 4 GiB ~43 s, 16 MiB 0.17 s (+0.5 s each).
	est := Throughput{}.Estimator(100e6, 500*time.Millisecond)
	plan := PlanEvacuation(todo, map[string]time.Duration{"d": 30 * time.Second}, est, 1, 8)
	want := []string{"small-high", "small-batch", "elsewhere", "huge-critical", "big-normal"}
	if got := moveIDs(plan); !slices.Equal(got, want) {
		t.Fatalf("plan %v, want %v", got, want)
	}
	fits := map[string]bool{}
	for _, it := range plan {
		fits[it.Workload.ID] = it.Fits
	}
	if !fits["small-high"] || !fits["small-batch"] || !fits["elsewhere"] || fits["huge-critical"] || fits["big-normal"] {
		t.Fatalf("fits %v", fits)
	}
}

// The rate bounds the schedule too: 10 small moves at 2 per second cannot
// all start within 3 seconds.
func TestPlanEvacuationCountsThePace(t *testing.T) {
	var todo []Workload
	for i := range 10 {
		todo = append(todo, planWorkload(string(rune('a'+i)), "normal", "d", 1, i))
	}
	est := func(Workload) time.Duration { return 100 * time.Millisecond }
	plan := PlanEvacuation(todo, map[string]time.Duration{"d": 3 * time.Second}, est, 100, 2)
	n := 0
	for _, it := range plan {
		if it.Fits {
			n++
		}
	}
	if n != 6 { // starts at 0, 0.5, … 2.5 s finish by 2.6 s; the 7th would start at 3 s
		t.Fatalf("%d moves fit, want 6", n)
	}
}

// Preemption takes the fewest, least important workloads off the node
// that then has room, never more important or equal work, never the
// leaving node's, never one already moving.
func TestPreemptionPlan(t *testing.T) {
	vip := planWorkload("vip", "high", "d", 600, 0)
	nodes := []Node{
		{Name: "d", Free: Resources{MemoryMiB: 0, CPUMillis: 1000}},
		{Name: "x", Eligible: true, Free: Resources{MemoryMiB: 100, CPUMillis: 1000}},
		{Name: "y", Eligible: true, Free: Resources{MemoryMiB: 200, CPUMillis: 1000}},
		{Name: "z", Eligible: false, Free: Resources{MemoryMiB: 0, CPUMillis: 1000}},
	}
	unplaced := planWorkload("y-unplaced", "batch", "y", 1000, 8) // holds no epoch yet: not a victim
	unplaced.Placed = false
	workloads := []Workload{
		vip,
		planWorkload("x-batch-small", "batch", "x", 300, 1),
		planWorkload("x-normal", "normal", "x", 300, 2),
		planWorkload("x-batch-big", "batch", "x", 400, 3),
		planWorkload("y-high", "high", "y", 800, 4),    // as important: never a victim
		planWorkload("y-batch", "batch", "y", 400, 5),  // frees enough alone …
		planWorkload("z-batch", "batch", "z", 1000, 6), // … z is not eligible
		planWorkload("d-batch", "batch", "d", 1000, 7), // the leaving node's own
		unplaced,
	}
	cases := []struct {
		name   string
		w      Workload
		moving map[string]bool
		on     string
		want   []string
	}{
		{"the fewest victims", vip, nil, "y", []string{"y-batch"}},
		// y-batch already moving: x needs its two batch workloads, biggest first.
		{"moving work is spared", vip, map[string]bool{"y-batch": true}, "x", []string{"x-batch-big", "x-batch-small"}},
		// Batch work finds nothing it may take when only equals are there.
		{"only less important work", planWorkload("c", "batch", "d", 600, 0), nil, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			on, victims := PreemptionPlan(c.w, "d", nodes, workloads, c.moving)
			if on != c.on || !slices.Equal(workloadIDs(victims), c.want) {
				t.Fatalf("plan: %q %v, want %q %v", on, workloadIDs(victims), c.on, c.want)
			}
		})
	}
}

// The target is a standby holding the latest checkpoint when one can take
// the workload, another zone's first; else the placement's choice among
// the nodes other than the one it leaves.
func TestEvacuationTarget(t *testing.T) {
	from := Node{Name: "d", Zone: "a"}
	room := Resources{MemoryMiB: 1000, CPUMillis: 1000}
	nodes := []Node{
		{Name: "d", Zone: "a", Eligible: true, Free: room},
		{Name: "same-zone", Zone: "a", Eligible: true, Free: room},
		{Name: "other-zone", Zone: "b", Eligible: true, Free: room},
		{Name: "full", Zone: "c", Eligible: true, Free: Resources{MemoryMiB: 10, CPUMillis: 1000}},
		{Name: "free", Zone: "c", Eligible: true, Free: Resources{MemoryMiB: 4000, CPUMillis: 1000}},
	}
	w := planWorkload("w", "normal", "d", 100, 0)
	withCP := func(holders ...string) Workload {
		c := w
		c.Checkpoint = &Checkpoint{Bytes: 1, Holders: holders}
		return c
	}
	cases := []struct {
		name  string
		w     Workload
		nodes []Node
		want  string
		err   error
	}{
		{"no checkpoint: the placement's choice", w, nodes, "free", nil},
		{"a standby in another zone first", withCP("same-zone", "other-zone"), nodes, "other-zone", nil},
		{"a standby in the same zone", withCP("same-zone"), nodes, "same-zone", nil},
		{"a standby without room is passed over", withCP("full"), nodes, "free", nil},
		{"never the node it leaves", withCP("d"), nodes[:1], "", ErrNoTarget},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := EvacuationTarget(c.w, from, c.nodes)
			if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("target %q, %v; want %q, %v", got, err, c.want, c.err)
			}
		})
	}
}

func TestPriorityRank(t *testing.T) {
	order := []string{"critical", "high", "normal", "batch"}
	for i, p := range order {
		if got := PriorityRank(p); got != i {
			t.Errorf("PriorityRank(%q) = %d, want %d", p, got, i)
		}
	}
}
