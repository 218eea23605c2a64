package fsm

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// busyHarness returns a machine with some of everything in it.
func busyHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.ok(NodeUpsert{Node: testNode("n1"), At: t0})
	h.ok(NodeUpsert{Node: testNode("n2"), At: t0})
	h.ok(LeaseRenew{Nodes: []string{"n1", "n2"}, At: t0, TTL: 6 * time.Second})
	h.ok(NodeStateChange{Node: "n2", State: NodeDoomed, Deadline: t0.Add(time.Minute), At: t0})
	e := h.grant("w", "n1")
	seq := h.ok(CheckpointPrepare{Workload: "w", Epoch: e, Digest: "d", Bytes: 9, At: t0}).Value.(uint64)
	h.ok(CheckpointCommit{Workload: "w", Seq: seq, Digest: "d", Standbys: []string{"n2"}, At: t0})
	e = h.grant("w", "n2")
	h.ok(ResultAppend{Workload: "w", Epoch: e, Value: "v", At: t0})
	h.ok(CheckpointPrepare{Workload: "w", Epoch: e, Digest: "p", At: t0})
	h.ok(MigrationBegin{Migration: Migration{ID: "m", Workload: "w", From: "n1", To: "n2"}, At: t0})
	h.ok(HazardRecord{Hazard: Hazard{Node: "n2", Kind: "preempt", At: t0}})
	h.ok(WorkloadSubmit{Spec: testSpec("idle"), At: t0})
	return h
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	h := busyHarness(t)
	snap, err := h.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := h.m.Snapshot()
	if !bytes.Equal(snap, again) {
		t.Fatal("two snapshots of one state differ")
	}
	m := New()
	m.Apply(1, encodeOrFail(t, NodeUpsert{Node: testNode("stale"), At: t0}))
	if err := m.Restore(iotest.OneByteReader(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	restored, _ := m.Snapshot()
	if !bytes.Equal(restored, snap) || m.Index() != h.index {
		t.Fatalf("restored snapshot differs (index %d, want %d):\n%s\n%s", m.Index(), h.index, restored, snap)
	}
	if _, ok := m.Node("stale"); ok {
		t.Fatal("Restore kept the old state")
	}
}

func TestRestoreThenApply(t *testing.T) {
	h := busyHarness(t)
	snap, _ := h.m.Snapshot()
	m := New()
	if err := m.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	next := encodeOrFail(t, WorkloadGrant{Workload: "w", Holder: "n1", At: t0})
	a, b := h.m.Apply(h.index+1, next), m.Apply(h.index+1, next)
	if a.Err != nil || b.Err != nil || a.Value != b.Value {
		t.Fatalf("grant after restore: %+v vs %+v", a, b)
	}
	sa, _ := h.m.Snapshot()
	sb, _ := m.Snapshot()
	if !bytes.Equal(sa, sb) {
		t.Fatalf("states diverged after restore:\n%s\n%s", sa, sb)
	}
}

func TestRestoreEmptyObject(t *testing.T) {
	m := New()
	if err := m.Restore(bytes.NewReader([]byte(`{"index":7}`))); err != nil {
		t.Fatal(err)
	}
	if m.state.Nodes == nil || m.state.Workloads == nil || m.Index() != 7 {
		t.Fatalf("state %#v: want empty maps at index 7", m.state)
	}
	if r := m.Apply(8, encodeOrFail(t, NodeUpsert{Node: testNode("n1"), At: t0})); r.Err != nil {
		t.Fatal(r.Err)
	}
}

func TestRestoreRefuses(t *testing.T) {
	tests := map[string]string{
		"empty":             ``,
		"null":              `null`,
		"array":             `[]`,
		"truncated":         `{"nodes":{`,
		"trailing garbage":  `{} x`,
		"wrong type":        `{"index":"seven"}`,
		"null node":         `{"nodes":{"a":null}}`,
		"renamed node":      `{"nodes":{"a":{"name":"b"}}}`,
		"null workload":     `{"workloads":{"w":null}}`,
		"renamed workload":  `{"workloads":{"w":{"spec":{"id":"v"}}}}`,
		"null migration":    `{"migrations":[null]}`,
		"bad time in state": `{"nodes":{"a":{"name":"a","updated_at":"yesterday"}}}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			h := busyHarness(t)
			before, _ := h.m.Snapshot()
			if err := h.m.Restore(bytes.NewReader([]byte(in))); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Restore(%q) = %v, want ErrMalformed", in, err)
			}
			if after, _ := h.m.Snapshot(); !bytes.Equal(before, after) {
				t.Fatal("a failed Restore changed the state")
			}
		})
	}
}

func TestRestoreReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	if err := New().Restore(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Fatalf("Restore = %v, want the read error", err)
	}
}

func TestRestoreIgnoresUnknownFields(t *testing.T) {
	m := New()
	in := `{"nodes":{"a":{"name":"a","state":"alive","v2_field":1}},"workloads":{},"index":3,"v2_table":{}}`
	if err := m.Restore(bytes.NewReader([]byte(in))); err != nil {
		t.Fatal(err)
	}
	if n, ok := m.Node("a"); !ok || n.State != NodeAlive {
		t.Fatalf("node a = %#v, %v", n, ok)
	}
}
