package node

import (
	"context"
	"time"

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
		is := n.rep.isLeader()
		if is != was {
			n.leadershipChanged(is)
			was = is
		}
		if !is {
			continue
		}
		if err := n.rep.raft.Barrier(n.cfg.ForwardTimeout).Error(); err != nil {
			continue // not caught up yet, or no longer leader
		}
		n.reconcileMembers(ctx)
		n.pilot.run()
		n.expireLeases(ctx)
		n.grantPending(ctx)
		n.refillStandbys(ctx)
		n.evac.evacuate(ctx)
		n.evac.recoverLost(ctx)
	}
}

func (n *Node) leadershipChanged(leader bool) {
	n.leases.leading(leader)
	if leader {
		n.log.Info("became leader")
	}
	n.metrics.setLeader(leader)
}

// reconcileMembers records in Raft what gossip says: new or changed peers
// (NodeUpsert), returned peers (NodeUpsert makes them alive) and peers that
// left gracefully. A peer that just went silent is not touched here: its
// lease decides. A member is recorded (or its address changed) only once
// it has proven its certificate (prover).
func (n *Node) reconcileMembers(ctx context.Context) {
	for name, m := range n.dir.members() {
		rec, known := n.rep.machine.Node(name)
		switch m.State {
		case gossip.MemberAlive:
			want := nodeFromMeta(name, m.Meta, m.Port)
			change := !known || identityChanged(rec, want) || rec.State == fsm.NodeLost || rec.State == fsm.NodeLeft
			if change && (name == n.cfg.Name || n.proofs.proven(m)) {
				n.prop.applyLogged(ctx, fsm.NodeUpsert{Node: want, At: n.now()})
			}
		case gossip.MemberLeft:
			if known && rec.State != fsm.NodeLeft {
				n.prop.applyLogged(ctx, fsm.NodeStateChange{Node: name, State: fsm.NodeLeft, At: n.now()})
			}
		}
	}
}

// expireLeases marks lost every node whose lease lapsed in the leader's
// own view (leases.end), which no wall-clock step moves. The entry names
// how many renewals the leader saw, so that one applied meanwhile wins.
func (n *Node) expireLeases(ctx context.Context) {
	now := n.mono()
	for _, rec := range n.rep.machine.Nodes() {
		if rec.State == fsm.NodeLost || rec.State == fsm.NodeLeft {
			continue
		}
		if end := n.leases.end(rec.Name); now.After(end) {
			n.log.Warn("node lease lapsed", "peer", rec.Name, "lapsed_for", now.Sub(end).Round(time.Millisecond))
			n.prop.applyLogged(ctx, fsm.LeaseExpire{Node: rec.Name, At: n.now(), Renewals: rec.Renewals})
		}
	}
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
