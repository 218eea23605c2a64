package node

import (
	"log/slog"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/node/peer"
)

// TestMirrorRestoresAnswer: the mirror takes the leader's state, index,
// leader and configuration from one answer, and refuses a state it cannot
// decode without changing what it had.
func TestMirrorRestoresAnswer(t *testing.T) {
	src := fsm.New()
	b, err := fsm.Encode(fsm.WorkloadSubmit{Spec: fsm.WorkloadSpec{ID: "w", Command: []string{"/bin/true"}}.WithDefaults()})
	if err != nil {
		t.Fatal(err)
	}
	if resp := src.Apply(7, b); resp.Err != nil {
		t.Fatal(resp.Err)
	}
	state, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	m := newMirror(slog.New(slog.DiscardHandler))
	if m.index() != 0 || m.leader() != "" {
		t.Fatal("a new mirror claims a state")
	}
	ans := peer.MirrorAnswer{Index: 7, Leader: "a1", State: state,
		Servers: []peer.Server{{ID: "a1", Address: "x:1", Voter: true}, {ID: "b1", Address: "y:1"}}}
	if err := m.restore(ans); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.machine.Workload("w"); !ok || m.index() != 7 || m.leader() != "a1" {
		t.Fatalf("restored index %d leader %q, workload w present: %v", m.index(), m.leader(), ok)
	}
	cfg := m.config()
	if len(cfg) != 2 || cfg[0].Suffrage != raft.Voter || cfg[1].Suffrage != raft.Nonvoter || roleOf("b1", cfg) != "spare" {
		t.Fatalf("configuration %+v", cfg)
	}
	if err := m.restore(peer.MirrorAnswer{Index: 9, Leader: "b1", State: []byte("{not json")}); err == nil {
		t.Fatal("a broken state was restored")
	}
	if m.index() != 7 || m.leader() != "a1" {
		t.Fatalf("a refused answer changed the mirror: index %d leader %q", m.index(), m.leader())
	}
}

func TestDirectoryAddresses(t *testing.T) {
	d := &directory{}
	if len(d.members()) != 0 || d.peerAddrOf("a1") != "" || d.gossipedLeader("") != "" {
		t.Fatal("a directory without gossip knows peers")
	}
	m := gossip.Member{Name: "a1", Meta: gossip.Meta{Addr: "10.0.0.1", RaftPort: 7947, TransferPort: 0}}
	if got := metaAddr(m, raftPort); got != "10.0.0.1:7947" {
		t.Fatalf("peer address %q", got)
	}
	if got := metaAddr(m, transferPort); got != "" {
		t.Fatalf("a member gossiping no transfer port has transfer address %q", got)
	}
}
