package node

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/cloud"
)

// fakeWatcher is a NoticeWatcher the test drives.
type fakeWatcher struct {
	notices chan cloud.Notice
	mu      sync.Mutex
	acked   []string
}

func (f *fakeWatcher) Watch(ctx context.Context, out chan<- cloud.Notice) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case n := <-f.notices:
			select {
			case out <- n:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

func (f *fakeWatcher) Ack(_ context.Context, n cloud.Notice) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acked = append(f.acked, n.ID)
	return nil
}

func (f *fakeWatcher) acks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.acked...)
}

// TestNoticeEvacuatesTheHost: a preempt notice on the holder's host is
// gossiped (doomed, with its deadline), recorded in Raft with a hazard,
// and the leader moves the workload off; once the host holds nothing the
// notice is acknowledged. A rebalance recommendation only checkpoints.
func TestNoticeEvacuatesTheHost(t *testing.T) {
	fw := &fakeWatcher{notices: make(chan cloud.Notice, 4)}
	tc := newTestClusterWith(t, 0, func(c *Config) {
		if c.Name == "a1" {
			c.Watcher = fw
		}
	}, peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"})
	ctx := context.Background()
	port, _ := startCounter(t, tc)
	getCount(port) // 2

	fw.notices <- cloud.Notice{Cloud: "aws", Kind: cloud.KindRebalance, SeenAt: time.Now()}
	eventually(t, 10*time.Second, "a pre-copy checkpoint", func() error {
		if w, _ := tc.node("b1").Workload(ctx, "counter"); w.Checkpoint == nil {
			return fmt.Errorf("no checkpoint yet")
		}
		return nil
	})
	if w, _ := tc.node("b1").Workload(ctx, "counter"); w.Holder != "a1" {
		t.Fatalf("a rebalance recommendation moved the workload to %s", w.Holder)
	}

	deadline := time.Now().Add(30 * time.Second)
	fw.notices <- cloud.Notice{Cloud: "aws", Kind: cloud.KindPreempt, Deadline: deadline, ID: "ev-1", SeenAt: time.Now()}
	eventually(t, 5*time.Second, "doomed in gossip", func() error {
		for _, m := range tc.status("c1").Members {
			if m.Name == "a1" && m.State == string(fsm.NodeDoomed) {
				return nil
			}
		}
		return fmt.Errorf("c1 sees %+v", tc.status("c1").Members)
	})
	eventually(t, 30*time.Second, "moved off a1, count continued", func() error {
		w, _ := tc.node("c1").Workload(ctx, "counter")
		if w.Holder == "a1" || w.State != string(fsm.WorkloadRunning) {
			return fmt.Errorf("%+v", w)
		}
		if n, err := getCount(port); err != nil || n != 3 {
			return fmt.Errorf("GET / = %d, %v; want 3", n, err)
		}
		return nil
	})
	rec, _ := tc.node("c1").rep.view().Node("a1")
	if rec.State != fsm.NodeDoomed || !rec.Deadline.Equal(deadline) {
		t.Fatalf("a1 in Raft: %s, deadline %v", rec.State, rec.Deadline)
	}
	kinds := map[string]bool{}
	for _, h := range tc.node("c1").rep.view().Hazards() {
		kinds[h.Kind] = h.Node == "a1"
	}
	if !kinds[cloud.KindRebalance] || !kinds[cloud.KindPreempt] {
		t.Fatalf("hazards %+v", tc.node("c1").rep.view().Hazards())
	}
	eventually(t, 5*time.Second, "the notice acknowledged", func() error {
		if a := fw.acks(); len(a) != 1 || a[0] != "ev-1" {
			return fmt.Errorf("acks %v", a)
		}
		return nil
	})
}

// TestDoomedControlPlaneEvacuatesItself: five peers, three voters and two
// spares. A notice on the leader's host moves leadership away first and
// a spare takes its vote; a notice on another voter's host has a spare
// take that vote too. Through both, one leader leads and three voters
// vote, none of them doomed.
func TestDoomedControlPlaneEvacuatesItself(t *testing.T) {
	watchers := map[string]*fakeWatcher{}
	peers := []peerSpec{{"a1", "a"}, {"b1", "b"}, {"c1", "c"}, {"d1", "d"}, {"e1", "e"}}
	for _, p := range peers {
		watchers[p.name] = &fakeWatcher{notices: make(chan cloud.Notice, 1)}
	}
	tc := newTestClusterWith(t, 2, func(c *Config) { c.Watcher = watchers[c.Name] }, peers...)
	eventually(t, 30*time.Second, "formed", func() error { return shape(tc.status("a1"), 5, 3, 2) })

	doomed := map[string]bool{}
	notice := func(name string) {
		doomed[name] = true
		watchers[name].notices <- cloud.Notice{Cloud: "gcp", Kind: cloud.KindPreempt, Deadline: time.Now().Add(30 * time.Second), SeenAt: time.Now()}
	}
	settled := func(from string) func() error {
		return func() error {
			st := tc.status(from)
			voters := 0
			for _, m := range st.Members {
				if m.Role == api.RoleVoter {
					if doomed[m.Name] {
						return fmt.Errorf("doomed %s still votes: %+v", m.Name, st.Members)
					}
					voters++
				}
			}
			if doomed[st.Leader] || st.Leader == "" {
				return fmt.Errorf("leader %q", st.Leader)
			}
			if voters != 3 {
				return fmt.Errorf("%d voters: %+v", voters, st.Members)
			}
			return nil
		}
	}

	leader := tc.status("a1").Leader
	begin := time.Now()
	notice(leader)
	var observer string
	for _, p := range peers {
		if !doomed[p.name] {
			observer = p.name
			break
		}
	}
	eventually(t, 30*time.Second, "leadership and the vote off the doomed leader", settled(observer))
	t.Logf("doomed leader %s: leadership moved to %s and a spare took its vote %v after the notice",
		leader, tc.status(observer).Leader, time.Since(begin).Round(time.Millisecond))

	var voter string
	for _, m := range tc.status(observer).Members {
		if m.Role == api.RoleVoter && !m.Leader {
			voter = m.Name
			break
		}
	}
	begin = time.Now()
	notice(voter)
	eventually(t, 30*time.Second, "the vote off the doomed voter", settled(observer))
	t.Logf("doomed voter %s replaced by a spare %v after the notice", voter, time.Since(begin).Round(time.Millisecond))
}
