package runtime

import (
	"context"
	"errors"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// stateReport is one state report of a unit.
type stateReport struct {
	epoch uint64
	state fsm.WorkloadState
	msg   string
}

func (u *unit) report(state fsm.WorkloadState, msg string) {
	w := u.workload()
	r := &stateReport{epoch: w.Epoch, state: state, msg: msg}
	u.mu.Lock()
	u.unrecorded = r
	u.mu.Unlock()
	u.send1(r)
}

// send1 sends a report once and forgets it if the cluster took it (or
// refused it for good: a stale epoch).
func (u *unit) send1(r *stateReport) {
	u.sending.Lock()
	defer u.sending.Unlock()
	u.mu.Lock()
	current := u.unrecorded == r
	u.mu.Unlock()
	if !current {
		return // taken already, or a later report supersedes it
	}
	ctx, cancel := context.WithTimeout(u.ctx, 5*time.Second)
	defer cancel()
	err := u.s.cluster.Report(ctx, u.spec.ID, r.epoch, r.state, r.msg)
	if err != nil && u.ctx.Err() == nil && !errors.Is(err, fsm.ErrStaleEpoch) {
		u.s.log.Warn("workload state not recorded; retrying", "workload", u.spec.ID, "state", r.state, "err", err)
		return
	}
	u.mu.Lock()
	if u.unrecorded == r {
		u.unrecorded = nil
	}
	u.mu.Unlock()
}

// retryReport sends the unrecorded report again, if there is one.
func (u *unit) retryReport() {
	u.mu.Lock()
	r := u.unrecorded
	u.mu.Unlock()
	if r != nil && u.ctx.Err() == nil {
		u.send1(r)
	}
}
