package fsm

import (
	"fmt"
	"slices"
)

// A workload's epoch is its fencing token: the Raft index of the grant that
// made the current holder (see workloadGrant). Since Raft indices grow, so
// do epochs; an epoch that is over is tombstoned, and everything a holder
// does through Raft must carry the current epoch (checkEpoch).

// tombstone records that epoch is over, keeping the newest MaxTombstones.
// Epoch 0 (never granted) is not recorded.
func (w *Workload) tombstone(epoch uint64) {
	if epoch == 0 {
		return
	}
	w.Tombstones = keepLast(append(w.Tombstones, epoch), MaxTombstones)
}

// Tombstoned reports whether epoch is a past epoch of the workload: one of
// its kept tombstones, or (once MaxTombstones are kept) older than all of
// them, since the ones dropped to make room were older still.
func (w *Workload) Tombstoned(epoch uint64) bool {
	if epoch == 0 || len(w.Tombstones) == 0 {
		return false
	}
	if len(w.Tombstones) >= MaxTombstones && epoch < w.Tombstones[0] {
		return true
	}
	return slices.Contains(w.Tombstones, epoch)
}

// checkEpoch returns an error wrapping ErrStaleEpoch unless epoch is the
// workload's current, granted epoch.
func (w *Workload) checkEpoch(epoch uint64) error {
	cur := w.Assignment.Epoch
	switch {
	case cur == 0:
		return fmt.Errorf("%w: workload %q has not been granted (epoch %d)", ErrStaleEpoch, w.Spec.ID, epoch)
	case epoch == cur:
		return nil
	case w.Tombstoned(epoch):
		return fmt.Errorf("%w: workload %q epoch %d is tombstoned, current is %d", ErrStaleEpoch, w.Spec.ID, epoch, cur)
	}
	return fmt.Errorf("%w: workload %q epoch %d is not current %d", ErrStaleEpoch, w.Spec.ID, epoch, cur)
}
