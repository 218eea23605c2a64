package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/internal/wait"
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
	kind  reqKind
	mover Mover // reqHandoff only
	lazy  bool  // reqHandoff: a lazy final checkpoint may be taken
	reply chan reply
}

type reply struct {
	res Result
	err error
}

// unit is one workload's goroutine: it starts the process, waits for it,
// takes periodic checkpoints, serves requests and restarts it on crash.
// Its parts: the starts (unit_start.go), checkpoints (unit_checkpoint.go),
// handoffs (unit_handoff.go), lazy moves (unit_lazy.go), state reports
// (unit_report.go) and the process's control (proc.go).
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
	lazy lazyArrival

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
	env := s.cfg.Env
	if s.cfg.WorkloadEnv != nil {
		env = append(slices.Clone(env), s.cfg.WorkloadEnv(spec.ID, epoch)...)
	}
	return Workload{Spec: spec, Epoch: epoch, Dir: filepath.Join(s.cfg.DataDir, "workloads", spec.ID), Env: env, Init: s.cfg.Init}
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
			if !wait.Sleep(u.ctx, backoff) {
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
		if !wait.Sleep(u.ctx, backoff) {
			return
		}
		backoff = min(2*backoff, u.s.cfg.RestartMax)
	}
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
	waitCh := waitFor(proc)
	tick, stopTick := u.ticker()
	defer stopTick()
	defer u.lazy.end(u.s.log, u.spec.ID)
	lazyDone := u.lazy.done()
	for {
		select {
		case <-lazyDone:
			lazyDone = nil
			if out, over := u.lazyArrived(proc); over {
				return out
			}
		case err := <-waitCh:
			return outcome{err: err}
		case <-u.ctx.Done():
			u.terminate(proc, waitCh)
			return outcome{}
		case <-tick:
			if !u.lazy.postpone() { // else taken as soon as the memory is all in
				u.periodicCheckpoint(proc)
			}
		case r := <-u.reqs:
			if out, done := u.handle(r, proc, waitCh); done {
				return out
			}
		}
	}
}

// ticker ticks for the periodic checkpoints; a spec that takes none gets
// a nil channel, which never ticks. stop stops it.
func (u *unit) ticker() (tick <-chan time.Time, stop func()) {
	iv := time.Duration(u.spec.Checkpoint.Interval)
	if iv <= 0 || u.spec.Checkpoint.Mode == fsm.ModeNone {
		return nil, func() {}
	}
	t := time.NewTicker(iv)
	return t.C, t.Stop
}

// handle serves one request; done reports whether the process is gone.
func (u *unit) handle(r request, proc *os.Process, waitCh chan error) (outcome, bool) {
	if (r.kind == reqCheckpoint || r.kind == reqHandoff) && u.lazy.pending() {
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
