package fsm

import "maps"

// Deep copies. The state never shares memory with commands or with what the
// read accessors return, and empty slices and maps are stored as nil so that
// a state and its snapshot-restored twin encode to the same bytes.

func cloneSlice[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return append([]T(nil), s...)
}

func cloneNode(n Node) Node {
	n.Modes = cloneSlice(n.Modes)
	return n
}

func cloneSpec(s WorkloadSpec) WorkloadSpec {
	s.Command = cloneSlice(s.Command)
	if len(s.Env) == 0 {
		s.Env = nil
	} else {
		s.Env = maps.Clone(s.Env)
	}
	if s.Service != nil {
		svc := *s.Service
		s.Service = &svc
	}
	s.Placement = Constraints{
		Prefer:     cloneSlice(s.Placement.Prefer),
		AvoidZones: cloneSlice(s.Placement.AvoidZones),
		Clouds:     cloneSlice(s.Placement.Clouds),
	}
	return s
}

func cloneCheckpoint(c CheckpointRecord) CheckpointRecord {
	c.Standbys = cloneSlice(c.Standbys)
	return c
}

func cloneWorkload(w *Workload) Workload {
	c := *w
	c.Spec = cloneSpec(w.Spec)
	c.Assignment.Standbys = cloneSlice(w.Assignment.Standbys)
	c.Checkpoints = nil
	for _, cp := range w.Checkpoints {
		c.Checkpoints = append(c.Checkpoints, cloneCheckpoint(cp))
	}
	if w.Pending != nil {
		p := cloneCheckpoint(*w.Pending)
		c.Pending = &p
	}
	c.Tombstones = cloneSlice(w.Tombstones)
	c.Results = cloneSlice(w.Results)
	return c
}

func cloneMigration(m *Migration) Migration {
	c := *m
	c.Phases = cloneSlice(m.Phases)
	return c
}
