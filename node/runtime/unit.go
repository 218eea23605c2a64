package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/transfer"
)

// Result describes a checkpoint taken or a (re)start done on request.
type Result struct {
	Workload string `json:"workload"`
	Epoch    uint64 `json:"epoch"`
	// Seq, Digest and Bytes describe the checkpoint taken, or the one a
	// restart restored from (Seq 0: started fresh).
	Seq    uint64        `json:"seq"`
	Digest string        `json:"digest,omitempty"`
	Bytes  int64         `json:"bytes,omitempty"`
	Freeze time.Duration `json:"freeze_ns,omitempty"`
	Took   time.Duration `json:"took_ns"`
	PID    int           `json:"pid,omitempty"`
}

type reqKind int

const (
	reqCheckpoint reqKind = iota + 1
	reqRestartFresh
	reqRestartFromCheckpoint
	reqHandoff
)

type request struct {
	kind    reqKind
	handoff HandoffFunc // reqHandoff only
	lazy    bool        // reqHandoff: a lazy final checkpoint may be taken
	reply   chan reply
}

type reply struct {
	res Result
	err error
}

// checkpointTimeout bounds one checkpoint (a 1 GiB dump takes ~1 s here).
const checkpointTimeout = 2 * time.Minute

// unit is one workload's goroutine: it starts the process, waits for it,
// takes periodic checkpoints, serves requests and restarts it on crash.
type unit struct {
	s      *Supervisor
	ck     Checkpointer
	spec   fsm.WorkloadSpec
	from   *fsm.CheckpointRecord // first start only
	reqs   chan request
	ctx    context.Context
	cancel context.CancelFunc
	exited chan struct{}

	mu    sync.Mutex // guards epoch and unrecorded
	epoch uint64
	// unrecorded is the last state report the cluster did not take (a
	// partition, a leader change): RetryReports sends it again, so that a
	// running workload is never left recorded as restoring or pending.
	unrecorded *stateReport
	sending    sync.Mutex // one report on the wire at a time, in order

	// lazy is the memory of a lazily restored process on its way in
	// (StartLazy); the unit's goroutine alone uses it.
	lazy *LazyRestore

	curPID atomic.Int64 // the running process, 0 when none
	// frozen reports that a fence stopped the process (SIGSTOP) and no
	// thaw resumed it since; the supervisor sets it under its lock.
	frozen atomic.Bool
}

// pid is the running process's host PID, 0 when none runs.
func (u *unit) pid() int { return int(u.curPID.Load()) }

func newUnit(s *Supervisor, d Desired, ck Checkpointer) *unit {
	ctx, cancel := context.WithCancel(context.Background())
	return &unit{s: s, ck: ck, spec: d.Spec, from: d.From, epoch: d.Epoch, reqs: make(chan request),
		ctx: ctx, cancel: cancel, exited: make(chan struct{})}
}

func (u *unit) workload() Workload {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.s.workload(u.spec, u.epoch)
}

// workload is what a checkpointer needs to run spec under epoch.
func (s *Supervisor) workload(spec fsm.WorkloadSpec, epoch uint64) Workload {
	return Workload{Spec: spec, Epoch: epoch, Dir: filepath.Join(s.cfg.DataDir, "workloads", spec.ID), Env: s.cfg.Env}
}

func (u *unit) setEpoch(e uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.epoch = e
}

func (u *unit) stop() { u.cancel() }

func (u *unit) done() bool {
	select {
	case <-u.exited:
		return true
	default:
		return false
	}
}

// request hands a request to the unit's goroutine and waits for it.
func (u *unit) request(ctx context.Context, kind reqKind) (Result, error) {
	return u.send(ctx, request{kind: kind, reply: make(chan reply, 1)})
}

