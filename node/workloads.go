package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/runtime"
	"github.com/lifeboat/lifeboat/transfer"
)

// runtimeCluster is the supervisor's view of the cluster: reports and
// checkpoint records go through Raft, reads come from this node's replica.
type runtimeCluster struct {
	n *Node
}

var _ runtime.Cluster = (*runtimeCluster)(nil)

// Report records the workload's state under its epoch.
func (c *runtimeCluster) Report(ctx context.Context, id string, epoch uint64, st fsm.WorkloadState, msg string) error {
	_, _, err := c.n.apply(ctx, fsm.WorkloadReport{Workload: id, Epoch: epoch, State: st, Message: msg, At: c.n.now()})
	return err
}

// NextSeq is the seq of the workload's next checkpoint. A member's mirror
// may not show this node's last Prepare yet, so the last seq prepared
// from here counts too.
func (c *runtimeCluster) NextSeq(id string) uint64 {
	next := uint64(1)
	if w, ok := c.n.view().Workload(id); ok && w.NextSeq > next {
		next = w.NextSeq
	}
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	return max(next, c.n.prepared[id]+1)
}

// Commit records a sealed local checkpoint through the two-phase commit:
// prepare, ship to the standbys, commit with those that verified it.
func (c *runtimeCluster) Commit(ctx context.Context, id string, epoch uint64, ck *transfer.Checkpoint) error {
	return c.n.commitCheckpoint(ctx, id, epoch, ck)
}

// Committed lists the workload's committed checkpoints, oldest first.
func (c *runtimeCluster) Committed(id string) []fsm.CheckpointRecord {
	w, ok := c.n.view().Workload(id)
	if !ok {
		return nil
	}
	return w.Checkpoints
}

// Fetch asks the nodes holding a verified copy of rec, one after the
// other, to send it here; the transfer server accepts a committed
// checkpoint whose digest Raft records from any peer.
func (c *runtimeCluster) Fetch(ctx context.Context, id string, rec fsm.CheckpointRecord) error {
	body, _ := json.Marshal(sendRequest{Workload: id, Seq: rec.Seq, To: c.n.cfg.Name})
	var errs []error
	for _, from := range rec.Standbys {
		if from == c.n.cfg.Name {
			continue
		}
		addr := c.n.httpAddrOf(from)
		if addr == "" {
			errs = append(errs, fmt.Errorf("%s: not reachable", from))
			continue
		}
		if err := c.n.peerCall(ctx, addr, "/v1/internal/send", body, nil); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", from, err))
			continue
		}
		c.n.log.Info("checkpoint fetched", "workload", id, "seq", rec.Seq, "from", from)
		return nil
	}
	if len(errs) == 0 {
		return fmt.Errorf("no other node holds checkpoint #%d of %s", rec.Seq, id)
	}
	return errors.Join(errs...)
}

// sendRequest asks a node to send a committed checkpoint to another.
type sendRequest struct {
	Workload string `json:"workload"`
	Seq      uint64 `json:"seq"`
	To       string `json:"to"`
}

// serveSend sends a committed checkpoint from this node's store to the
// node that asks for it.
func (n *Node) serveSend(w http.ResponseWriter, r *http.Request) {
	var req sendRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1024)).Decode(&req); err != nil {
		api.WriteError(w, fmt.Errorf("%w: send request: %v", api.ErrBadRequest, err))
		return
	}
	if err := n.sendCommitted(r.Context(), req); err != nil {
		api.WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) sendCommitted(ctx context.Context, req sendRequest) error {
	wl, ok := n.view().Workload(req.Workload)
	if !ok {
		return fmt.Errorf("%w: no workload %q", fsm.ErrNotFound, req.Workload)
	}
	i := slices.IndexFunc(wl.Checkpoints, func(c fsm.CheckpointRecord) bool { return c.Seq == req.Seq })
	if i < 0 {
		return fmt.Errorf("%w: checkpoint #%d of %s is not committed", fsm.ErrNotFound, req.Seq, req.Workload)
	}
	if n.sup == nil {
		return fmt.Errorf("%w: this node runs no workloads", api.ErrUnavailable)
	}
	ck, err := n.sup.Store().Get(req.Workload, req.Seq)
	if err != nil {
		return fmt.Errorf("%w: %v", fsm.ErrNotFound, err)
	}
	if ck.Digest != wl.Checkpoints[i].Digest {
		return fmt.Errorf("%w: checkpoint #%d of %s here has another digest than Raft records", api.ErrConflict, req.Seq, req.Workload)
	}
	return n.ship(ctx, n.members()[req.To], req.To, ck)
}

// syncTo hands the supervisor what replica v grants to this node — unless
// v is older than a replica it already followed. Switching between the
// Raft replica and the mirror (a demotion, an orphaned voter) can show an
// older state, in which a workload since re-granted elsewhere is still
// this node's: Jepsen caught a demoted old holder starting it again under
// its finished epoch.
func (n *Node) syncTo(v *fsm.Machine) {
	idx := v.Index()
	n.mu.Lock()
	if idx < n.syncedIndex {
		n.mu.Unlock()
		return
	}
	n.syncedIndex = idx
	n.mu.Unlock()
	n.sup.Sync(n.desired(v))
}

