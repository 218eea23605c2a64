package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/peer"
	"github.com/lifeboat/lifeboat/node/runtime"
)

var _ api.Backend = (*Node)(nil)

// Status merges the three views of the cluster: gossip (who answers now),
// the replicated node records (leases, doom, drain) and the Raft
// configuration (roles).
func (n *Node) Status(ctx context.Context) (api.Status, error) {
	members := n.dir.members()
	records := map[string]fsm.Node{}
	for _, rec := range n.rep.view().Nodes() {
		records[rec.Name] = rec
	}
	servers := n.rep.servers()
	leader := n.rep.leaderName()
	names := map[string]bool{}
	for name := range members {
		names[name] = true
	}
	for name := range records {
		names[name] = true
	}
	st := api.Status{Node: n.cfg.Name, Leader: leader, Members: []api.Member{}}
	for name := range names {
		m, inGossip := members[name]
		rec, inFSM := records[name]
		v := memberView(name, m, inGossip, rec, inFSM)
		v.Role = roleOf(name, servers)
		v.Leader = name == leader && leader != ""
		st.Members = append(st.Members, v)
	}
	sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].Name < st.Members[j].Name })
	return st, nil
}

func memberView(name string, m gossip.Member, inGossip bool, rec fsm.Node, inFSM bool) api.Member {
	v := api.Member{Name: name}
	if inFSM {
		v.Cloud, v.Region, v.Zone, v.Addr = rec.Cloud, rec.Region, rec.Zone, rec.Addr
		v.Lifecycle, v.InstanceType = rec.Lifecycle, rec.InstanceType
		v.Deadline, v.LeaseExpiry = rec.Deadline, rec.LeaseExpiry
	} else if inGossip {
		v.Cloud, v.Region, v.Zone, v.Addr = m.Meta.Cloud, m.Meta.Region, m.Meta.Zone, m.Meta.Addr
		v.Lifecycle, v.InstanceType = m.Meta.Lifecycle, m.Meta.InstanceType
	}
	if inGossip {
		v.Gossip = string(m.State)
	}
	v.State = combinedState(m.State, inGossip, rec.State, inFSM)
	return v
}

// combinedState is the state the API shows. The replicated record wins for
// lost, left, doomed and draining; gossip adds what Raft cannot know yet:
// suspect, and dead (shown as lost before the lease runs out).
func combinedState(g gossip.MemberState, inGossip bool, rec fsm.NodeState, inFSM bool) string {
	if inFSM && rec != fsm.NodeAlive && rec != "" {
		return string(rec)
	}
	switch {
	case !inGossip:
		return api.StateLost
	case g == gossip.MemberDead:
		return api.StateLost
	case g == gossip.MemberLeft:
		return api.StateLeft
	case g == gossip.MemberSuspect:
		return api.StateSuspect
	}
	return api.StateAlive
}

// Workloads lists every workload from this node's replica, a pending
// one with why it waits.
func (n *Node) Workloads(ctx context.Context) ([]api.Workload, error) {
	v := n.rep.view()
	why := pendingExplainer(v, n.dir.members())
	out := []api.Workload{}
	for _, w := range v.Workloads() {
		aw := api.WorkloadFrom(w)
		aw.PendingReason = why(w)
		out = append(out, aw)
	}
	return out, nil
}

// Workload shows one workload, a pending one with why it waits.
func (n *Node) Workload(ctx context.Context, id string) (api.Workload, error) {
	v := n.rep.view()
	w, ok := v.Workload(id)
	if !ok {
		return api.Workload{}, fmt.Errorf("%w: no workload %q", fsm.ErrNotFound, id)
	}
	aw := api.WorkloadFrom(w)
	aw.PendingReason = pendingExplainer(v, n.dir.members())(w)
	return aw, nil
}

// Submit records a new workload; the leader grants it on its next round.
func (n *Node) Submit(ctx context.Context, spec fsm.WorkloadSpec) (api.Workload, error) {
	spec = spec.WithDefaults()
	if err := errors.Join(spec.Validate(), spec.Admit()); err != nil {
		return api.Workload{}, err
	}
	if _, _, err := n.prop.apply(ctx, fsm.WorkloadSubmit{Spec: spec, At: n.now()}); err != nil {
		return api.Workload{}, err
	}
	return api.WorkloadFrom(fsm.Workload{Spec: spec, Assignment: fsm.Assignment{State: fsm.WorkloadPending}}), nil
}

// Remove deletes a workload.
func (n *Node) Remove(ctx context.Context, id string) error {
	_, _, err := n.prop.apply(ctx, fsm.WorkloadRemove{Workload: id})
	return err
}

