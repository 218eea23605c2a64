package node

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// TestDrainMovesWorkloadsInPriorityOrder: two counters on a1, one batch,
// one critical. Draining a1 moves both to other nodes — the critical one's
// move recorded first — and their counts continue; while drained, a1
// takes no new work even when a spec prefers it; undrained, it does.
func TestDrainMovesWorkloadsInPriorityOrder(t *testing.T) {
	bin := buildCounter(t)
	tc := newTestCluster(t, 0, peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"})
	eventually(t, 20*time.Second, "formed", func() error { return shape(tc.status("a1"), 3, 3, 0) })
	ctx := context.Background()
	ports := map[string]int{}
	for _, c := range []struct{ id, prio string }{{"low", fsm.PriorityBatch}, {"vip", fsm.PriorityCritical}} {
		ports[c.id] = submitAppCounter(t, tc, bin, c.id, c.prio, "a1", 16)
	}

	res, err := tc.node("c1").Drain(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if res.State != string(fsm.NodeDraining) || len(res.Workloads) != 2 {
		t.Fatalf("drain answer %+v", res)
	}
	for id, port := range ports {
		eventually(t, 30*time.Second, id+" moved off a1", func() error {
			w, err := tc.node("c1").Workload(ctx, id)
			if err != nil || w.Holder == "a1" || w.State != string(fsm.WorkloadRunning) {
				return fmt.Errorf("%+v %v", w, err)
			}
			if n, err := getCount(port); err != nil || n != 3 {
				return fmt.Errorf("GET / = %d, %v; want 3 (2 before the move + 1)", n, err)
			}
			return nil
		})
	}
	var done []fsm.Migration
	eventually(t, 10*time.Second, "both moves recorded done", func() error {
		ms, _ := tc.node("c1").Migrations(ctx)
		done = done[:0]
		for _, m := range ms {
			if m.Phase == fsm.PhaseDone {
				done = append(done, m)
			}
		}
		if len(done) != 2 {
			return fmt.Errorf("migrations %+v", ms)
		}
		return nil
	})
	if done[0].Workload != "vip" || done[1].Workload != "low" || done[0].Reason != "drain" || done[0].From != "a1" {
		t.Fatalf("moves %+v: want vip then low, from a1, for the drain", done)
	}

	extra := fsm.WorkloadSpec{ID: "extra", Command: []string{"/bin/sleep", "600"}, Checkpoint: fsm.CheckpointPolicy{Mode: fsm.ModeNone},
		Resources: fsm.Resources{MemoryMiB: 16}, Placement: fsm.Constraints{Prefer: []string{"a1"}}}
	if _, err := tc.node("b1").Submit(ctx, extra); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "extra placed", func() error {
		w, _ := tc.node("b1").Workload(ctx, "extra")
		if w.Holder == "" || w.Holder == "a1" {
			return fmt.Errorf("extra on %q", w.Holder)
		}
		return nil
	})
	if _, err := tc.node("b1").Undrain(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.node("b1").Undrain(ctx, "a1"); err == nil {
		t.Fatal("undrain of a node in service accepted")
	}
	eventually(t, 5*time.Second, "a1 in service", func() error {
		if rec, _ := tc.node("b1").rep.view().Node("a1"); rec.State != fsm.NodeAlive || rec.Drained {
			return fmt.Errorf("a1 %s drained=%v", rec.State, rec.Drained)
		}
		return nil
	})
}

// TestPreemptionMakesRoomForCriticalWork: vip (critical, 600 MiB) on a1;
// b1 and c1 each full with a batch counter (800 of 1024 MiB). Draining a1
// leaves vip no room anywhere, so one batch counter is preempted: its
// final checkpoint is committed, it goes back to pending, and vip moves
// into the room, which nothing else takes meanwhile. Undrained, a1 takes
// the preempted counter back, restored from that checkpoint.
func TestPreemptionMakesRoomForCriticalWork(t *testing.T) {
	bin := buildCounter(t)
	tc := newTestCluster(t, 0, peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"})
	eventually(t, 20*time.Second, "formed", func() error { return shape(tc.status("a1"), 3, 3, 0) })
	ctx := context.Background()
	ports := map[string]int{}
	for _, c := range []struct {
		id, prio, on string
		mib          int64
	}{{"vip", fsm.PriorityCritical, "a1", 600}, {"fill-b", fsm.PriorityBatch, "b1", 800}, {"fill-c", fsm.PriorityBatch, "c1", 800}} {
		ports[c.id] = submitAppCounter(t, tc, bin, c.id, c.prio, c.on, c.mib)
	}

	if _, err := tc.node("c1").Drain(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	var vip fsm.Workload
	eventually(t, 30*time.Second, "vip moved off a1", func() error {
		w, _ := tc.node("c1").rep.view().Workload("vip")
		vip = w
		if w.Assignment.Holder == "a1" || w.Assignment.State != fsm.WorkloadRunning {
			return fmt.Errorf("%+v", w.Assignment)
		}
		return nil
	})
	if n := countOnceUp(t, ports["vip"]); n != 3 {
		t.Fatalf("vip after the move: GET / = %d; want 3", n)
	}
	victim := map[string]string{"b1": "fill-b", "c1": "fill-c"}[vip.Assignment.Holder]
	v, _ := tc.node("c1").rep.view().Workload(victim)
	if v.Assignment.State != fsm.WorkloadPending || v.Assignment.Holder != "" || !strings.HasPrefix(v.Assignment.Message, "preempted") {
		t.Fatalf("the workload on vip's new holder %s: %+v, want preempted and pending", vip.Assignment.Holder, v.Assignment)
	}
	if len(v.Checkpoints) == 0 {
		t.Fatalf("%s was preempted without a committed checkpoint", victim)
	}
	ms, _ := tc.node("c1").Migrations(ctx)
	var park *fsm.Migration
	for i := range ms {
		if ms[i].Workload == victim {
			park = &ms[i]
		}
	}
	if park == nil || park.Phase != fsm.PhaseDone || !strings.Contains(park.Reason, "preempted for vip") || park.To != "" {
		t.Fatalf("the preemption's record: %+v", park)
	}
	other := map[string]string{"fill-b": "fill-c", "fill-c": "fill-b"}[victim]
	if o, _ := tc.node("c1").rep.view().Workload(other); o.Assignment.State != fsm.WorkloadRunning || len(o.Tombstones) != 0 {
		t.Fatalf("%s was disturbed: %+v", other, o.Assignment)
	}

	if _, err := tc.node("b1").Undrain(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, victim+" placed again", func() error {
		w, _ := tc.node("c1").rep.view().Workload(victim)
		if w.Assignment.Holder != "a1" || w.Assignment.State != fsm.WorkloadRunning {
			return fmt.Errorf("%+v", w.Assignment)
		}
		return nil
	})
	if n := countOnceUp(t, ports[victim]); n != 3 {
		t.Fatalf("%s restored on a1: GET / = %d; want 3, from its preemption checkpoint", victim, n)
	}
}

// submitAppCounter submits an app-mode counter preferring node on, waits
// until it runs there and counts 2, and returns its port.
func submitAppCounter(t *testing.T, tc *testCluster, bin, id, prio, on string, mib int64) int {
	t.Helper()
	ctx := context.Background()
	port := freePort(t)
	spec := fsm.WorkloadSpec{ID: id, Command: []string{bin, "--port", strconv.Itoa(port)}, Priority: prio,
		Checkpoint: fsm.CheckpointPolicy{Mode: fsm.ModeApp, Interval: fsm.Duration(time.Hour)},
		Service:    &fsm.Service{Port: port}, Resources: fsm.Resources{MemoryMiB: mib},
		Placement: fsm.Constraints{Prefer: []string{on}}}
	if _, err := tc.node("b1").Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, id+" running on "+on, func() error {
		w, err := tc.node("c1").Workload(ctx, id)
		if err != nil || w.State != string(fsm.WorkloadRunning) || w.Holder != on {
			return fmt.Errorf("%+v %v", w, err)
		}
		_, err = getCount(port)
		return err
	})
	getCount(port) // 2
	return port
}

// countOnceUp is the counter's answer to the first GET that reaches it: a
// holder reports a workload running once its process started, which may
// be before it listens. Only a failed GET is retried, never a count.
func countOnceUp(t *testing.T, port int) int {
	t.Helper()
	var n int
	eventually(t, 10*time.Second, "the counter answers", func() error {
		var err error
		n, err = getCount(port)
		return err
	})
	return n
}
