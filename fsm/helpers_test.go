package fsm

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// t0 is the proposer-stamped time the tests start from.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// harness applies commands to a Machine at consecutive indices.
type harness struct {
	t     *testing.T
	m     *Machine
	index uint64
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return &harness{t: t, m: New()}
}

func encodeOrFail(t testing.TB, c Command) []byte {
	t.Helper()
	b, err := Encode(c)
	if err != nil {
		t.Fatalf("Encode(%#v): %v", c, err)
	}
	return b
}

// apply applies c at the next index and checks the response's index.
func (h *harness) apply(c Command) Response {
	h.t.Helper()
	h.index++
	r := h.m.Apply(h.index, encodeOrFail(h.t, c))
	if r.Index != h.index || h.m.Index() != h.index {
		h.t.Fatalf("Apply at %d: Response.Index %d, Machine.Index %d", h.index, r.Index, h.m.Index())
	}
	return r
}

// ok applies c and fails the test if it is refused.
func (h *harness) ok(c Command) Response {
	h.t.Helper()
	r := h.apply(c)
	if r.Err != nil {
		h.t.Fatalf("%T refused: %v", c, r.Err)
	}
	return r
}

// refuse applies c, checks the refusal wraps want and that nothing but
// the index changed.
func (h *harness) refuse(c Command, want error) Response {
	h.t.Helper()
	before := stateWithoutIndex(h.t, h.m)
	r := h.apply(c)
	if !errors.Is(r.Err, want) {
		h.t.Fatalf("%T: got error %v, want %v", c, r.Err, want)
	}
	if after := stateWithoutIndex(h.t, h.m); after != before {
		h.t.Fatalf("%T refused but changed the state:\nbefore %s\nafter  %s", c, before, after)
	}
	return r
}

// stateWithoutIndex is the snapshot with Index zeroed.
func stateWithoutIndex(t testing.TB, m *Machine) string {
	t.Helper()
	b, err := m.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("decode snapshot: %v", err)
	}
	st.Index = 0
	out, err := json.Marshal(&st)
	if err != nil {
		t.Fatalf("encode snapshot: %v", err)
	}
	return string(out)
}

func (h *harness) node(name string) Node {
	h.t.Helper()
	n, ok := h.m.Node(name)
	if !ok {
		h.t.Fatalf("node %q not found", name)
	}
	return n
}

func (h *harness) workload(id string) Workload {
	h.t.Helper()
	w, ok := h.m.Workload(id)
	if !ok {
		h.t.Fatalf("workload %q not found", id)
	}
	return w
}

// grant submits (if needed) and grants id to holder, returning the epoch.
func (h *harness) grant(id, holder string) uint64 {
	h.t.Helper()
	if _, ok := h.m.Workload(id); !ok {
		h.ok(WorkloadSubmit{Spec: testSpec(id), At: t0})
	}
	return h.ok(WorkloadGrant{Workload: id, Holder: holder, At: t0}).Value.(uint64)
}

func testNode(name string) Node {
	return Node{
		Name: name, Cloud: "aws", Region: "eu-west-1", Zone: "eu-west-1a",
		InstanceID: "i-" + name, InstanceType: "m7g.large", Lifecycle: "spot",
		Capacity: Resources{MemoryMiB: 8192, CPUMillis: 2000},
		Addr:     "10.0.0.1", Ports: Ports{Gossip: 7946, Raft: 7947, Transfer: 7948, HTTP: 7949, Ingress: 7950},
		Modes: []string{ModeCRIU, ModeApp, ModeNone},
	}
}

func testSpec(id string) WorkloadSpec {
	return WorkloadSpec{
		ID:         id,
		Command:    []string{"/usr/local/bin/counter", "--port", "8080"},
		Env:        map[string]string{"MODE": "prod"},
		Checkpoint: CheckpointPolicy{Mode: ModeCRIU, Interval: Duration(30 * time.Second)},
		Priority:   PriorityCritical,
		Resources:  Resources{MemoryMiB: 64, CPUMillis: 500},
		Service:    &Service{Port: 8080, Listen: 18080, Protocol: ProtocolHTTP, SLO: Duration(100 * time.Millisecond)},
		Placement:  Constraints{Prefer: []string{"n1"}, Clouds: []string{"aws", "gcp"}},
		Standbys:   1,
	}
}

// sampleCommands holds one realistic command of every type.
func sampleCommands() []Command {
	return []Command{
		NodeUpsert{Node: testNode("n1"), At: t0},
		LeaseRenew{Nodes: []string{"n1", "n2"}, At: t0, TTL: 6 * time.Second},
		LeaseExpire{Node: "n1", At: t0.Add(10 * time.Second)},
		NodeStateChange{Node: "n1", State: NodeDoomed, Deadline: t0.Add(2 * time.Minute), At: t0},
		NodeRemove{Node: "n1"},
		WorkloadSubmit{Spec: testSpec("counter"), At: t0},
		WorkloadGrant{Workload: "counter", Holder: "n1", Standbys: []string{"n2"}, PrevEpoch: 7, At: t0},
		WorkloadReport{Workload: "counter", Epoch: 7, State: WorkloadRunning, Message: "ok", At: t0},
		WorkloadRemove{Workload: "counter"},
		WorkloadSetStandbys{Workload: "counter", Standbys: []string{"n2", "n3"}},
		WorkloadPreempt{Workload: "counter", PrevEpoch: 7, Reason: "critical work evacuating to n1", At: t0},
		CheckpointPrepare{Workload: "counter", Epoch: 7, Digest: "ab12", Bytes: 1 << 20, At: t0},
		CheckpointCommit{Workload: "counter", Seq: 1, Digest: "ab12", Standbys: []string{"n2"}, At: t0},
		CheckpointAbort{Workload: "counter", Seq: 1, Reason: "standby lost"},
		MigrationBegin{Migration: Migration{ID: "m1", Workload: "counter", From: "n1", To: "n2", Reason: "preempt"}, At: t0},
		MigrationPhase{ID: "m1", Phase: PhaseCutover, Epoch: 9, At: t0},
		ResultAppend{Workload: "counter", Epoch: 7, Value: "42", At: t0, KeepBytes: MaxResultBytes},
		HazardRecord{Hazard: Hazard{Node: "n1", Cloud: "aws", Region: "eu-west-1", Zone: "eu-west-1a", InstanceType: "m7g.large", Kind: "preempt", At: t0}},
	}
}
