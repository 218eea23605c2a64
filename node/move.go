package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/ingress"
	"github.com/lifeboat/lifeboat/node/peer"
	"github.com/lifeboat/lifeboat/node/runtime"
	"github.com/lifeboat/lifeboat/placement"
)

// A move hands a workload from its holder to another node (or parks it,
// a preemption): on the holder, the gate closes, the unit takes the final
// checkpoint (the process stops), the checkpoint is committed with the
// target among its copies (commit.go), the target is granted the next
// epoch, and the move waits until it reports the workload running there.
// Whoever asks (the API on any peer, the leader's evacuation) runs it on
// the holder through migrateVia.

// restoreWait bounds how long a move waits for the new holder to report
// the workload running.
const restoreWait = 2 * time.Minute

// moves runs moves on the holder and follows them.
type moves struct {
	name    string
	timeout time.Duration // Config.ForwardTimeout: bounds one grant
	rep     *replica
	prop    *proposer
	commits *committer
	call    *peer.Client
	crash   crashPoints
	sup     *runtime.Supervisor // set by Node.startRuntime, before any loop runs
	ingress *ingress.Ingress    // set by Node.startIngress; nil without one
	now     func() time.Time
	metrics *metrics
	log     *slog.Logger
}

// migrateVia runs a move on the workload's holder.
func (mv *moves) migrateVia(ctx context.Context, req peer.MigrateRequest) (api.ActionResult, error) {
	if err := mv.checkMove(req); err != nil {
		return api.ActionResult{}, err
	}
	ar, err := mv.onHolder(ctx, req.ID, func() (runtime.Result, error) { return mv.local(ctx, req) },
		func(addr string) (peer.ActionAnswer, error) { return mv.call.Migrate(ctx, addr, req) })
	if err == nil {
		ar.Holder = req.To
	}
	return ar, err
}

// onHolder runs an action on the workload's holder: local when this node
// holds it, otherwise remote, given the holder's admin API address.
func (mv *moves) onHolder(ctx context.Context, id string, local func() (runtime.Result, error),
	remote func(addr string) (peer.ActionAnswer, error)) (api.ActionResult, error) {
	w, ok := mv.rep.view().Workload(id)
	if !ok {
		return api.ActionResult{}, fmt.Errorf("%w: no workload %q", fsm.ErrNotFound, id)
	}
	holder := w.Assignment.Holder
	if holder == "" {
		return api.ActionResult{}, fmt.Errorf("%w: workload %q has no holder yet", api.ErrUnavailable, id)
	}
	if holder == mv.name {
		res, err := local()
		return actionResult(peer.ActionAnswer(res)), err
	}
	addr := mv.rep.dir.peerAddrOf(holder)
	if addr == "" {
		return api.ActionResult{}, fmt.Errorf("%w: holder %s of %q is not reachable", api.ErrUnavailable, holder, id)
	}
	ans, err := remote(addr)
	return actionResult(ans), err
}

// migrationID names a new migration record.
func migrationID(workload string, now time.Time) string {
	return workload + "-" + strconv.FormatInt(now.UnixNano(), 36)
}

// checkMove refuses a move that cannot be made: to a node that cannot
// take the workload, or a park of a workload nobody holds.
func (mv *moves) checkMove(req peer.MigrateRequest) error {
	if !req.Park {
		return mv.checkTarget(req.ID, req.To)
	}
	switch w, ok := mv.rep.view().Workload(req.ID); {
	case !ok:
		return fmt.Errorf("%w: no workload %q", fsm.ErrNotFound, req.ID)
	case req.To != "":
		return fmt.Errorf("%w: a park names no target, got %q", api.ErrBadRequest, req.To)
	case w.Assignment.Holder == "" || w.Assignment.Epoch == 0:
		return fmt.Errorf("%w: %s has no holder to take it off", api.ErrConflict, req.ID)
	}
	return nil
}

// local runs a move on this node, the holder.
func (mv *moves) local(ctx context.Context, req peer.MigrateRequest) (runtime.Result, error) {
	if err := mv.caughtUpTo(ctx, req.Index); err != nil {
		return runtime.Result{}, err
	}
	if err := mv.checkMove(req); err != nil {
		return runtime.Result{}, err
	}
	w, _ := mv.rep.view().Workload(req.ID)
	run := &handoff{mv: mv, ctx: ctx, req: req, standbys: w.Assignment.Standbys, migration: req.Migration}
	if err := run.begin(); err != nil {
		return runtime.Result{}, err
	}
	lazy := mv.lazyMove(w, req.To, req.Park)
	// Requests already admitted finish before the final checkpoint; new
	// ones wait at the fronts for the next holder.
	reopen := closeGate(ctx, mv.ingress, req.ID, w.Assignment.Epoch, mv.log)
	res, err := localSup(mv.sup, func(sup *runtime.Supervisor) (runtime.Result, error) {
		return sup.Handoff(ctx, req.ID, lazy, run)
	})
	if err != nil {
		if run.epoch == 0 {
			reopen() // it runs on here
		}
		return res, run.finish(0, err)
	}
	if req.Park {
		return res, run.finish(0, nil)
	}
	run.phase(fsm.PhaseRestoring, run.epoch, nil)
	res.Epoch = run.epoch
	return res, run.finish(run.epoch, mv.waitRunning(ctx, req.ID, run.epoch))
}

