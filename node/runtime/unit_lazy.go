package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// A unit's part in lazy moves (criu_lazy.go). As the new holder, its
// process runs while its memory is still on its way in (lazyArrival): no
// checkpoint can be taken until it is all in, and a restore whose memory
// did not all arrive kills the process. As the old holder, it takes a
// lazy final checkpoint and keeps the process frozen while the new holder
// fetches the memory (handoffLazy).

// lazyArrival is the memory of a lazily restored process on its way in from
// its old holder. The unit's goroutine alone uses it; the zero value has
// nothing on its way.
type lazyArrival struct {
	restore *LazyRestore // the restore's daemon and relay; nil when none
	missed  bool         // a periodic checkpoint fell due while memory was arriving
}

// begin keeps the handle of a lazy restore whose process now runs.
func (l *lazyArrival) begin(r *LazyRestore) { l.restore = r }

// pending reports whether the process's memory is still arriving from
// its old holder.
func (l *lazyArrival) pending() bool {
	if l.restore == nil {
		return false
	}
	select {
	case <-l.restore.Done():
		return false
	default:
		return true
	}
}

// done is closed once the memory is all in or failed to arrive; it is
// nil (never ready) when nothing is on its way.
func (l *lazyArrival) done() <-chan struct{} {
	if l.restore == nil {
		return nil
	}
	return l.restore.Done()
}

// postpone reports whether a periodic checkpoint due now must wait for
// the memory, and remembers that it did.
func (l *lazyArrival) postpone() bool {
	if !l.pending() {
		return false
	}
	l.missed = true
	return true
}

// takeMissed reports whether a periodic checkpoint was postponed, and
// forgets it.
func (l *lazyArrival) takeMissed() bool {
	missed := l.missed
	l.missed = false
	return missed
}

// end stops the restore's daemon and relay, logs what the relay did and
// forgets the restore: its process has ended (or the unit serves it no
// longer).
func (l *lazyArrival) end(log *slog.Logger, id string) {
	if l.restore == nil {
		return
	}
	l.restore.Close()
	st := l.restore.Relayed()
	log.Info("the lazy restore's page relay", "workload", id, "asks", st.Asks,
		"answered_from_pages_here", st.Ahead, "fetched_ahead", st.Prefetched)
	*l = lazyArrival{}
}

// startLazy restores from a lazy checkpoint, its memory coming from the
// old holder's page server, and keeps the restore's handle in u.lazy.
func (u *unit) startLazy(ctx context.Context, w Workload, dir string, from fsm.CheckpointRecord, res Result, begin time.Time) (*os.Process, Result, error) {
	lz, ok := u.ck.(LazyCheckpointer)
	if !ok {
		return nil, res, fmt.Errorf("%w: checkpoint #%d of %s is lazy and this node's %s mode cannot restore lazily", ErrRestore, from.Seq, w.Spec.ID, u.ck.Mode())
	}
	proc, lazy, err := lz.StartLazy(ctx, w, dir, u.s.pagesOf(w.Spec.ID, from), false)
	res.Took = time.Since(begin)
	if err != nil {
		return nil, res, err
	}
	u.lazy.begin(lazy)
	res.PID = proc.Pid
	return proc, res, nil
}

// lazyArrived acts on the end of the memory's arrival: when it did not
// all arrive, the process is killed and serve ends (over); when it did,
// a periodic checkpoint postponed meanwhile is taken now.
func (u *unit) lazyArrived(proc *os.Process) (out outcome, over bool) {
	if err := u.lazy.restore.Err(); err != nil {
		// A page it touches next would be missing: it must not run
		// on. It starts again from the newest complete checkpoint.
		u.s.log.Error("the lazy restore's memory did not all arrive; killing the workload", "workload", u.spec.ID, "err", err, "log", u.lazy.restore.log)
		killGroup(proc)
		return outcome{err: fmt.Errorf("%w: lazy pages: %v", ErrRestore, err)}, true
	}
	// The next complete checkpoint comes on the interval, counted
	// from the restore, as after any restore: taking one at once
	// would freeze the service for a full dump right after a move
	// made lazy to spare it that (docs/ARCHITECTURE.md).
	u.s.log.Info("the lazy restore's memory is all in", "workload", u.spec.ID)
	if u.lazy.takeMissed() {
		u.periodicCheckpoint(proc)
	}
	return outcome{}, false
}