// AppendResult appends to a workload's fenced results log.
func (n *Node) AppendResult(ctx context.Context, id string, epoch uint64, value string) (fsm.Result, error) {
	_, val, err := n.prop.apply(ctx, fsm.ResultAppend{Workload: id, Epoch: epoch, Value: value, At: n.now(), KeepBytes: fsm.MaxResultBytes})
	if err != nil {
		return fsm.Result{}, err
	}
	var res fsm.Result
	if err := json.Unmarshal(val, &res); err != nil {
		return fsm.Result{}, fmt.Errorf("decoding the appended result: %w", err)
	}
	return res, nil
}

// Results reads a workload's fenced results log and its trim point
// linearizably: on the leader, after a barrier (every entry committed
// before the read is applied, and the leader still leads), or forwarded
// to it.
func (n *Node) Results(ctx context.Context, id string) (fsm.ResultsLog, error) {
	if n.rep.isLeader() {
		return n.resultsLocal(id)
	}
	leader := n.dir.peerAddrOf(n.rep.leaderName())
	if leader == "" {
		return fsm.ResultsLog{}, fmt.Errorf("%w: the cluster has no leader yet; retry shortly", api.ErrNoLeader)
	}
	return n.calls.Results(ctx, leader, peer.ResultsRequest{Workload: id})
}

func (n *Node) resultsLocal(id string) (fsm.ResultsLog, error) {
	if err := n.rep.raft.Barrier(n.cfg.ForwardTimeout).Error(); err != nil {
		return fsm.ResultsLog{}, fmt.Errorf("%w: %v", api.ErrNoLeader, err)
	}
	w, ok := n.rep.machine.Workload(id)
	if !ok {
		return fsm.ResultsLog{}, fmt.Errorf("%w: no workload %q", fsm.ErrNotFound, id)
	}
	return w.ResultsLog(), nil
}

// Migrations lists the migration records.
func (n *Node) Migrations(ctx context.Context) ([]fsm.Migration, error) {
	ms := n.rep.view().Migrations()
	if ms == nil {
		ms = []fsm.Migration{}
	}
	return ms, nil
}

// ErrNotReady is why /readyz says no.
var ErrNotReady = errors.New("not ready")

// Ready says whether this peer should take traffic: it knows a leader, the
// cluster has recorded it, and it is neither doomed nor draining.
func (n *Node) Ready() error {
	if n.rep.leaderName() == "" {
		return fmt.Errorf("%w: no leader known", ErrNotReady)
	}
	rec, ok := n.rep.view().Node(n.cfg.Name)
	if !ok {
		return fmt.Errorf("%w: not yet recorded by the cluster", ErrNotReady)
	}
	if rec.State != fsm.NodeAlive {
		return fmt.Errorf("%w: this peer is %s", ErrNotReady, rec.State)
	}
	if n.fence.doomed() { // at once, before Raft records the notice
		return fmt.Errorf("%w: this peer got a termination notice", ErrNotReady)
	}
	return nil
}

// Migrate moves a workload to node to: on the holder, the final
// checkpoint (the process stops), the transfer of what to lacks, the
// commit, the grant of the next epoch to to, which restores it. It returns
// once to reports the workload running (or failed).
func (n *Node) Migrate(ctx context.Context, id, to string) (api.ActionResult, error) {
	return n.moves.migrateVia(ctx, peer.MigrateRequest{ID: id, To: to, Reason: "manual"})
}

// Checkpoint takes a checkpoint of a workload now, on its holder.
func (n *Node) Checkpoint(ctx context.Context, id string) (api.ActionResult, error) {
	return n.moves.onHolder(ctx, id, func() (runtime.Result, error) {
		return localSup(n.sup, func(sup *runtime.Supervisor) (runtime.Result, error) { return sup.Checkpoint(ctx, id) })
	}, func(addr string) (peer.ActionAnswer, error) {
		return n.calls.Checkpoint(ctx, addr, peer.CheckpointRequest{Workload: id})
	})
}

// Restart restarts a workload on its holder, from its latest committed
// checkpoint when fromCheckpoint.
func (n *Node) Restart(ctx context.Context, id string, fromCheckpoint bool) (api.ActionResult, error) {
	return n.moves.onHolder(ctx, id, func() (runtime.Result, error) {
		return localSup(n.sup, func(sup *runtime.Supervisor) (runtime.Result, error) { return sup.Restart(ctx, id, fromCheckpoint) })
	}, func(addr string) (peer.ActionAnswer, error) {
		return n.calls.Restart(ctx, addr, peer.RestartRequest{Workload: id, FromCheckpoint: fromCheckpoint})
	})
}