func (u *unit) send(ctx context.Context, r request) (Result, error) {
	select {
	case u.reqs <- r:
	case <-u.exited:
		return Result{}, fmt.Errorf("%w: %s", ErrNotRunning, u.spec.ID)
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case rep := <-r.reply:
		return rep.res, rep.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

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

// run is the unit's life: start, serve, restart on crash with backoff.
func (u *unit) run() {
	defer close(u.exited)
	from, backoff := u.from, u.s.cfg.RestartMin
	var pending *request // a restart request waiting for the new start
	for u.ctx.Err() == nil {
		proc, res, err := u.start(from)
		if pending != nil {
			pending.reply <- reply{res, err}
			pending = nil
		}
		if err != nil {
			u.s.log.Error("workload did not start", "workload", u.spec.ID, "err", err)
			u.report(fsm.WorkloadFailed, err.Error())
			from = u.fallback(from)
			if !sleepCtx(u.ctx, backoff) {
				return
			}
			backoff = min(2*backoff, u.s.cfg.RestartMax)
			continue
		}
		u.frozen.Store(false) // a start waits out any fence: this process was never frozen
		// Before the report, which waits for Raft: the gate admits
		// requests as soon as the process runs.
		u.curPID.Store(int64(proc.Pid))
		u.report(fsm.WorkloadRunning, startMessage(res))
		started := time.Now()
		out := u.serve(proc)
		u.curPID.Store(0)
		if out.gone {
			return
		}
		if out.restart != nil || out.again {
			from, pending = out.from, out.restart
			continue
		}
		if u.ctx.Err() != nil {
			return
		}
		if time.Since(started) > 10*u.s.cfg.RestartMin {
			backoff = u.s.cfg.RestartMin
		}
		from = u.afterCrash(out.err, backoff)
		if !sleepCtx(u.ctx, backoff) {
			return
		}
		backoff = min(2*backoff, u.s.cfg.RestartMax)
	}
}

// afterCrash reports a crash and picks what to restart from: the latest
// committed checkpoint, so that as little state as possible is lost.
func (u *unit) afterCrash(exit error, backoff time.Duration) *fsm.CheckpointRecord {
	msg := fmt.Sprintf("exited (%v); restarting in %v", exit, backoff)
	u.s.log.Warn("workload exited", "workload", u.spec.ID, "exit", exit, "backoff", backoff)
	u.report(fsm.WorkloadFailed, msg)
	if u.spec.Checkpoint.Mode == fsm.ModeNone {
		return nil
	}
	return u.latest()
}

// latest is the newest complete committed checkpoint, or nil. A lazy one
// is restored only by the start right after its move (Desired.From): its
// memory is gone once that restore fetched it.
func (u *unit) latest() *fsm.CheckpointRecord {
	recs := u.s.cluster.Committed(u.spec.ID)
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].LazyFrom == "" {
			return &recs[i]
		}
	}
	return nil
}

// fallback decides what the next start tries after a failed one: a
// checkpoint that cannot be restored (missing, corrupt, refused by CRIU)
// gives way to the committed one before it, and the oldest to a fresh
// start; the failed report before names the reason.
func (u *unit) fallback(from *fsm.CheckpointRecord) *fsm.CheckpointRecord {
	if from == nil {
		return nil
	}
	recs := u.s.cluster.Committed(u.spec.ID)
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Seq < from.Seq && recs[i].LazyFrom == "" {
			u.s.log.Error("falling back to an older checkpoint", "workload", u.spec.ID, "failed", from.Seq, "next", recs[i].Seq)
			return &recs[i]
		}
	}
	u.s.log.Error("no older checkpoint; starting fresh", "workload", u.spec.ID, "failed", from.Seq)
	return nil
}

func startMessage(r Result) string {
	if r.Seq == 0 {
		return fmt.Sprintf("started (pid %d)", r.PID)
	}
	return fmt.Sprintf("restored from checkpoint #%d (pid %d)", r.Seq, r.PID)
}

// start starts the process, restored from `from` (verified first) or
// fresh — once the supervisor is not fenced.
func (u *unit) start(from *fsm.CheckpointRecord) (*os.Process, Result, error) {
	for u.s.isFenced() {
		if !sleepCtx(u.ctx, 50*time.Millisecond) {
			return nil, Result{}, u.ctx.Err()
		}
	}
	w := u.workload()
	res := Result{Workload: w.Spec.ID, Epoch: w.Epoch}
	begin := time.Now()
	if proc, ok := u.resumePrestart(from); ok {
		res.Seq, res.Digest, res.Bytes = from.Seq, from.Digest, from.Bytes
		res.PID, res.Took = proc.Pid, time.Since(begin)
		return proc, res, nil
	}
	if err := u.ctx.Err(); err != nil {
		return nil, res, err
	}
	dir := ""
	if from != nil {
		c, err := u.s.store.Get(w.Spec.ID, from.Seq)
		if errors.Is(err, transfer.ErrNotFound) {
			// Granted here without a copy (no standby had room, or a
			// preempted workload placed anew): fetch it from one.
			fctx, cancel := context.WithTimeout(u.ctx, checkpointTimeout)
			ferr := u.s.cluster.Fetch(fctx, w.Spec.ID, *from)
			cancel()
			if ferr != nil {
				return nil, res, fmt.Errorf("%w: checkpoint #%d of %s is not in this node's store and fetching it failed: %v", ErrRestore, from.Seq, w.Spec.ID, ferr)
			}
			c, err = u.s.store.Get(w.Spec.ID, from.Seq)
		}
		if err != nil {
			return nil, res, fmt.Errorf("%w: checkpoint #%d of %s is not in this node's store: %v", ErrRestore, from.Seq, w.Spec.ID, err)
		}
		if err := u.s.store.Verify(c, from.Digest); err != nil {
			return nil, res, fmt.Errorf("%w: refusing checkpoint #%d of %s: %v", ErrRestore, from.Seq, w.Spec.ID, err)
		}
		dir = c.FilesDir()
		res.Seq, res.Digest, res.Bytes = from.Seq, from.Digest, from.Bytes
	}
	ctx, cancel := context.WithTimeout(u.ctx, checkpointTimeout)
	defer cancel()
	if from != nil && from.LazyFrom != "" {
		return u.startLazy(ctx, w, dir, *from, res, begin)
	}
	proc, err := u.ck.Start(ctx, w, dir)
	res.Took = time.Since(begin)
	if err != nil {
		return nil, res, err
	}
	res.PID = proc.Pid
	return proc, res, nil
}

