package node

import (
	"context"
	"github.com/lifeboat/lifeboat/internal/monotime"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
)

// leaderLoop runs the leader's duties every AutopilotInterval while this
// node leads: record gossiped members in Raft, keep the server set
// (autopilot), expire lapsed node leases and grant pending workloads.
func (n *Node) leaderLoop(ctx context.Context) {
	was := false
	t := time.NewTicker(n.cfg.AutopilotInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.kick:
		}
		is := n.isLeader()
		if is != was {
			n.leadershipChanged(is)
			was = is
		}
		if !is {
			continue
		}
		if err := n.raft.Barrier(n.cfg.ForwardTimeout).Error(); err != nil {
			continue // not caught up yet, or no longer leader
		}
		n.reconcileMembers(ctx)
		n.runAutopilot(ctx)
		n.expireLeases(ctx)
		n.grantPending(ctx)
		n.refillStandbys(ctx)
		n.evac.evacuate(ctx)
		n.evac.recoverLost(ctx)
	}
}

func (n *Node) leadershipChanged(leader bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.leaseSeen = map[string]monotime.Instant{}
	if leader {
		n.leaderSince = n.mono()
		n.log.Info("became leader")
	} else {
		n.leaderSince = 0
	}
	n.metrics.setLeader(leader)
}

// reconcileMembers records in Raft what gossip says: new or changed peers
// (NodeUpsert), returned peers (NodeUpsert makes them alive) and peers that
// left gracefully. A peer that just went silent is not touched here: its
// lease decides.
func (n *Node) reconcileMembers(ctx context.Context) {
	for name, m := range n.members() {
		rec, known := n.machine.Node(name)
		switch m.State {
		case gossip.MemberAlive:
			want := nodeFromMeta(name, m.Meta, m.Port)
			if !known || identityChanged(rec, want) || rec.State == fsm.NodeLost || rec.State == fsm.NodeLeft {
				n.applyLogged(ctx, fsm.NodeUpsert{Node: want, At: n.now()})
			}
		case gossip.MemberLeft:
			if known && rec.State != fsm.NodeLeft {
				n.applyLogged(ctx, fsm.NodeStateChange{Node: name, State: fsm.NodeLeft, At: n.now()})
			}
		}
	}
}

// expireLeases marks lost every node whose lease lapsed in the leader's
// own view (leaseEnd), which no wall-clock step moves. The entry names
// how many renewals the leader saw, so that one applied meanwhile wins.
func (n *Node) expireLeases(ctx context.Context) {
	now := n.mono()
	for _, rec := range n.machine.Nodes() {
		if rec.State == fsm.NodeLost || rec.State == fsm.NodeLeft {
			continue
		}
		if end := n.leaseEnd(rec.Name); now.After(end) {
			n.log.Warn("node lease lapsed", "peer", rec.Name, "lapsed_for", now.Sub(end).Round(time.Millisecond))
			n.applyLogged(ctx, fsm.LeaseExpire{Node: rec.Name, At: n.now(), Renewals: rec.Renewals})
		}
	}
}

// leaseEnd is when, on this leader's boot-time clock, node's lease ends:
// TTL after the last renewal this leader applied, or after it became
// leader — a renewal the previous leader applied ended no later than
// that — so a new leader first waits one TTL before it calls a node
// silent.
func (n *Node) leaseEnd(node string) monotime.Instant {
	n.mu.Lock()
	defer n.mu.Unlock()
	return max(n.leaseSeen[node], n.leaderSince).Add(n.cfg.LeaseTTL)
}

// leaseRenewed records, on the leader, that renewals of nodes applied;
// at is when the batch was taken, before it went through Raft.
func (n *Node) leaseRenewed(nodes []string, at monotime.Instant) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.leaderSince.IsZero() {
		return
	}
	for _, name := range nodes {
		n.leaseSeen[name] = max(n.leaseSeen[name], at)
	}
}

// applyLogged applies a leader-side command and logs a failure; the loop
// retries on its next round.
func (n *Node) applyLogged(ctx context.Context, cmd fsm.Command) {
	if _, _, err := n.apply(ctx, cmd); err != nil {
		n.log.Warn("leader command failed", "type", cmd.Type(), "err", err)
	}
}

// raftServer finds a server in the configuration.
func raftServer(servers []raft.Server, id string) (raft.Server, bool) {
	for _, s := range servers {
		if string(s.ID) == id {
			return s, true
		}
	}
	return raft.Server{}, false
}

// eventLoop feeds gossip events to the node: a join, update, failure or
// leave wakes the leader loop at once instead of at its next tick.
func (n *Node) eventLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-n.gossip.Events():
			if !ok {
				return
			}
			n.log.Debug("gossip event", "event", ev.Kind.String(), "peer", ev.Member.Name)
			select {
			case n.kick <- struct{}{}:
			default:
			}
		}
	}
}
