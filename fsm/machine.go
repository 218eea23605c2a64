package fsm

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Machine is the replicated state machine. Apply and Restore are called by
// one goroutine (Raft's FSM goroutine); the read accessors, Snapshot and
// Notify may be called from any goroutine at the same time.
type Machine struct {
	// mu guards state and notify. Apply and Restore hold it for writing;
	// everything else for reading.
	mu     sync.RWMutex
	state  *State
	notify chan struct{}
}

// New returns a Machine with an empty state at index 0.
func New() *Machine {
	return &Machine{state: newState(), notify: make(chan struct{})}
}

func newState() *State {
	return &State{Nodes: map[string]*Node{}, Workloads: map[string]*Workload{}}
}

// Apply decodes and applies the command committed at Raft index index.
// A refused command leaves the state unchanged except State.Index, and the
// refusal is Response.Err (wrapping one of the sentinels). An unknown
// command type with IgnoreUnknownFlag is skipped with a nil Err. Apply is
// deterministic: replicas applying the same entries reach the same state.
//
// Response.Value is the new epoch (uint64) for WorkloadGrant, the Seq
// (uint64) for CheckpointPrepare, the committed CheckpointRecord for
// CheckpointCommit, the appended Result for ResultAppend, and nil otherwise.
func (m *Machine) Apply(index uint64, data []byte) Response {
	m.mu.Lock()
	defer m.mu.Unlock()
	value, err := m.applyLocked(index, data)
	m.state.Index = index
	m.wakeLocked()
	return Response{Index: index, Err: err, Value: value}
}

func (m *Machine) applyLocked(index uint64, data []byte) (any, error) {
	c, err := Decode(data)
	if errors.Is(err, ErrUnknownCommand) && Ignorable(data) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return m.state.apply(index, c)
}

// wakeLocked closes the channel handed out by Notify and makes a new one.
func (m *Machine) wakeLocked() {
	close(m.notify)
	m.notify = make(chan struct{})
}

// Notify returns a channel that is closed at the next Apply or Restore.
// Watchers call it again after each wake-up to wait for the next change.
func (m *Machine) Notify() <-chan struct{} {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.notify
}

// apply dispatches a decoded command to its handler. Handlers check
// everything before changing anything, so a refusal changes nothing.
func (s *State) apply(index uint64, c Command) (any, error) {
	switch c := c.(type) {
	case NodeUpsert:
		return nil, s.nodeUpsert(c)
	case LeaseRenew:
		return nil, s.leaseRenew(c)
	case LeaseExpire:
		return nil, s.leaseExpire(c)
	case NodeStateChange:
		return nil, s.nodeStateChange(c)
	case NodeRemove:
		return nil, s.nodeRemove(c)
	case WorkloadSubmit:
		return nil, s.workloadSubmit(c)
	case WorkloadGrant:
		return s.workloadGrant(index, c)
	case WorkloadReport:
		return nil, s.workloadReport(c)
	case WorkloadRemove:
		return nil, s.workloadRemove(c)
	case WorkloadSetStandbys:
		return nil, s.workloadSetStandbys(c)
	case WorkloadPreempt:
		return nil, s.workloadPreempt(c)
	case CheckpointPrepare:
		return s.checkpointPrepare(c)
	case CheckpointCommit:
		return s.checkpointCommit(c)
	case CheckpointAbort:
		return nil, s.checkpointAbort(c)
	case MigrationBegin:
		return nil, s.migrationBegin(c)
	case MigrationPhase:
		return nil, s.migrationPhase(c)
	case ResultAppend:
		return s.resultAppend(index, c)
	case HazardRecord:
		return nil, s.hazardRecord(c)
	}
	return nil, fmt.Errorf("%w: no handler for %T", ErrUnknownCommand, c)
}

// Index returns the Raft index of the last applied command (or of the
// restored snapshot).
func (m *Machine) Index() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.state.Index
}

// Nodes returns copies of all nodes, sorted by name.
func (m *Machine) Nodes() []Node {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Node, 0, len(m.state.Nodes))
	for _, name := range slices.Sorted(maps.Keys(m.state.Nodes)) {
		out = append(out, cloneNode(*m.state.Nodes[name]))
	}
	return out
}

// Node returns a copy of the named node and reports whether it is known.
func (m *Machine) Node(name string) (Node, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, ok := m.state.Nodes[name]
	if !ok {
		return Node{}, false
	}
	return cloneNode(*n), true
}

// Workloads returns copies of all workloads, sorted by id.
func (m *Machine) Workloads() []Workload {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Workload, 0, len(m.state.Workloads))
	for _, id := range slices.Sorted(maps.Keys(m.state.Workloads)) {
		out = append(out, cloneWorkload(m.state.Workloads[id]))
	}
	return out
}

// Workload returns a copy of the workload and reports whether it is known.
func (m *Machine) Workload(id string) (Workload, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	w, ok := m.state.Workloads[id]
	if !ok {
		return Workload{}, false
	}
	return cloneWorkload(w), true
}

// Migrations returns copies of the kept migration records, oldest first.
func (m *Machine) Migrations() []Migration {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Migration, 0, len(m.state.Migrations))
	for _, mig := range m.state.Migrations {
		out = append(out, cloneMigration(mig))
	}
	return out
}

// Hazards returns a copy of the kept hazard records, oldest first.
func (m *Machine) Hazards() []Hazard {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append(make([]Hazard, 0, len(m.state.Hazards)), m.state.Hazards...)
}
