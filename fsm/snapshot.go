package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
)

// Snapshot returns the whole state as JSON. It is deterministic: equal
// states give equal bytes (maps are written in key order).
func (m *Machine) Snapshot() ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	b, err := json.Marshal(m.state)
	if err != nil {
		return nil, fmt.Errorf("fsm: snapshot: %w", err)
	}
	return b, nil
}

// Restore replaces the state with a snapshot read from r (Snapshot's
// output). On error the state is unchanged; a snapshot that cannot be
// decoded or is inconsistent gives an error wrapping ErrMalformed.
// Watchers waiting on Notify are woken.
func (m *Machine) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("fsm: restore: read: %w", err)
	}
	st, err := decodeState(b)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = st
	m.wakeLocked()
	return nil
}

// decodeState parses and checks a snapshot. Unknown fields are ignored so
// that a newer replica's snapshot still restores.
func decodeState(b []byte) (*State, error) {
	if p := bytes.TrimLeft(b, " \t\r\n"); len(p) == 0 || p[0] != '{' {
		return nil, fmt.Errorf("%w: snapshot is not a JSON object", ErrMalformed)
	}
	st := newState()
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %v", ErrMalformed, err)
	}
	if st.Nodes == nil {
		st.Nodes = map[string]*Node{}
	}
	if st.Workloads == nil {
		st.Workloads = map[string]*Workload{}
	}
	if err := st.check(); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %v", ErrMalformed, err)
	}
	return st, nil
}

// check reports the first inconsistency that would break Apply or the
// accessors: null entries and map keys that differ from the entry's name.
func (s *State) check() error {
	for _, name := range slices.Sorted(maps.Keys(s.Nodes)) {
		if n := s.Nodes[name]; n == nil || n.Name != name {
			return fmt.Errorf("node %q is null or has another name", name)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.Workloads)) {
		if w := s.Workloads[id]; w == nil || w.Spec.ID != id {
			return fmt.Errorf("workload %q is null or has another id", id)
		}
	}
	for i, mig := range s.Migrations {
		if mig == nil {
			return fmt.Errorf("migration %d is null", i)
		}
	}
	return nil
}
