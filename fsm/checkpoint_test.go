package fsm

import (
	"reflect"
	"testing"
	"time"
)

func TestCheckpointPrepare(t *testing.T) {
	h := newHarness(t)
	e := h.grant("w", "n1")
	if r := h.ok(CheckpointPrepare{Workload: "w", Epoch: e, Digest: "d1", Bytes: 10, At: t0}); r.Value != uint64(1) {
		t.Fatalf("first seq %v, want 1", r.Value)
	}
	if r := h.ok(CheckpointPrepare{Workload: "w", Epoch: e, Digest: "d2", Bytes: 20, At: t0.Add(time.Second)}); r.Value != uint64(2) {
		t.Fatalf("second seq %v, want 2", r.Value)
	}
	w := h.workload("w")
	want := &CheckpointRecord{Seq: 2, Epoch: e, Digest: "d2", Bytes: 20, PreparedAt: t0.Add(time.Second)}
	if !reflect.DeepEqual(w.Pending, want) || w.NextSeq != 3 {
		t.Fatalf("pending %#v next %d; want %#v next 3", w.Pending, w.NextSeq, want)
	}
}

func TestCheckpointPrepareRefuses(t *testing.T) {
	h := newHarness(t)
	old := h.grant("w", "n1")
	e := h.grant("w", "n2")
	tests := []struct {
		name string
		c    CheckpointPrepare
		want error
	}{
		{"old epoch", CheckpointPrepare{Workload: "w", Epoch: old, Digest: "d"}, ErrStaleEpoch},
		{"zero epoch", CheckpointPrepare{Workload: "w", Digest: "d"}, ErrStaleEpoch},
		{"unknown workload", CheckpointPrepare{Workload: "ghost", Epoch: e, Digest: "d"}, ErrNotFound},
		{"no digest", CheckpointPrepare{Workload: "w", Epoch: e}, ErrInvalid},
		{"negative bytes", CheckpointPrepare{Workload: "w", Epoch: e, Digest: "d", Bytes: -1}, ErrInvalid},
		{"lazy, not from the holder", CheckpointPrepare{Workload: "w", Epoch: e, Digest: "d", LazyFrom: "n1"}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { h.refuse(tt.c, tt.want) })
	}
}

func TestCheckpointCommitKeepsTheNewest(t *testing.T) {
	h := newHarness(t)
	e := h.grant("w", "n1")
	var want []CheckpointRecord
	for i := range KeepCheckpoints + 2 {
		at := t0.Add(time.Duration(i) * time.Minute)
		seq := h.ok(CheckpointPrepare{Workload: "w", Epoch: e, Digest: "d", Bytes: int64(i), At: at}).Value.(uint64)
		r := h.ok(CheckpointCommit{Workload: "w", Seq: seq, Digest: "d", Standbys: []string{"n2"}, At: at.Add(time.Second)})
		rec := CheckpointRecord{Seq: seq, Epoch: e, Digest: "d", Bytes: int64(i), Standbys: []string{"n2"}, PreparedAt: at, CommittedAt: at.Add(time.Second)}
		if !reflect.DeepEqual(r.Value, rec) {
			t.Fatalf("commit returned %#v, want %#v", r.Value, rec)
		}
		want = append(want, rec)
	}
	w := h.workload("w")
	if !reflect.DeepEqual(w.Checkpoints, want[len(want)-KeepCheckpoints:]) || w.Pending != nil {
		t.Fatalf("checkpoints %#v pending %#v\nwant %#v and none pending", w.Checkpoints, w.Pending, want[len(want)-KeepCheckpoints:])
	}
}

func TestCheckpointCommitRefuses(t *testing.T) {
	h := newHarness(t)
	e := h.grant("w", "n1")
	h.grant("idle", "n1")
	seq := h.ok(CheckpointPrepare{Workload: "w", Epoch: e, Digest: "d", At: t0}).Value.(uint64)
	tests := []struct {
		name string
		c    CheckpointCommit
		want error
	}{
		{"wrong seq", CheckpointCommit{Workload: "w", Seq: seq + 1, Digest: "d"}, ErrNoPending},
		{"wrong digest", CheckpointCommit{Workload: "w", Seq: seq, Digest: "e"}, ErrNoPending},
		{"nothing pending", CheckpointCommit{Workload: "idle", Seq: 1, Digest: "d"}, ErrNoPending},
		{"unknown workload", CheckpointCommit{Workload: "ghost", Seq: seq, Digest: "d"}, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { h.refuse(tt.c, tt.want) })
	}
}