// resumePrestart resumes the process restored from `from` ahead of the
// grant (Supervisor.PrestartLazy), if there is one; any other prestart of
// the workload is gone when it returns.
func (u *unit) resumePrestart(from *fsm.CheckpointRecord) (*os.Process, bool) {
	p, err := u.s.claimPrestart(u.ctx, u.spec.ID, from)
	if err != nil {
		return nil, false
	}
	if err := resume(p.proc); err != nil {
		u.s.log.Warn("resuming the lazy restore prepared before the grant failed; restoring again", "workload", u.spec.ID, "err", err)
		p.kill()
		return nil, false
	}
	u.s.log.Info("resumed the lazy restore prepared before the grant", "workload", u.spec.ID, "seq", from.Seq, "pid", p.proc.Pid)
	u.lazy = p.lazy
	return p.proc, true
}

// lazyPending reports whether the process's memory is still arriving
// from its old holder.
func (u *unit) lazyPending() bool {
	if u.lazy == nil {
		return false
	}
	select {
	case <-u.lazy.Done():
		return false
	default:
		return true
	}
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
	u.lazy = lazy
	res.PID = proc.Pid
	return proc, res, nil
}

// outcome is how serve ended: the process exited (err), or a restart was
// asked for (restart, from), or must start again at once from `from`
// (again), or the workload was handed to another node (gone), or the unit
// was stopped.
type outcome struct {
	err     error
	restart *request
	from    *fsm.CheckpointRecord
	again   bool
	gone    bool
}

// serve waits for the process while taking periodic checkpoints and
// answering requests.
func (u *unit) serve(proc *os.Process) outcome {
	waitCh := make(chan error, 1)
	go func() { // ends when the process ends; stop and restart kill it
		st, err := proc.Wait()
		if err == nil && !st.Success() {
			err = errors.New(st.String())
		}
		waitCh <- err
	}()
	var tick <-chan time.Time
	if iv := time.Duration(u.spec.Checkpoint.Interval); iv > 0 && u.spec.Checkpoint.Mode != fsm.ModeNone {
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
	}
	var lazyDone <-chan struct{}
	missed := false // a periodic checkpoint fell due while memory was arriving
	if u.lazy != nil {
		lazyDone = u.lazy.Done()
		defer func() {
			u.lazy.Close()
			st := u.lazy.Relayed()
			u.s.log.Info("the lazy restore's page relay", "workload", u.spec.ID, "asks", st.Asks,
				"answered_from_pages_here", st.Ahead, "fetched_ahead", st.Prefetched)
			u.lazy = nil
		}()
	}
	for {
		select {
		case <-lazyDone:
			lazyDone = nil
			if err := u.lazy.Err(); err != nil {
				// A page it touches next would be missing: it must not run
				// on. It starts again from the newest complete checkpoint.
				u.s.log.Error("the lazy restore's memory did not all arrive; killing the workload", "workload", u.spec.ID, "err", err, "log", u.lazy.log)
				_ = syscall.Kill(-proc.Pid, syscall.SIGKILL)
				_ = proc.Kill()
				return outcome{err: fmt.Errorf("%w: lazy pages: %v", ErrRestore, err)}
			}
			// The next complete checkpoint comes on the interval, counted
			// from the restore, as after any restore: taking one at once
			// would freeze the service for a full dump right after a move
			// made lazy to spare it that (docs/ARCHITECTURE.md).
			u.s.log.Info("the lazy restore's memory is all in", "workload", u.spec.ID)
			if missed {
				missed = false
				if _, err := u.checkpoint(proc); err != nil {
					u.s.log.Warn("periodic checkpoint failed", "workload", u.spec.ID, "err", err)
				}
			}
		case err := <-waitCh:
			return outcome{err: err}
		case <-u.ctx.Done():
			u.terminate(proc, waitCh)
			return outcome{}
		case <-tick:
			if u.lazyPending() {
				missed = true // taken as soon as the memory is all in
				continue
			}
			if _, err := u.checkpoint(proc); err != nil {
				u.s.log.Warn("periodic checkpoint failed", "workload", u.spec.ID, "err", err)
			}
		case r := <-u.reqs:
			if out, done := u.handle(r, proc, waitCh); done {
				return out
			}
		}
	}
}

