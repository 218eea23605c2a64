package fsm

import (
	"reflect"
	"testing"
	"time"
)

func TestNodeUpsertNew(t *testing.T) {
	h := newHarness(t)
	in := testNode("n1")
	in.State, in.Drained, in.Deadline = NodeLost, true, t0 // not the proposer's to set
	in.LeaseExpiry = t0.Add(6 * time.Second)
	h.ok(NodeUpsert{Node: in, At: t0})
	want := testNode("n1")
	want.State, want.UpdatedAt, want.LeaseExpiry = NodeAlive, t0, t0.Add(6*time.Second)
	if got := h.node("n1"); !reflect.DeepEqual(got, want) {
		t.Fatalf("node = %#v\nwant %#v", got, want)
	}
}

func TestNodeUpsertExisting(t *testing.T) {
	tests := []struct {
		from, want NodeState
	}{
		{NodeAlive, NodeAlive},
		{NodeDoomed, NodeDoomed},
		{NodeDraining, NodeDraining},
		{NodeLost, NodeAlive},
		{NodeLeft, NodeAlive},
	}
	for _, tt := range tests {
		t.Run(string(tt.from), func(t *testing.T) {
			h := newHarness(t)
			h.ok(NodeUpsert{Node: testNode("n1"), At: t0})
			h.m.state.Nodes["n1"].State = tt.from
			h.ok(LeaseRenew{Nodes: []string{"n1"}, At: t0, TTL: time.Hour})
			h.m.state.Nodes["n1"].State = tt.from
			h.ok(NodeStateChange{Node: "n1", State: NodeDraining, At: t0})
			h.m.state.Nodes["n1"].State = tt.from
			moved := testNode("n1")
			moved.Addr, moved.Zone, moved.Modes = "10.9.9.9", "eu-west-1b", []string{ModeNone}
			moved.LeaseExpiry = t0 // ignored for an existing node
			h.ok(NodeUpsert{Node: moved, At: t0.Add(time.Minute)})
			got := h.node("n1")
			if got.State != tt.want || !got.Drained || !got.LeaseExpiry.Equal(t0.Add(time.Hour)) {
				t.Fatalf("state %s drained %v lease %v; want %s, drained, lease kept", got.State, got.Drained, got.LeaseExpiry, tt.want)
			}
			if got.Addr != moved.Addr || got.Zone != moved.Zone || !reflect.DeepEqual(got.Modes, moved.Modes) || !got.UpdatedAt.Equal(t0.Add(time.Minute)) {
				t.Fatalf("identity not replaced: %#v", got)
			}
		})
	}
}

func TestNodeUpsertRefusesEmptyName(t *testing.T) {
	newHarness(t).refuse(NodeUpsert{Node: Node{Addr: "10.0.0.1"}, At: t0}, ErrInvalid)
}

func TestLeaseRenew(t *testing.T) {
	h := newHarness(t)
	for _, n := range []string{"a", "b", "c", "d"} {
		h.ok(NodeUpsert{Node: testNode(n), At: t0})
	}
	h.ok(LeaseExpire{Node: "b", At: t0})
	h.ok(NodeStateChange{Node: "c", State: NodeLeft, At: t0})
	h.ok(LeaseRenew{Nodes: []string{"a", "b", "c", "ghost"}, At: t0, TTL: 6 * time.Second})
	want := map[string]NodeState{"a": NodeAlive, "b": NodeAlive, "c": NodeLeft, "d": NodeAlive}
	for name, st := range want {
		n := h.node(name)
		renewed := name != "d"
		if n.State != st || n.LeaseExpiry.Equal(t0.Add(6*time.Second)) != renewed {
			t.Errorf("%s: state %s lease %v; want %s, renewed %v", name, n.State, n.LeaseExpiry, st, renewed)
		}
	}
	if _, ok := h.m.Node("ghost"); ok {
		t.Error("renewal created an unknown node")
	}
}

func TestLeaseRenewRefuses(t *testing.T) {
	for name, c := range map[string]LeaseRenew{
		"zero ttl":     {Nodes: []string{"n1"}, At: t0},
		"negative ttl": {Nodes: []string{"n1"}, At: t0, TTL: -time.Second},
		"past 9999":    {Nodes: []string{"n1"}, At: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), TTL: time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.ok(NodeUpsert{Node: testNode("n1"), At: t0})
			h.refuse(c, ErrInvalid)
		})
	}
}