// caughtUpTo waits (bounded) for this node's replica to reach the index
// the leader planned a move at: a lagging replica here would refuse the
// target for room the leader saw freed.
func (mv *moves) caughtUpTo(ctx context.Context, index uint64) error {
	if index == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := mv.rep.waitView(wctx, func(v *fsm.Machine) bool { return v.Index() >= index }); err != nil {
		return fmt.Errorf("%w: this node's replica did not reach index %d: %v", api.ErrUnavailable, index, err)
	}
	return nil
}

// lazyMove reports whether a move of w to `to` takes a lazy final
// checkpoint: the spec asks for it, it is a move (a park has no new
// holder to fetch the memory), and the target can restore one.
func (mv *moves) lazyMove(w fsm.Workload, to string, park bool) bool {
	if park || !w.Spec.Checkpoint.LazyPages || w.Spec.Checkpoint.Mode != fsm.ModeCRIU {
		return false
	}
	rec, ok := mv.rep.view().Node(to)
	return ok && slices.Contains(rec.Modes, fsm.CapLazyPages)
}

// waitRunning waits until the workload runs under epoch (or fails).
func (mv *moves) waitRunning(ctx context.Context, id string, epoch uint64) error {
	ctx, cancel := context.WithTimeout(ctx, restoreWait)
	defer cancel()
	var last fsm.Assignment
	err := mv.rep.waitView(ctx, func(v *fsm.Machine) bool {
		w, ok := v.Workload(id)
		if !ok {
			return true
		}
		last = w.Assignment
		return w.Assignment.Epoch != epoch || w.Assignment.State == fsm.WorkloadRunning || w.Assignment.State == fsm.WorkloadFailed
	})
	switch {
	case err != nil:
		return fmt.Errorf("%w: %s did not report %s running under epoch %d: %v", api.ErrUnavailable, last.Holder, id, epoch, err)
	case last.Epoch != epoch:
		return fmt.Errorf("%w: %s moved on to epoch %d before it ran under %d", api.ErrConflict, id, last.Epoch, epoch)
	case last.State == fsm.WorkloadFailed:
		return fmt.Errorf("%w: %s on %s: %s", api.ErrRestoreFailed, id, last.Holder, last.Message)
	}
	return nil
}

// localSup runs f on this node's supervisor (never forwarding: the
// internal endpoints use it, so two peers that disagree about the holder
// cannot bounce a request between them) and gives runtime errors their
// API codes.
func localSup(sup *runtime.Supervisor, f func(*runtime.Supervisor) (runtime.Result, error)) (runtime.Result, error) {
	if sup == nil {
		return runtime.Result{}, fmt.Errorf("%w: this node runs no workloads", api.ErrUnavailable)
	}
	res, err := f(sup)
	switch {
	case err == nil:
	case errors.Is(err, runtime.ErrNotRunning), errors.Is(err, runtime.ErrNoCheckpoint):
		err = fmt.Errorf("%w: %w", api.ErrConflict, err)
	case errors.Is(err, runtime.ErrRestore):
		err = fmt.Errorf("%w: %w", api.ErrRestoreFailed, err)
	case errors.Is(err, runtime.ErrCheckpoint):
		err = fmt.Errorf("%w: %w", api.ErrCheckpointFailed, err)
	}
	return res, err
}

func actionResult(r peer.ActionAnswer) api.ActionResult {
	return api.ActionResult{Workload: r.Workload, Epoch: r.Epoch, Seq: r.Seq, Digest: r.Digest, Bytes: r.Bytes,
		FreezeMS: ms(r.Freeze), TookMS: ms(r.Took), PID: r.PID}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// checkTarget refuses a move to a node that cannot take the workload.
func (mv *moves) checkTarget(id, to string) error {
	v := mv.rep.view()
	w, ok := v.Workload(id)
	if !ok {
		return fmt.Errorf("%w: no workload %q", fsm.ErrNotFound, id)
	}
	if to == "" {
		return fmt.Errorf("%w: migrate: \"to\" names no node", api.ErrBadRequest)
	}
	if to == w.Assignment.Holder {
		return fmt.Errorf("%w: %s already holds %s", api.ErrConflict, to, id)
	}
	rec, ok := v.Node(to)
	if !ok {
		return fmt.Errorf("%w: no node %q", fsm.ErrNotFound, to)
	}
	members := mv.rep.dir.members()
	// A move by hand may go where the spec's placement preferences would
	// not: only eligibility, the mode and the room count.
	req := placement.Request{Workload: id, Mode: w.Spec.Checkpoint.Mode, Need: needOf(w.Spec)}
	err := placement.Fits(req, placementNodes([]fsm.Node{rec}, v.Workloads(), members)[0])
	var u *placement.Unfit
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &u):
		return fmt.Errorf("%w: %v", api.ErrConflict, err)
	case u.Reason == placement.ErrIneligible && (rec.State != fsm.NodeAlive || !memberAlive(members, to)):
		return fmt.Errorf("%w: node %s is not alive (%s)", api.ErrConflict, to, rec.State)
	case u.Reason == placement.ErrIneligible:
		return fmt.Errorf("%w: node %s is drained", api.ErrConflict, to)
	case u.Reason == placement.ErrMode:
		return fmt.Errorf("%w: node %s cannot run checkpoint mode %s (it offers %v)", api.ErrConflict, to, u.Mode, u.Modes)
	}
	return fmt.Errorf("%w: node %s has %d MiB and %d millicores free, %s needs %d MiB and %d millicores",
		api.ErrConflict, to, u.Free.MemoryMiB, u.Free.CPUMillis, id, u.Need.MemoryMiB, u.Need.CPUMillis)
}
