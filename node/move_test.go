package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
)

// TestCheckpointsReachStandbysAndMigrate: a periodic checkpoint goes to
// the workload's standby over QUIC before it commits, and the record lists
// both copies; the standby's copy verifies against the committed digest.
// A migrate to the standby then moves the workload (the count continues,
// the epoch grows) and the move is recorded phase by phase. A migrate to a
// node that does not exist or already holds it is refused.
func TestCheckpointsReachStandbysAndMigrate(t *testing.T) {
	tc := newTestCluster(t, 0, peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"})
	ctx := context.Background()
	port, standby := startCounter(t, tc)
	getCount(port) // 2

	res, err := tc.node("c1").Checkpoint(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	// The commit is applied on the leader; a1's replica follows it a
	// moment later (at once on an idle machine, not under load).
	var w api.Workload
	eventually(t, 5*time.Second, "a1's replica shows the commit", func() error {
		w, _ = tc.node("a1").Workload(ctx, "counter")
		if w.Checkpoint == nil || w.Checkpoint.Seq != res.Seq || !slices.Equal(w.Checkpoint.Standbys, sortedCopy([]string{"a1", standby})) {
			return fmt.Errorf("committed checkpoint %+v, want seq %d held by a1 and %s", w.Checkpoint, res.Seq, standby)
		}
		return nil
	})
	copyOn, err := tc.node(standby).store.Get("counter", res.Seq)
	if err != nil {
		t.Fatalf("the standby has no copy: %v", err)
	}
	if err := tc.node(standby).store.Verify(copyOn, res.Digest); err != nil {
		t.Fatalf("the standby's copy does not verify: %v", err)
	}
	getCount(port) // 3, in the final checkpoint of the move

	if _, err := tc.node("b1").Migrate(ctx, "counter", "nobody"); err == nil || !strings.Contains(err.Error(), "no node") {
		t.Fatalf("migrate to an unknown node: %v", err)
	}
	if _, err := tc.node("b1").Migrate(ctx, "counter", "a1"); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Fatalf("migrate to the holder: %v", err)
	}
	hog := fsm.WorkloadSpec{ID: "hog", Command: []string{"/bin/sleep", "600"}, Checkpoint: fsm.CheckpointPolicy{Mode: fsm.ModeNone},
		Resources: fsm.Resources{MemoryMiB: 1016}, Placement: fsm.Constraints{Prefer: []string{standby}}}
	if _, err := tc.node("b1").Submit(ctx, hog); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the hog placed", func() error {
		if w, _ := tc.node("b1").Workload(ctx, "hog"); w.Holder != standby {
			return fmt.Errorf("hog on %q", w.Holder)
		}
		return nil
	})
	if _, err := tc.node("b1").Migrate(ctx, "counter", standby); err == nil || !strings.Contains(err.Error(), "MiB and") {
		t.Fatalf("migrate to a full node: %v", err)
	}
	if err := tc.node("b1").Remove(ctx, "hog"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the hog gone", func() error {
		if _, err := tc.node("b1").Workload(ctx, "hog"); err == nil {
			return fmt.Errorf("hog still listed")
		}
		return nil
	})
	mres, err := tc.node("b1").Migrate(ctx, "counter", standby)
	if err != nil {
		t.Fatal(err)
	}
	if mres.Holder != standby || mres.Epoch <= w.Epoch || mres.Seq != res.Seq+1 {
		t.Fatalf("migrate result %+v (epoch before %d)", mres, w.Epoch)
	}
	eventually(t, 10*time.Second, "count continues", func() error {
		if n, err := getCount(port); err != nil || n != 4 {
			return fmt.Errorf("GET / = %d, %v; want 4 (3 in the final checkpoint + 1)", n, err)
		}
		return nil
	})
	ms, _ := tc.node("a1").Migrations(ctx)
	if len(ms) != 1 || ms[0].Phase != fsm.PhaseDone || ms[0].To != standby || ms[0].Epoch != mres.Epoch {
		t.Fatalf("migrations %+v", ms)
	}
	var phases []string
	for _, p := range ms[0].Phases {
		phases = append(phases, p.Phase)
	}
	if want := []string{fsm.PhaseCheckpointing, fsm.PhaseTransferring, fsm.PhaseRestoring, fsm.PhaseDone}; !slices.Equal(phases, want) {
		t.Fatalf("phases %v, want %v", phases, want)
	}
	eventually(t, 10*time.Second, "a new standby", func() error {
		w, _ := tc.node("a1").Workload(ctx, "counter")
		if len(w.Standbys) != 1 || w.Standbys[0] == standby {
			return fmt.Errorf("standbys %v", w.Standbys)
		}
		return nil
	})
	if err := tc.node("a1").Remove(ctx, "counter"); err != nil {
		t.Fatal(err)
	}
}
