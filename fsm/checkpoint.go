package fsm

import (
	"fmt"
	"slices"
)

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
	if c.LazyFrom != "" && c.LazyFrom != w.Assignment.Holder {
		return nil, invalid("lazy_from", "%q is not %s's holder %q: only the holder's frozen process serves a lazy checkpoint", c.LazyFrom, c.Workload, w.Assignment.Holder)
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
		LazyFrom:   c.LazyFrom,
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
	w.Checkpoints = keepCheckpoints(append(w.Checkpoints, rec))
	w.Pending = nil
	return cloneCheckpoint(rec), nil
}

// keepCheckpoints keeps the newest KeepCheckpoints complete checkpoints
// and a lazy one only while no complete one is newer: a lazy checkpoint
// is restored once, right after its move, and is no copy to fall back on,
// so it must not push a complete one out.
func keepCheckpoints(recs []CheckpointRecord) []CheckpointRecord {
	var out []CheckpointRecord
	complete := 0
	for i := len(recs) - 1; i >= 0; i-- {
		switch {
		case recs[i].LazyFrom == "" && complete < KeepCheckpoints:
			complete++
		case recs[i].LazyFrom != "" && complete == 0:
		default:
			continue
		}
		out = append(out, recs[i])
	}
	slices.Reverse(out)
	return out
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
