package runtime

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/transfer"
)

// handoff takes the final checkpoint (the process stops), hands it to
// r.mover and ends the unit when that succeeds. When the final
// checkpoint fails and the process still runs, it keeps serving; when
// anything else fails, the workload starts again here from its latest
// committed checkpoint (the final one, if the handoff committed it). A
// lazy final checkpoint is handoffLazy's (unit_lazy.go).
func (u *unit) handoff(r request, proc *os.Process, waitCh chan error) (outcome, bool) {
	w := u.workload()
	if lz, ok := u.ck.(LazyCheckpointer); ok && r.lazy && w.Spec.Checkpoint.LazyPages && lz.LazyPages() {
		return u.handoffLazy(r, proc, waitCh, lz)
	}
	res := Result{Workload: w.Spec.ID, Epoch: w.Epoch}
	ctx, cancel := context.WithTimeout(u.ctx, checkpointTimeout)
	defer cancel()
	begin := time.Now()
	var c *transfer.Checkpoint
	if w.Spec.Checkpoint.Mode != fsm.ModeNone {
		st, err := u.s.store.Stage(w.Spec.ID)
		if err != nil {
			r.reply <- reply{res, fmt.Errorf("%w: staging: %v", ErrCheckpoint, err)}
			return outcome{}, false
		}
		stats, err := u.ck.Checkpoint(ctx, w, proc, st.Dir, false)
		if err != nil {
			_ = st.Abort()
			r.reply <- reply{res, fmt.Errorf("final checkpoint: %w", err)}
			return runsOn(waitCh)
		}
		res.Freeze = stats.Freeze
		u.terminate(proc, waitCh) // gone already after a stopping dump; makes sure
		if c, err = u.sealLocal(st, w, false); err != nil {
			r.reply <- reply{res, err}
			return outcome{again: true, from: u.latest()}, true
		}
		res.Seq, res.Digest, res.Bytes = c.Manifest.Seq, c.Digest, c.Manifest.Bytes()
	} else {
		u.terminate(proc, waitCh)
	}
	if err := r.mover.Move(ctx, w, c, false); err != nil {
		u.s.log.Error("handoff failed; starting again here", "workload", w.Spec.ID, "err", err)
		u.dropUncommitted(c)
		r.reply <- reply{res, err}
		return outcome{again: true, from: u.latest()}, true
	}
	res.Took = time.Since(begin)
	r.reply <- reply{res, nil}
	return outcome{gone: true}, true
}

// runsOn is how serve goes on after a final checkpoint that failed or was
// abandoned: with the process, which CRIU resumes when a dump fails, or
// with its exit if the dump took it along.
func runsOn(waitCh chan error) (outcome, bool) {
	select {
	case exit := <-waitCh:
		return outcome{err: exit}, true
	default:
		return outcome{}, false
	}
}