// handle serves one request; done reports whether the process is gone.
func (u *unit) handle(r request, proc *os.Process, waitCh chan error) (outcome, bool) {
	if (r.kind == reqCheckpoint || r.kind == reqHandoff) && u.lazyPending() {
		// CRIU would dump a process whose missing pages only the running
		// lazy-pages daemon can fill.
		w := u.workload()
		r.reply <- reply{Result{Workload: w.Spec.ID, Epoch: w.Epoch},
			fmt.Errorf("%w: %s's memory is still arriving from its old holder (lazy pages); try again once it has", ErrCheckpoint, w.Spec.ID)}
		return outcome{}, false
	}
	switch r.kind {
	case reqCheckpoint:
		res, err := u.checkpoint(proc)
		r.reply <- reply{res, err}
		return outcome{}, false
	case reqHandoff:
		return u.handoff(r, proc, waitCh)
	case reqRestartFromCheckpoint:
		rec := u.latest()
		if rec == nil {
			r.reply <- reply{err: fmt.Errorf("%w: %s has no committed checkpoint", ErrRestore, u.spec.ID)}
			return outcome{}, false
		}
		u.terminate(proc, waitCh)
		return outcome{restart: &r, from: rec}, true
	default:
		u.terminate(proc, waitCh)
		return outcome{restart: &r}, true
	}
}

// terminate stops the process: SIGTERM (and SIGCONT, in case it was
// stopped otherwise), then SIGKILL after StopTimeout. A process a fence
// froze gets SIGKILL at once: it is stopped because another node may be
// running the workload by now (this is how a healed holder drops a
// workload that was re-granted away), and a SIGCONT would let it serve
// again, if only until its SIGTERM handler ran.
func (u *unit) terminate(proc *os.Process, waitCh chan error) {
	if u.frozen.Load() || stopped(proc.Pid) {
		// stopped: the fence keeper froze it while the agent itself was
		// stopped, so the frozen flag does not know.
		u.s.log.Warn("killing a frozen workload without thawing it", "workload", u.spec.ID, "pid", proc.Pid)
		_ = syscall.Kill(-proc.Pid, syscall.SIGKILL)
		_ = proc.Kill()
		<-waitCh
		return
	}
	_ = proc.Signal(syscall.SIGTERM)
	_ = syscall.Kill(-proc.Pid, syscall.SIGCONT)
	select {
	case <-waitCh:
		return
	case <-time.After(u.s.cfg.StopTimeout):
	}
	_ = proc.Kill()
	<-waitCh
}

// checkpoint takes a leave-running checkpoint into the store and commits it.
func (u *unit) checkpoint(proc *os.Process) (Result, error) {
	w := u.workload()
	res := Result{Workload: w.Spec.ID, Epoch: w.Epoch}
	if w.Spec.Checkpoint.Mode == fsm.ModeNone {
		return res, ErrNoCheckpoint
	}
	ctx, cancel := context.WithTimeout(u.ctx, checkpointTimeout)
	defer cancel()
	begin := time.Now()
	st, err := u.s.store.Stage(w.Spec.ID)
	if err != nil {
		return res, fmt.Errorf("%w: staging: %v", ErrCheckpoint, err)
	}
	stats, err := u.ck.Checkpoint(ctx, w, proc, st.Dir, true)
	if err != nil {
		_ = st.Abort()
		return res, err
	}
	c, err := u.seal(ctx, st, w)
	if err != nil {
		return res, err
	}
	res.Seq, res.Digest, res.Bytes = c.Manifest.Seq, c.Digest, c.Manifest.Bytes()
	res.Freeze, res.Took = stats.Freeze, time.Since(begin)
	return res, nil
}

