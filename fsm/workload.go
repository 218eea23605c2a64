package fsm

import "fmt"

// workload returns the workload or an error wrapping ErrNotFound.
func (s *State) workload(id string) (*Workload, error) {
	w, ok := s.Workloads[id]
	if !ok {
		return nil, fmt.Errorf("%w: workload %q", ErrNotFound, id)
	}
	return w, nil
}

// workloadSubmit records a new workload, pending. The spec is stored with
// its defaults applied, so every replica holds the same complete spec
// whatever the proposer filled in.
func (s *State) workloadSubmit(c WorkloadSubmit) error {
	spec := cloneSpec(c.Spec.WithDefaults())
	if err := spec.Validate(); err != nil {
		return err
	}
	if _, ok := s.Workloads[spec.ID]; ok {
		return fmt.Errorf("%w: workload %q", ErrExists, spec.ID)
	}
	s.Workloads[spec.ID] = &Workload{
		Spec:        spec,
		Assignment:  Assignment{State: WorkloadPending},
		NextSeq:     1,
		SubmittedAt: c.At,
	}
	return nil
}

// workloadGrant makes c.Holder the holder under a new epoch, the Raft index
// of the grant, and tombstones the previous epoch. The new epoch is
// returned (uint64). A grant whose index is not above the current epoch is
// refused with ErrStaleEpoch, so that epochs only grow even if indices were
// replayed out of order.
func (s *State) workloadGrant(index uint64, c WorkloadGrant) (any, error) {
	if c.Holder == "" {
		return nil, invalid("holder", "must not be empty")
	}
	w, err := s.workload(c.Workload)
	if err != nil {
		return nil, err
	}
	cur := w.Assignment.Epoch
	if c.PrevEpoch != 0 && c.PrevEpoch != cur {
		return nil, fmt.Errorf("%w: workload %q grant expected epoch %d, current is %d",
			ErrStaleEpoch, c.Workload, c.PrevEpoch, cur)
	}
	if index <= cur {
		return nil, fmt.Errorf("%w: workload %q grant at index %d is not after epoch %d",
			ErrStaleEpoch, c.Workload, index, cur)
	}
	w.tombstone(cur)
	w.Pending = nil // a checkpoint of the old epoch can no longer commit
	w.Assignment = Assignment{
		Holder:    c.Holder,
		Epoch:     index,
		Standbys:  cloneSlice(c.Standbys),
		State:     WorkloadGranted,
		GrantedAt: c.At,
	}
	return index, nil
}

// reportable are the states a holder may report.
var reportable = map[WorkloadState]bool{
	WorkloadGranted:   true,
	WorkloadRunning:   true,
	WorkloadMigrating: true,
	WorkloadFailed:    true,
	WorkloadStopped:   true,
}

// workloadReport records the state the current holder reports.
func (s *State) workloadReport(c WorkloadReport) error {
	if !reportable[c.State] {
		return invalid("state", "%q must be granted, running, migrating, failed or stopped", c.State)
	}
	w, err := s.workload(c.Workload)
	if err != nil {
		return err
	}
	if err := w.checkEpoch(c.Epoch); err != nil {
		return err
	}
	w.Assignment.State, w.Assignment.Message = c.State, c.Message
	return nil
}

// workloadRemove deletes a workload with its checkpoints, tombstones and
// results. Its migration records stay as history.
func (s *State) workloadRemove(c WorkloadRemove) error {
	if _, err := s.workload(c.Workload); err != nil {
		return err
	}
	delete(s.Workloads, c.Workload)
	return nil
}

// workloadSetStandbys replaces the standby list; the epoch is unchanged.
func (s *State) workloadSetStandbys(c WorkloadSetStandbys) error {
	w, err := s.workload(c.Workload)
	if err != nil {
		return err
	}
	w.Assignment.Standbys = cloneSlice(c.Standbys)
	return nil
}

// workloadPreempt returns a held workload to pending under a CAS on its
// epoch, tombstoning the epoch; its committed checkpoints stay, so the next
// grant restores from the latest.
func (s *State) workloadPreempt(c WorkloadPreempt) error {
	w, err := s.workload(c.Workload)
	if err != nil {
		return err
	}
	if w.Assignment.Epoch == 0 || w.Assignment.Holder == "" {
		return invalid("workload", "%q has no holder to preempt it from", c.Workload)
	}
	if c.PrevEpoch != w.Assignment.Epoch {
		return fmt.Errorf("%w: workload %q preempt expected epoch %d, current is %d",
			ErrStaleEpoch, c.Workload, c.PrevEpoch, w.Assignment.Epoch)
	}
	w.tombstone(w.Assignment.Epoch)
	w.Pending = nil
	w.Assignment = Assignment{State: WorkloadPending, Message: "preempted: " + c.Reason}
	return nil
}
