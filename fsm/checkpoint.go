package fsm

import "fmt"

// checkpointPrepare records a pending checkpoint of the current epoch,
// replacing any earlier pending one, and returns its Seq (uint64).
func (s *State) checkpointPrepare(c CheckpointPrepare) (any, error) {
	if c.Digest == "" {
		return nil, invalid("digest", "must not be empty")
	}
	if c.Bytes < 0 {
		return nil, invalid("bytes", "%d must not be negative", c.Bytes)
	}
	w, err := s.workload(c.Workload)
	if err != nil {
		return nil, err
	}
	if err := w.checkEpoch(c.Epoch); err != nil {
		return nil, err
	}
	seq := w.NextSeq
	if c.Seq != 0 && c.Seq != seq {
		return nil, fmt.Errorf("%w: workload %q: checkpoint seq %d was expected, the next is %d", ErrStaleEpoch, c.Workload, c.Seq, seq)
	}
	w.NextSeq++
	w.Pending = &CheckpointRecord{
		Seq:        seq,
		Epoch:      c.Epoch,
		Digest:     c.Digest,
		Bytes:      c.Bytes,
		PreparedAt: c.At,
	}
	return seq, nil
}

// pending returns the workload's pending checkpoint if its Seq is seq, or
// an error wrapping ErrNoPending.
func (w *Workload) pending(seq uint64) (*CheckpointRecord, error) {
	if w.Pending == nil {
		return nil, fmt.Errorf("%w: workload %q has none (seq %d)", ErrNoPending, w.Spec.ID, seq)
	}
	if w.Pending.Seq != seq {
		return nil, fmt.Errorf("%w: workload %q pending is seq %d, not %d", ErrNoPending, w.Spec.ID, w.Pending.Seq, seq)
	}
	return w.Pending, nil
}

// checkpointCommit commits the pending checkpoint with the given Seq and
// Digest, keeping the newest KeepCheckpoints. The committed record is
// returned (CheckpointRecord).
func (s *State) checkpointCommit(c CheckpointCommit) (any, error) {
	w, err := s.workload(c.Workload)
	if err != nil {
		return nil, err
	}
	p, err := w.pending(c.Seq)
	if err != nil {
		return nil, err
	}
	if p.Digest != c.Digest {
		return nil, fmt.Errorf("%w: workload %q seq %d has digest %q, not %q",
			ErrNoPending, c.Workload, c.Seq, p.Digest, c.Digest)
	}
	rec := *p
	rec.Standbys, rec.CommittedAt = cloneSlice(c.Standbys), c.At
	w.Checkpoints = keepLast(append(w.Checkpoints, rec), KeepCheckpoints)
	w.Pending = nil
	return cloneCheckpoint(rec), nil
}

// checkpointAbort drops the pending checkpoint with the given Seq.
func (s *State) checkpointAbort(c CheckpointAbort) error {
	w, err := s.workload(c.Workload)
	if err != nil {
		return err
	}
	if _, err := w.pending(c.Seq); err != nil {
		return err
	}
	w.Pending = nil
	return nil
}
