package node

import (
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/transfer"
)

// applier applies commands to m at consecutive indexes and returns each
// one's index; a refused command fails the test.
func applier(t *testing.T, m *fsm.Machine) func(fsm.Command) uint64 {
	idx := uint64(0)
	return func(c fsm.Command) uint64 {
		t.Helper()
		b, err := fsm.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		idx++
		if r := m.Apply(idx, b); r.Err != nil {
			t.Fatalf("%T: %v", c, r.Err)
		}
		return idx
	}
}

// TestLazyHolder: the page relay serves a lazy checkpoint's memory only
// to a peer that Raft lists as its holder, or, before the commit, to the
// target of the move under way that prepared it.
func TestLazyHolder(t *testing.T) {
	m := fsm.New()
	apply := applier(t, m)
	want := func(peer, self, msg string) {
		t.Helper()
		err := lazyHolder(m, peer, "w", 2, self)
		if msg == "" && err != nil || msg != "" && (err == nil || !strings.Contains(err.Error(), msg)) {
			t.Fatalf("%s asking %s: %v, want %q", peer, self, err, msg)
		}
	}
	now := time.Now()
	for _, n := range []string{"a1", "b1", "c1"} {
		apply(fsm.NodeUpsert{Node: fsm.Node{Name: n, Zone: n[:1]}, At: now})
	}
	spec := fsm.WorkloadSpec{ID: "w", Command: []string{"/bin/true"},
		Checkpoint: fsm.CheckpointPolicy{Mode: fsm.ModeCRIU, LazyPages: true}}.WithDefaults()
	apply(fsm.WorkloadSubmit{Spec: spec, At: now})
	epoch := apply(fsm.WorkloadGrant{Workload: "w", Holder: "a1", At: now})
	apply(fsm.CheckpointPrepare{Workload: "w", Epoch: epoch, Seq: 1, Digest: "d1", At: now})
	apply(fsm.CheckpointCommit{Workload: "w", Seq: 1, Digest: "d1", Standbys: []string{"a1", "b1"}, At: now})
	want("b1", "a1", "no committed checkpoint #2")

	apply(fsm.MigrationBegin{Migration: fsm.Migration{ID: "m", Workload: "w", From: "a1", To: "b1",
		Phase: fsm.PhaseCheckpointing}, At: now})
	apply(fsm.CheckpointPrepare{Workload: "w", Epoch: epoch, Seq: 2, Digest: "d2", LazyFrom: "a1", At: now})
	want("b1", "a1", "")                        // the move's target, before the commit
	want("c1", "a1", "no committed checkpoint") // not the target
	want("b1", "c1", "no committed checkpoint") // asked of a node the lazy checkpoint is not from
	apply(fsm.MigrationPhase{ID: "m", Phase: fsm.PhaseFailed, At: now})
	want("b1", "a1", "no committed checkpoint") // the move is over

	apply(fsm.CheckpointCommit{Workload: "w", Seq: 2, Digest: "d2", Standbys: []string{"b1"}, At: now})
	want("b1", "a1", "")
	want("c1", "a1", "c1 does not hold lazy checkpoint #2")
	want("b1", "c1", "is not a lazy checkpoint of c1")
}

// TestOfferMustMatchThePreparedCheckpoint: the transfer server takes a
// checkpoint only from the workload's holder, and only the one Raft has
// prepared, digest and all.
func TestOfferMustMatchThePreparedCheckpoint(t *testing.T) {
	m := fsm.New()
	apply := applier(t, m)
	man := &transfer.Manifest{Workload: "w", Seq: 1}
	want := func(peer, digest, msg string) {
		t.Helper()
		err := offerMatches(m, peer, man, digest)
		if msg == "" && err != nil || msg != "" && (err == nil || !strings.Contains(err.Error(), msg)) {
			t.Fatalf("offer from %s with digest %q: %v, want %q", peer, digest, err, msg)
		}
	}
	want("a1", "d1", "unknown")
	now := time.Now()
	apply(fsm.NodeUpsert{Node: fsm.Node{Name: "a1", Zone: "a"}, At: now})
	apply(fsm.WorkloadSubmit{Spec: fsm.WorkloadSpec{ID: "w", Command: []string{"/bin/true"}}.WithDefaults(), At: now})
	epoch := apply(fsm.WorkloadGrant{Workload: "w", Holder: "a1", At: now})
	want("a1", "d1", "not prepared")
	apply(fsm.CheckpointPrepare{Workload: "w", Epoch: epoch, Seq: 1, Digest: "d1", At: now})
	want("b1", "d1", "b1 does not hold")
	want("a1", "d2", "another manifest digest")
	want("a1", "d1", "")
}