func TestLeaseExpire(t *testing.T) {
	lease := t0.Add(6 * time.Second)
	tests := []struct {
		name  string
		state NodeState
		at    time.Time
		seen  uint64 // renewals the proposer saw; the node has 1
		want  error
	}{
		{"lapsed", NodeAlive, lease.Add(time.Nanosecond), 1, nil},
		// The leader decides on its own clock: a stamp before the
		// recorded expiry (its wall clock stepped back) does not matter.
		{"wall clock stepped back", NodeAlive, lease.Add(-time.Hour), 1, nil},
		{"doomed lapsed", NodeDoomed, lease.Add(time.Second), 1, nil},
		{"renewal raced ahead", NodeAlive, lease.Add(time.Hour), 0, ErrLeaseValid},
		{"left", NodeLeft, lease.Add(time.Hour), 1, ErrLeaseValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.ok(NodeUpsert{Node: testNode("n1"), At: t0})
			h.ok(LeaseRenew{Nodes: []string{"n1"}, At: t0, TTL: 6 * time.Second})
			if got := h.node("n1").Renewals; got != 1 {
				t.Fatalf("renewals = %d after one renewal", got)
			}
			h.m.state.Nodes["n1"].State = tt.state
			c := LeaseExpire{Node: "n1", At: tt.at, Renewals: tt.seen}
			if tt.want != nil {
				h.refuse(c, tt.want)
				return
			}
			h.ok(c)
			if n := h.node("n1"); n.State != NodeLost || !n.UpdatedAt.Equal(tt.at) {
				t.Fatalf("state %s updated %v, want lost at %v", n.State, n.UpdatedAt, tt.at)
			}
		})
	}
}

func TestLeaseExpireUnknownNode(t *testing.T) {
	newHarness(t).refuse(LeaseExpire{Node: "ghost", At: t0}, ErrNotFound)
}

func TestNodeStateChange(t *testing.T) {
	deadline := t0.Add(2 * time.Minute)
	tests := []struct {
		to           NodeState
		wantDrained  bool
		wantDeadline time.Time
	}{
		{NodeDraining, true, deadline}, // keeps the earlier deadline
		{NodeAlive, false, time.Time{}},
		{NodeDoomed, true, t0.Add(time.Minute)},
		{NodeLeft, true, deadline},
	}
	for _, tt := range tests {
		t.Run(string(tt.to), func(t *testing.T) {
			h := newHarness(t)
			h.ok(NodeUpsert{Node: testNode("n1"), At: t0})
			h.ok(NodeStateChange{Node: "n1", State: NodeDoomed, Deadline: deadline, At: t0})
			h.ok(NodeStateChange{Node: "n1", State: NodeDraining, At: t0})
			h.ok(NodeStateChange{Node: "n1", State: tt.to, Deadline: t0.Add(time.Minute), At: t0.Add(time.Second)})
			n := h.node("n1")
			if n.State != tt.to || n.Drained != tt.wantDrained || !n.Deadline.Equal(tt.wantDeadline) || !n.UpdatedAt.Equal(t0.Add(time.Second)) {
				t.Fatalf("got %s drained %v deadline %v updated %v; want %s drained %v deadline %v",
					n.State, n.Drained, n.Deadline, n.UpdatedAt, tt.to, tt.wantDrained, tt.wantDeadline)
			}
		})
	}
}

func TestNodeStateChangeRefuses(t *testing.T) {
	tests := []struct {
		name string
		c    NodeStateChange
		want error
	}{
		{"lost", NodeStateChange{Node: "n1", State: NodeLost, At: t0}, ErrInvalid},
		{"suspect", NodeStateChange{Node: "n1", State: "suspect", At: t0}, ErrInvalid},
		{"empty", NodeStateChange{Node: "n1", At: t0}, ErrInvalid},
		{"unknown node", NodeStateChange{Node: "ghost", State: NodeDraining, At: t0}, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.ok(NodeUpsert{Node: testNode("n1"), At: t0})
			h.refuse(tt.c, tt.want)
		})
	}
}

func TestNodeRemove(t *testing.T) {
	h := newHarness(t)
	h.ok(NodeUpsert{Node: testNode("n1"), At: t0})
	epoch := h.grant("w", "n1")
	h.ok(NodeRemove{Node: "n1"})
	if _, ok := h.m.Node("n1"); ok {
		t.Fatal("node still there")
	}
	if w := h.workload("w"); w.Assignment.Holder != "n1" || w.Assignment.Epoch != epoch {
		t.Fatalf("removing the holder changed the assignment: %#v", w.Assignment)
	}
	h.refuse(NodeRemove{Node: "n1"}, ErrNotFound)
}
