package fsm

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestApplyUnknownCommand(t *testing.T) {
	m := New()
	r := m.Apply(3, []byte{99, '{', '}'})
	if !errors.Is(r.Err, ErrUnknownCommand) || r.Index != 3 || m.Index() != 3 {
		t.Fatalf("unknown command: %+v index %d; want ErrUnknownCommand at 3", r, m.Index())
	}
	r = m.Apply(4, []byte{99 | byte(IgnoreUnknownFlag), '{', '}'})
	if r.Err != nil || r.Index != 4 || m.Index() != 4 {
		t.Fatalf("ignorable unknown command: %+v index %d; want skipped at 4", r, m.Index())
	}
	r = m.Apply(5, []byte{99 | byte(IgnoreUnknownFlag), 'x'})
	if r.Err != nil {
		t.Fatalf("ignorable unknown command with a payload this version cannot read: %v", r.Err)
	}
}

func TestApplyMalformed(t *testing.T) {
	m := New()
	for i, in := range [][]byte{nil, {byte(CmdNodeUpsert)}, append([]byte{byte(CmdNodeUpsert) | byte(IgnoreUnknownFlag)}, "{"...)} {
		index := uint64(i + 1)
		if r := m.Apply(index, in); !errors.Is(r.Err, ErrMalformed) || m.Index() != index {
			t.Fatalf("Apply(%q) = %+v, index %d; want ErrMalformed at %d", in, r, m.Index(), index)
		}
	}
}

func TestApplyKnownIgnorableCommand(t *testing.T) {
	m := New()
	b, err := EncodeIgnorable(NodeUpsert{Node: testNode("n1"), At: t0})
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Apply(1, b); r.Err != nil {
		t.Fatal(r.Err)
	}
	if _, ok := m.Node("n1"); !ok {
		t.Fatal("a known command with the ignore flag was not applied")
	}
}

func TestNotify(t *testing.T) {
	m := New()
	ch := m.Notify()
	if ch != m.Notify() {
		t.Fatal("Notify returned different channels with no change in between")
	}
	assertOpen(t, ch)
	m.Apply(1, []byte{99}) // even a refused command wakes watchers: the index moved
	assertClosed(t, ch)
	next := m.Notify()
	assertOpen(t, next)
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := New().Restore(bytesReader(snap)); err != nil {
		t.Fatal(err)
	}
	assertOpen(t, next)
	if err := m.Restore(bytesReader(snap)); err != nil {
		t.Fatal(err)
	}
	assertClosed(t, next)
}

func assertOpen(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
		t.Fatal("channel closed, want open")
	default:
	}
}

func assertClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	default:
		t.Fatal("channel open, want closed")
	}
}

func TestAccessorsSortAndReportMissing(t *testing.T) {
	h := newHarness(t)
	for _, n := range []string{"c", "a", "b"} {
		h.ok(NodeUpsert{Node: testNode(n), At: t0})
		h.ok(WorkloadSubmit{Spec: testSpec("w" + n), At: t0})
	}
	var names, ids []string
	for _, n := range h.m.Nodes() {
		names = append(names, n.Name)
	}
	for _, w := range h.m.Workloads() {
		ids = append(ids, w.Spec.ID)
	}
	if !reflect.DeepEqual(names, []string{"a", "b", "c"}) || !reflect.DeepEqual(ids, []string{"wa", "wb", "wc"}) {
		t.Fatalf("nodes %v workloads %v: want sorted", names, ids)
	}
	if _, ok := h.m.Node("z"); ok {
		t.Error("Node(z) found")
	}
	if _, ok := h.m.Workload("z"); ok {
		t.Error("Workload(z) found")
	}
	empty := New()
	if empty.Nodes() == nil || empty.Workloads() == nil || empty.Migrations() == nil || empty.Hazards() == nil {
		t.Error("an empty machine returned a nil list; want empty lists")
	}
}

// TestAccessorsReturnCopies mutates everything the accessors return and
// checks that the state did not change.
func TestAccessorsReturnCopies(t *testing.T) {
	h := newHarness(t)
	h.ok(NodeUpsert{Node: testNode("n1"), At: t0})
	e := h.grant("w", "n1")
	h.ok(WorkloadSetStandbys{Workload: "w", Standbys: []string{"n2"}})
	seq := h.ok(CheckpointPrepare{Workload: "w", Epoch: e, Digest: "d", At: t0}).Value.(uint64)
	h.ok(CheckpointCommit{Workload: "w", Seq: seq, Digest: "d", Standbys: []string{"n2"}, At: t0})
	e = h.grant("w", "n2")
	h.ok(ResultAppend{Workload: "w", Epoch: e, Value: "v", At: t0})
	h.ok(MigrationBegin{Migration: Migration{ID: "m"}, At: t0})
	h.ok(HazardRecord{Hazard: Hazard{Kind: "preempt"}})
	h.ok(CheckpointPrepare{Workload: "w", Epoch: e, Digest: "p", At: t0})
	h.ok(WorkloadSetStandbys{Workload: "w", Standbys: []string{"n3"}})
	before := stateWithoutIndex(t, h.m)
	mutateAll(h.m)
	if after := stateWithoutIndex(t, h.m); after != before {
		t.Fatalf("mutating accessor results changed the state:\nbefore %s\nafter  %s", before, after)
	}
}

func mutateAll(m *Machine) {
	for _, n := range append(m.Nodes(), must(m.Node("n1"))) {
		n.Modes[0] = "mutated"
	}
	for _, w := range append(m.Workloads(), must(m.Workload("w"))) {
		w.Spec.Command[0], w.Spec.Env["MODE"], w.Spec.Service.Port = "x", "x", 1
		w.Spec.Placement.Prefer[0], w.Spec.Placement.Clouds[0] = "x", "x"
		w.Assignment.Standbys[0], w.Tombstones[0], w.Results[0].Value = "x", 1, "x"
		w.Checkpoints[0].Standbys[0], w.Pending.Digest = "x", "x"
	}
	m.Migrations()[0].Phases[0].Phase = "x"
	m.Hazards()[0].Kind = "x"
}

func must[T any](v T, ok bool) T {
	if !ok {
		panic("not found")
	}
	return v
}

func TestConcurrentReadsDuringApply(t *testing.T) {
	m := New()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-m.Notify():
				}
				m.Nodes()
				m.Workloads()
				if _, err := m.Snapshot(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range 200 {
		c := Command(LeaseRenew{Nodes: []string{"n1"}, At: t0.Add(time.Duration(i)), TTL: time.Second})
		if i%10 == 0 {
			c = NodeUpsert{Node: testNode("n1"), At: t0}
		}
		m.Apply(uint64(i+1), encodeOrFail(t, c))
	}
	close(stop)
	wg.Wait()
}