// syncLoop keeps the supervisor running exactly the workloads the
// replicated state grants to this node.
func (n *Node) syncLoop(ctx context.Context) {
	for {
		v := n.view()
		changed := v.Notify()
		n.syncTo(v)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(time.Second): // the view itself may switch (member ↔ Raft)
		}
	}
}

// reportLoop sends again the workload state reports the cluster missed.
func (n *Node) reportLoop(ctx context.Context) {
	for sleep(ctx, time.Second) {
		n.sup.RetryReports()
	}
}

// desired is what this node should run according to replica v.
func (n *Node) desired(v *fsm.Machine) []runtime.Desired {
	var out []runtime.Desired
	for _, w := range v.Workloads() {
		a := w.Assignment
		if a.Holder != n.cfg.Name || a.Epoch == 0 || a.State == fsm.WorkloadStopped {
			continue
		}
		d := runtime.Desired{Spec: w.Spec, Epoch: a.Epoch}
		if k := len(w.Checkpoints); k > 0 {
			rec := w.Checkpoints[k-1]
			d.From = &rec
		}
		out = append(out, d)
	}
	return out
}

// Checkpoint takes a checkpoint of a workload now, on its holder.
func (n *Node) Checkpoint(ctx context.Context, id string) (api.ActionResult, error) {
	var res runtime.Result
	err := n.onHolder(ctx, id, "/v1/internal/checkpoint", []byte(id), &res, func() error {
		var err error
		res, err = n.localSup(func(sup *runtime.Supervisor) (runtime.Result, error) { return sup.Checkpoint(ctx, id) })
		return err
	})
	return actionResult(res), err
}

// Restart restarts a workload on its holder, from its latest committed
// checkpoint when fromCheckpoint.
func (n *Node) Restart(ctx context.Context, id string, fromCheckpoint bool) (api.ActionResult, error) {
	var res runtime.Result
	body, _ := json.Marshal(restartRequest{ID: id, FromCheckpoint: fromCheckpoint})
	err := n.onHolder(ctx, id, "/v1/internal/restart", body, &res, func() error {
		var err error
		res, err = n.localSup(func(sup *runtime.Supervisor) (runtime.Result, error) {
			return sup.Restart(ctx, id, fromCheckpoint)
		})
		return err
	})
	return actionResult(res), err
}

func actionResult(r runtime.Result) api.ActionResult {
	return api.ActionResult{Workload: r.Workload, Epoch: r.Epoch, Seq: r.Seq, Digest: r.Digest, Bytes: r.Bytes,
		FreezeMS: ms(r.Freeze), TookMS: ms(r.Took), PID: r.PID}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type restartRequest struct {
	ID             string `json:"id"`
	FromCheckpoint bool   `json:"from_checkpoint"`
}

// onHolder runs local when this node holds the workload, otherwise posts
// body to the holder's internal endpoint path.
func (n *Node) onHolder(ctx context.Context, id, path string, body []byte, out any, local func() error) error {
	w, ok := n.view().Workload(id)
	if !ok {
		return fmt.Errorf("%w: no workload %q", fsm.ErrNotFound, id)
	}
	holder := w.Assignment.Holder
	if holder == "" {
		return fmt.Errorf("%w: workload %q has no holder yet", api.ErrUnavailable, id)
	}
	if holder == n.cfg.Name {
		return local()
	}
	addr := n.httpAddrOf(holder)
	if addr == "" {
		return fmt.Errorf("%w: holder %s of %q is not reachable", api.ErrUnavailable, holder, id)
	}
	return n.peerCall(ctx, addr, path, body, out)
}

func (n *Node) serveCheckpoint(w http.ResponseWriter, r *http.Request) {
	id, err := io.ReadAll(io.LimitReader(r.Body, 256))
	if err != nil {
		api.WriteError(w, fmt.Errorf("%w: %v", api.ErrBadRequest, err))
		return
	}
	res, err := n.localSup(func(sup *runtime.Supervisor) (runtime.Result, error) { return sup.Checkpoint(r.Context(), string(id)) })
	if err != nil {
		api.WriteError(w, err)
		return
	}
	writeJSON(w, res)
}

func (n *Node) serveRestart(w http.ResponseWriter, r *http.Request) {
	var req restartRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1024)).Decode(&req); err != nil {
		api.WriteError(w, fmt.Errorf("%w: restart request: %v", api.ErrBadRequest, err))
		return
	}
	res, err := n.localSup(func(sup *runtime.Supervisor) (runtime.Result, error) {
		return sup.Restart(r.Context(), req.ID, req.FromCheckpoint)
	})
	if err != nil {
		api.WriteError(w, err)
		return
	}
	writeJSON(w, res)
}

// localSup runs f on this node's supervisor (never forwarding: the
// internal endpoints use it, so two peers that disagree about the holder
// cannot bounce a request between them) and gives runtime errors their
// API codes.
func (n *Node) localSup(f func(*runtime.Supervisor) (runtime.Result, error)) (runtime.Result, error) {
	if n.sup == nil {
		return runtime.Result{}, fmt.Errorf("%w: this node runs no workloads", api.ErrUnavailable)
	}
	res, err := f(n.sup)
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