func TestCheckpointOfAnOldEpochCannotCommit(t *testing.T) {
	h := newHarness(t)
	e := h.grant("w", "n1")
	seq := h.ok(CheckpointPrepare{Workload: "w", Epoch: e, Digest: "d", At: t0}).Value.(uint64)
	h.grant("w", "n2")
	h.refuse(CheckpointCommit{Workload: "w", Seq: seq, Digest: "d"}, ErrNoPending)
}

func TestCheckpointAbort(t *testing.T) {
	h := newHarness(t)
	e := h.grant("w", "n1")
	seq := h.ok(CheckpointPrepare{Workload: "w", Epoch: e, Digest: "d", At: t0}).Value.(uint64)
	h.refuse(CheckpointAbort{Workload: "w", Seq: seq + 1}, ErrNoPending)
	h.refuse(CheckpointAbort{Workload: "ghost", Seq: seq}, ErrNotFound)
	h.ok(CheckpointAbort{Workload: "w", Seq: seq, Reason: "standby lost"})
	if w := h.workload("w"); w.Pending != nil || w.NextSeq != seq+1 {
		t.Fatalf("pending %#v next %d: want none, seq not reused", w.Pending, w.NextSeq)
	}
	h.refuse(CheckpointAbort{Workload: "w", Seq: seq}, ErrNoPending)
	h.refuse(CheckpointCommit{Workload: "w", Seq: seq, Digest: "d"}, ErrNoPending)
}

// TestPrepareExpectedSeq: a holder that names the seq it built its manifest
// for is refused when another checkpoint took that seq first.
func TestPrepareExpectedSeq(t *testing.T) {
	h := newHarness(t)
	h.ok(WorkloadSubmit{Spec: testSpec("w")})
	epoch := h.grant("w", "n1")
	next := h.workload("w").NextSeq
	h.ok(CheckpointPrepare{Workload: "w", Epoch: epoch, Seq: next, Digest: "d1", Bytes: 1})
	h.refuse(CheckpointPrepare{Workload: "w", Epoch: epoch, Seq: next, Digest: "d2", Bytes: 1}, ErrStaleEpoch)
	if got := h.workload("w").Pending; got == nil || got.Digest != "d1" {
		t.Fatalf("pending = %+v, want the first prepare to stand", got)
	}
}

// TestLazyCheckpointsNeverPushOutCompleteOnes: a lazy checkpoint is kept
// only while it is the newest, and the complete ones before it stay.
func TestLazyCheckpointsNeverPushOutCompleteOnes(t *testing.T) {
	h := newHarness(t)
	e := h.grant("w", "n1")
	commit := func(lazyFrom string) uint64 {
		t.Helper()
		seq := h.ok(CheckpointPrepare{Workload: "w", Epoch: e, Digest: "d", LazyFrom: lazyFrom, At: t0}).Value.(uint64)
		h.ok(CheckpointCommit{Workload: "w", Seq: seq, Digest: "d", Standbys: []string{"n1", "n2"}, At: t0})
		return seq
	}
	seqs := func() []uint64 {
		var out []uint64
		for _, c := range h.workload("w").Checkpoints {
			out = append(out, c.Seq)
		}
		return out
	}
	commit("")
	commit("")
	lazy1 := commit("n1")
	lazy2 := commit("n1")
	if got, want := seqs(), []uint64{1, 2, lazy1, lazy2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after two lazy checkpoints: %v, want %v (both complete ones kept)", got, want)
	}
	if c := h.workload("w").Checkpoints[3]; c.LazyFrom != "n1" {
		t.Fatalf("the lazy record lost its source: %#v", c)
	}
	full := commit("")
	if got, want := seqs(), []uint64{2, full}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after a complete one: %v, want %v (the lazy ones dropped)", got, want)
	}
}