// seal seals a staged checkpoint and commits it through the cluster; a
// checkpoint the cluster refuses is removed again.
func (u *unit) seal(ctx context.Context, st *transfer.Staging, w Workload) (*transfer.Checkpoint, error) {
	c, err := u.sealLocal(st, w, false)
	if err != nil {
		return nil, err
	}
	if err := u.s.cluster.Commit(ctx, w.Spec.ID, w.Epoch, c); err != nil {
		_ = u.s.store.Remove(w.Spec.ID, c.Manifest.Seq)
		return nil, fmt.Errorf("%w: committing checkpoint #%d: %v", ErrCheckpoint, c.Manifest.Seq, err)
	}
	return c, nil
}

// sealLocal seals a staged checkpoint under the workload's next seq; a
// volatile one without fsync (transfer.Manifest.Volatile).
func (u *unit) sealLocal(st *transfer.Staging, w Workload, volatile bool) (*transfer.Checkpoint, error) {
	info := transfer.Info{Workload: w.Spec.ID, Epoch: w.Epoch, Seq: u.s.cluster.NextSeq(w.Spec.ID),
		Mode: w.Spec.Checkpoint.Mode, CreatedAt: time.Now(), Volatile: volatile}
	c, err := u.s.store.Seal(st, info)
	if err != nil {
		_ = st.Abort()
		return nil, fmt.Errorf("%w: sealing: %v", ErrCheckpoint, err)
	}
	return c, nil
}

// handoff takes the final checkpoint (the process stops), hands it to
// r.handoff and ends the unit when that succeeds. When the final
// checkpoint fails and the process still runs, it keeps serving; when
// anything else fails, the workload starts again here from its latest
// committed checkpoint (the final one, if the handoff committed it).
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
			select {
			case exit := <-waitCh: // the dump took the process with it
				return outcome{err: exit}, true
			default: // CRIU resumes the process when a dump fails
				return outcome{}, false
			}
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
	if err := r.handoff(ctx, w, c, false); err != nil {
		u.s.log.Error("handoff failed; starting again here", "workload", w.Spec.ID, "err", err)
		if c != nil && !u.committed(c) {
			_ = u.s.store.Remove(w.Spec.ID, c.Manifest.Seq)
		}
		r.reply <- reply{res, err}
		return outcome{again: true, from: u.latest()}, true
	}
	res.Took = time.Since(begin)
	r.reply <- reply{res, nil}
	return outcome{gone: true}, true
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
		select {
		case exit := <-waitCh:
			return outcome{err: exit}, true
		default: // CRIU resumes the process when a dump fails
			return outcome{}, false
		}
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
	if err := r.handoff(ctx, w, c, true); err != nil {
		u.s.log.Error("lazy handoff failed; the workload runs on here", "workload", w.Spec.ID, "err", err)
		dump.Abort()
		if !u.committed(c) {
			_ = u.s.store.Remove(w.Spec.ID, c.Manifest.Seq)
		}
		r.reply <- reply{res, err}
		select {
		case exit := <-waitCh: // it did not survive the abandoned dump
			return outcome{err: exit}, true
		default:
			return outcome{}, false
		}
	}
	res.Took = time.Since(begin)
	r.reply <- reply{res, nil}
	t := time.NewTimer(lazyServeTimeout)
	defer t.Stop()
	select {
	case <-dump.Done():
		if err := dump.Err(); err != nil {
			u.s.log.Error("serving the moved workload's memory failed; killing its frozen process", "workload", w.Spec.ID, "err", err, "log", dump.log)
			dump.Kill(proc)
		} else {
			u.s.log.Info("the moved workload's memory is all served", "workload", w.Spec.ID, "took", time.Since(begin))
		}
	case <-t.C:
		u.s.log.Error("the new holder did not fetch the moved workload's memory; killing its frozen process", "workload", w.Spec.ID, "after", lazyServeTimeout)
		dump.Kill(proc)
	}
	_ = syscall.Kill(-proc.Pid, syscall.SIGKILL) // CRIU killed it; makes sure
	<-waitCh
	return outcome{gone: true}, true
}

// committed reports whether Raft committed checkpoint c.
func (u *unit) committed(c *transfer.Checkpoint) bool {
	for _, rec := range u.s.cluster.Committed(u.spec.ID) {
		if rec.Seq == c.Manifest.Seq && rec.Digest == c.Digest {
			return true
		}
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// stopped reports whether the process is in the stopped state (T): a
// fence froze it.
func stopped(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state …: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'T'
}
