package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/internal/wait"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/peer"
	"github.com/lifeboat/lifeboat/node/runtime"
)

// peerHandler serves the endpoints peers call on each other
// (node/peer: /v1/internal/*). Each acts on this node only, never
// forwarding, so two peers that disagree about a holder or the leader
// cannot bounce a request between them.
type peerHandler struct{ n *Node }

var (
	_ peer.Handler      = peerHandler{}
	_ peer.ClockHandler = peerHandler{}
)

// Leads reports whether this node leads now.
func (h peerHandler) Leads() bool { return h.n.rep.isLeader() }

// Apply commits an encoded command through this node's Raft.
func (h peerHandler) Apply(_ context.Context, req peer.ApplyRequest) (peer.ApplyAnswer, error) {
	idx, val, err := h.n.prop.applyLocal(req.Command)
	return peer.ApplyAnswer{Index: idx, Value: val}, err
}

// Lease renews a node's lease in the next batch.
func (h peerHandler) Lease(ctx context.Context, req peer.LeaseRequest) (peer.LeaseAnswer, error) {
	if err := h.n.leases.batch.renew(ctx, req.Node); err != nil {
		return peer.LeaseAnswer{}, fmt.Errorf("%w: %v", api.ErrNoLeader, err)
	}
	return peer.LeaseAnswer{Renewed: req.Node, Index: h.n.rep.machine.Index()}, nil
}

// MirrorWait waits until the applied index passes req.After, or the
// request's wait ends.
func (h peerHandler) MirrorWait(ctx context.Context, req peer.MirrorRequest) error {
	deadline := time.Now().Add(req.Wait())
	for h.n.rep.raft.AppliedIndex() <= req.After && time.Now().Before(deadline) {
		if !wait.Sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
	return nil
}

// Mirror is the leader's state as a member's mirror takes it.
func (h peerHandler) Mirror(context.Context, peer.MirrorRequest) (peer.MirrorAnswer, error) {
	rep := h.n.rep
	idx := rep.raft.AppliedIndex()
	state, err := rep.machine.Snapshot()
	if err != nil {
		return peer.MirrorAnswer{}, err
	}
	ans := peer.MirrorAnswer{Index: idx, Leader: rep.name, State: state}
	servers, _ := rep.localServers()
	for _, s := range servers {
		ans.Servers = append(ans.Servers, peer.Server{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return ans, nil
}

// Checkpoint takes a checkpoint of a workload held here.
func (h peerHandler) Checkpoint(ctx context.Context, req peer.CheckpointRequest) (peer.ActionAnswer, error) {
	res, err := localSup(h.n.sup, func(sup *runtime.Supervisor) (runtime.Result, error) { return sup.Checkpoint(ctx, req.Workload) })
	return peer.ActionAnswer(res), err
}

// Restart restarts a workload held here.
func (h peerHandler) Restart(ctx context.Context, req peer.RestartRequest) (peer.ActionAnswer, error) {
	res, err := localSup(h.n.sup, func(sup *runtime.Supervisor) (runtime.Result, error) {
		return sup.Restart(ctx, req.Workload, req.FromCheckpoint)
	})
	return peer.ActionAnswer(res), err
}

// Migrate runs a move of a workload held here.
func (h peerHandler) Migrate(ctx context.Context, req peer.MigrateRequest) (peer.ActionAnswer, error) {
	res, err := h.n.moves.local(ctx, req)
	return peer.ActionAnswer(res), err
}

// Send sends a committed checkpoint from this node's store to req.To.
func (h peerHandler) Send(ctx context.Context, req peer.SendRequest) error {
	return h.n.commits.sendCommitted(ctx, h.n.store, req.Workload, req.Seq, req.To)
}

// Results is a workload's results log, read linearizably on the leader.
func (h peerHandler) Results(_ context.Context, req peer.ResultsRequest) (fsm.ResultsLog, error) {
	return h.n.resultsLocal(req.Workload)
}

// Clock steps the test clock (mounted only with
// Config.Unsafe.ClockControl).
func (h peerHandler) Clock(_ context.Context, req peer.ClockRequest) (peer.ClockAnswer, error) {
	if h.n.testClock == nil {
		return peer.ClockAnswer{}, errors.New("this node has no test clock")
	}
	d := req.Step()
	old := time.Duration(h.n.testClock.offset.Swap(int64(d)))
	h.n.log.Warn("test clock stepped", "from_offset", old, "to_offset", d)
	return peer.ClockAnswer{Offset: d.String(), Now: h.n.now()}, nil
}
