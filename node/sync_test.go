package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// TestWorkloadRunsCheckpointsAndRestores: a workload submitted anywhere is
// granted, started by its holder and reported running; a checkpoint asked
// on another peer is taken on the holder and committed in Raft; a restart
// from that checkpoint continues the count.
func TestWorkloadRunsCheckpointsAndRestores(t *testing.T) {
	bin := buildCounter(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
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
