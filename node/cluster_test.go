package node

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
)

var fiveZones = []peerSpec{{"n1", "a"}, {"n2", "a"}, {"n3", "b"}, {"n4", "b"}, {"n5", "c"}}

// TestElectionAndAutopilot: five peers in zones a,a,b,b,c form one cluster
// with 3 voters in 3 zones and 2 spares; when the leader dies a new one is
// elected, the dead peer is lost and leaves Raft, a spare in its zone
// takes its vote, and a restart with the same stores rejoins.
func TestElectionAndAutopilot(t *testing.T) {
	tc := newTestCluster(t, 2, fiveZones...)
	eventually(t, 20*time.Second, "formed", func() error { return shape(tc.status("n3"), 5, 3, 2) })

	leader := tc.status("n3").Leader
	tc.kill(leader)
	var other string
	for _, p := range fiveZones {
		if p.name != leader {
			other = p.name
			break
		}
	}
	eventually(t, 10*time.Second, "new leader", func() error {
		if l := tc.status(other).Leader; l == "" || l == leader {
			return fmt.Errorf("leader %q", l)
		}
		return nil
	})
	eventually(t, 15*time.Second, "healed", func() error {
		st := tc.status(other)
		if err := shape(st, 4, 3, 1); err != nil {
			return err
		}
		for _, m := range st.Members {
			if m.Name == leader && (m.State != api.StateLost || m.Role != api.RoleMember) {
				return fmt.Errorf("dead leader shows %s/%s", m.State, m.Role)
			}
		}
		return nil
	})

	n := tc.start(leader)
	if !n.hadState {
		t.Fatal("the restarted peer found no Raft state in its stores")
	}
	eventually(t, 20*time.Second, "rejoined", func() error {
		st := tc.status(leader)
		if err := shape(st, 5, 3, 2); err != nil {
			return err
		}
		if !n.rep.inRaft() {
			return errors.New("restarted peer is not in Raft")
		}
		return nil
	})
}

// TestLeaseExpiryAndReturn: a peer cut off from everyone stops renewing;
// the leader marks it lost once its lease lapses, and it is alive again
// after the partition heals.
func TestLeaseExpiryAndReturn(t *testing.T) {
	tc := newTestCluster(t, 0, peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"}, peerSpec{"m1", "a"})
	eventually(t, 20*time.Second, "formed", func() error { return shape(tc.status("a1"), 4, 3, 0) })
	rec := func(name string) fsm.Node {
		r, _ := tc.node(tc.status("a1").Leader).rep.machine.Node(name)
		return r
	}
	eventually(t, 5*time.Second, "m1 renews", func() error {
		if rec("m1").LeaseExpiry.IsZero() {
			return errors.New("no lease yet")
		}
		return nil
	})
	tc.isolate("m1")
	cut := time.Now()
	eventually(t, 10*time.Second, "m1 lost", func() error {
		if s := rec("m1").State; s != fsm.NodeLost {
			return fmt.Errorf("m1 is %s", s)
		}
		return nil
	})
	if d := time.Since(cut); d < tc.cfgs["m1"].LeaseTTL/2 {
		t.Fatalf("m1 marked lost after %v, before its lease could lapse", d)
	}
	if v := leaseValidWall(tc.node("m1")); v.IsZero() || v.After(rec("m1").LeaseExpiry) {
		t.Fatalf("m1's own lease view %v must end no later than the leader's %v", v, rec("m1").LeaseExpiry)
	}
	tc.net.Heal()
	eventually(t, 10*time.Second, "m1 back", func() error {
		if s := rec("m1").State; s != fsm.NodeAlive {
			return fmt.Errorf("m1 is %s", s)
		}
		return nil
	})
}

// TestMemberForwardsAndMirrors: a peer outside Raft forwards writes to the
// leader and answers reads from its mirror; fenced results refuse a stale
// epoch across the forward.
func TestMemberForwardsAndMirrors(t *testing.T) {
	tc := newTestCluster(t, 0, peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"}, peerSpec{"m1", "a"})
	eventually(t, 20*time.Second, "formed", func() error { return shape(tc.status("m1"), 4, 3, 0) })
	m := tc.node("m1")
	if m.rep.inRaft() {
		t.Fatal("m1 should be a plain member with --spares 0")
	}
	ctx := context.Background()
	spec := fsm.WorkloadSpec{ID: "w1", Command: []string{"/bin/true"}, Checkpoint: fsm.CheckpointPolicy{Mode: fsm.ModeNone}}
	if _, err := m.Submit(ctx, spec); err != nil {
		t.Fatalf("submit through a member: %v", err)
	}
	if _, err := m.Submit(ctx, spec); !errors.Is(err, fsm.ErrExists) {
		t.Fatalf("second submit: %v, want ErrExists across the forward", err)
	}
	var w api.Workload
	eventually(t, 10*time.Second, "granted in the member's mirror", func() error {
		var err error
		w, err = m.Workload(ctx, "w1")
		if err != nil || w.Epoch == 0 {
			return fmt.Errorf("%+v %v", w, err)
		}
		return nil
	})
	if _, err := m.AppendResult(ctx, "w1", w.Epoch, "ok"); err != nil {
		t.Fatalf("result with the current epoch: %v", err)
	}
	if _, err := m.AppendResult(ctx, "w1", w.Epoch+1, "late"); !errors.Is(err, fsm.ErrStaleEpoch) {
		t.Fatalf("result with a wrong epoch: %v, want ErrStaleEpoch", err)
	}
	// The log reads from the leader, so a member's read shows the append
	// it just made even before its own mirror does.
	if l, err := m.Results(ctx, "w1"); err != nil || len(l.Results) != 1 || l.Results[0].Value != "ok" || l.Results[0].Epoch != w.Epoch || l.Trimmed != 0 {
		t.Fatalf("results through a member: %+v %v, want the one append and nothing trimmed", l, err)
	}
	if _, err := m.Results(ctx, "ghost"); !errors.Is(err, fsm.ErrNotFound) {
		t.Fatalf("results of an unknown workload: %v, want ErrNotFound", err)
	}
	if err := m.Ready(); err != nil {
		t.Fatalf("member not ready: %v", err)
	}
}
