package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/runtime"
)

// TestWorkloadRunsCheckpointsAndRestores: a workload submitted anywhere is
// granted, started by its holder and reported running; a checkpoint asked
// on another peer is taken on the holder and committed in Raft; a restart
// from that checkpoint continues the count.
func TestWorkloadRunsCheckpointsAndRestores(t *testing.T) {
	bin := buildCounter(t)
	port := freePort(t)
	tc := newTestCluster(t, 0, peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"})
	eventually(t, 20*time.Second, "formed", func() error { return shape(tc.status("a1"), 3, 3, 0) })
	ctx := context.Background()
	spec := fsm.WorkloadSpec{ID: "counter", Command: []string{bin, "--port", strconv.Itoa(port)},
		Checkpoint: fsm.CheckpointPolicy{Mode: fsm.ModeApp, Interval: fsm.Duration(time.Hour)},
		Service:    &fsm.Service{Port: port}, Resources: fsm.Resources{MemoryMiB: 16}}
	if _, err := tc.node("a1").Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	var holder string
	eventually(t, 20*time.Second, "running", func() error {
		w, err := tc.node("b1").Workload(ctx, "counter")
		if err != nil || w.State != string(fsm.WorkloadRunning) {
			return fmt.Errorf("%+v %v", w, err)
		}
		holder = w.Holder
		return nil
	})
	eventually(t, 10*time.Second, "first answer", func() error {
		if n, err := getCount(port); err != nil || n != 1 {
			return fmt.Errorf("GET / = %d, %v; want 1", n, err)
		}
		return nil
	})
	for i := 2; i <= 3; i++ {
		if n, err := getCount(port); err != nil || n != i {
			t.Fatalf("GET / = %d, %v; want %d", n, err, i)
		}
	}
	other := "a1"
	if holder == "a1" {
		other = "b1"
	}
	res, err := tc.node(other).Checkpoint(ctx, "counter")
	if err != nil {
		t.Fatalf("checkpoint through %s (holder %s): %v", other, holder, err)
	}
	eventually(t, 5*time.Second, "committed", func() error {
		w, _ := tc.node(other).Workload(ctx, "counter")
		if w.Checkpoint == nil || w.Checkpoint.Seq != res.Seq {
			return fmt.Errorf("checkpoint %+v, want seq %d", w.Checkpoint, res.Seq)
		}
		return nil
	})
	getCount(port) // 4, lost by the restore
	if _, err := tc.node(other).Restart(ctx, "counter", true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "restored count", func() error {
		if n, err := getCount(port); err != nil || n != 4 {
			return fmt.Errorf("GET / = %d, %v; want 4 (3 checkpointed + 1)", n, err)
		}
		return nil
	})
	if err := tc.node(other).Remove(ctx, "counter"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "stopped", func() error {
		if _, err := getCount(port); err == nil {
			return fmt.Errorf("still answers")
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(tc.cfgs[holder].DataDir, "workloads", "counter", "output.log")); err != nil {
		t.Fatalf("the holder kept no log: %v", err)
	}
}

// recordingFollower records what it was told to run.
type recordingFollower struct{ got [][]runtime.Desired }

func (f *recordingFollower) Sync(d []runtime.Desired) { f.got = append(f.got, d) }
func (f *recordingFollower) RetryReports()            {}

// TestSyncNeverFollowsAnOlderReplica: the supervisor runs what the
// replica grants to this node, and a replica older than one it already
// followed (the mirror after a demotion) is ignored.
func TestSyncNeverFollowsAnOlderReplica(t *testing.T) {
	apply := func(m *fsm.Machine, idx uint64, c fsm.Command) {
		b, err := fsm.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		if r := m.Apply(idx, b); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	spec := fsm.WorkloadSpec{ID: "w", Command: []string{"/bin/true"}}.WithDefaults()
	newer, older := fsm.New(), fsm.New()
	for _, m := range []*fsm.Machine{newer, older} {
		apply(m, 1, fsm.WorkloadSubmit{Spec: spec, At: time.Now()})
		apply(m, 2, fsm.WorkloadGrant{Workload: "w", Holder: "a1", At: time.Now()})
	}
	apply(newer, 3, fsm.WorkloadGrant{Workload: "w", Holder: "b1", PrevEpoch: 2, At: time.Now()})

	f := &recordingFollower{}
	s := &syncer{name: "a1", sup: f}
	s.syncTo(newer)
	s.syncTo(older) // still grants w to a1, but is older
	if len(f.got) != 1 || len(f.got[0]) != 0 {
		t.Fatalf("the supervisor was told %v, want once: nothing (w moved to b1)", f.got)
	}
	s2 := &syncer{name: "a1", sup: f}
	f.got = nil
	s2.syncTo(older)
	if len(f.got) != 1 || len(f.got[0]) != 1 || f.got[0][0].Spec.ID != "w" || f.got[0][0].Epoch != 2 {
		t.Fatalf("granted w under epoch 2: the supervisor was told %v", f.got)
	}
}