// lazyServeTimeout bounds how long the old holder keeps a moved
// workload's process frozen for its new holder to fetch the memory.
const lazyServeTimeout = 2 * time.Minute

// handoffLazy is handoff with a lazy final checkpoint: the process stops
// and its memory stays here, served to the new holder. A move that fails
// before its grant abandons the dump, and the process runs on here; once
// granted, the process is frozen until the new holder has fetched the
// memory (CRIU then kills it), or killed after lazyServeTimeout.
func (u *unit) handoffLazy(r request, proc *os.Process, waitCh chan error, lz LazyCheckpointer) (outcome, bool) {
	w := u.workload()
	res := Result{Workload: w.Spec.ID, Epoch: w.Epoch}
	ctx, cancel := context.WithTimeout(u.ctx, checkpointTimeout)
	defer cancel()
	begin := time.Now()
	st, err := u.s.store.Stage(w.Spec.ID)
	if err != nil {
		r.reply <- reply{res, fmt.Errorf("%w: staging: %v", ErrCheckpoint, err)}
		return outcome{}, false
	}
	dump, err := lz.CheckpointLazy(ctx, w, proc, st.Dir)
	if err != nil {
		_ = st.Abort()
		r.reply <- reply{res, fmt.Errorf("final checkpoint: %w", err)}
		return runsOn(waitCh)
	}
	res.Freeze = dump.Ready
	// Volatile: after a crash of either side its memory is gone anyway.
	c, err := u.sealLocal(st, w, true)
	if err != nil {
		dump.Abort()
		r.reply <- reply{res, err}
		return outcome{}, false
	}
	res.Seq, res.Digest, res.Bytes = c.Manifest.Seq, c.Digest, c.Manifest.Bytes()
	u.s.setPageServer(w.Spec.ID, c.Manifest.Seq, dump.Addr)
	defer u.s.setPageServer(w.Spec.ID, c.Manifest.Seq, "")
	if err := r.mover.Move(ctx, w, c, true); err != nil {
		u.s.log.Error("lazy handoff failed; the workload runs on here", "workload", w.Spec.ID, "err", err)
		dump.Abort()
		u.dropUncommitted(c)
		r.reply <- reply{res, err}
		return runsOn(waitCh) // unless it did not survive the abandoned dump
	}
	res.Took = time.Since(begin)
	r.reply <- reply{res, nil}
	u.awaitFetched(dump, proc, waitCh, begin)
	return outcome{gone: true}, true
}

// awaitFetched keeps the moved process frozen until the new holder has
// fetched its memory (the dump ends and CRIU kills it), or kills it after
// lazyServeTimeout, and reaps it.
func (u *unit) awaitFetched(dump *LazyDump, proc *os.Process, waitCh chan error, begin time.Time) {
	t := time.NewTimer(lazyServeTimeout)
	defer t.Stop()
	select {
	case <-dump.Done():
		if err := dump.Err(); err != nil {
			u.s.log.Error("serving the moved workload's memory failed; killing its frozen process", "workload", u.spec.ID, "err", err, "log", dump.log)
			dump.Kill(proc)
		} else {
			u.s.log.Info("the moved workload's memory is all served", "workload", u.spec.ID, "took", time.Since(begin))
		}
	case <-t.C:
		u.s.log.Error("the new holder did not fetch the moved workload's memory; killing its frozen process", "workload", u.spec.ID, "after", lazyServeTimeout)
		dump.Kill(proc)
	}
	_ = syscall.Kill(-proc.Pid, syscall.SIGKILL) // CRIU killed it; makes sure
	<-waitCh
}
