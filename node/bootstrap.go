package node

import (
	"context"

	"slices"
	"time"

	"github.com/lifeboat/lifeboat/internal/wait"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/gossip"
)

// bootstrapLoop forms the cluster when --bootstrap-expect N peers are in
// sight, without an operator and without ever making two clusters:
//
//   - a node that already has Raft state never bootstraps (a restart
//     rejoins with its data dir);
//   - no node bootstraps while any peer in sight gossips that it is in
//     Raft already: that cluster's autopilot adds the newcomer;
//   - otherwise, once at least N peers are alive and the set has not
//     changed for BootstrapSettle, only the lowest-named of them
//     bootstraps, and with itself as the sole voter. Autopilot then adds
//     the others as spares and promotes them into a zone-spread voter set.
//
// Every peer sees the same gossip pool once it settles, so every peer
// agrees on the lowest name; the settle time covers propagation, and the
// in-Raft flag stops a late peer from starting a second cluster.
func (n *Node) bootstrapLoop(ctx context.Context) {
	if n.cfg.BootstrapExpect == 0 {
		return
	}
	if n.hadState {
		return
	}
	var view []string
	var since time.Time
	for wait.Sleep(ctx, 100*time.Millisecond) {
		if s, ok := n.rep.localServers(); ok && len(s) > 0 {
			return // added to a cluster by its leader
		}
		alive, clusterSeen := n.bootstrapView()
		if clusterSeen || len(alive) < n.cfg.BootstrapExpect {
			view = nil
			continue
		}
		if !slices.Equal(alive, view) {
			view, since = alive, n.now()
			continue
		}
		if n.now().Sub(since) < n.cfg.BootstrapSettle || alive[0] != n.cfg.Name {
			continue
		}
		n.bootstrap(ctx)
		return
	}
}

// bootstrapView returns the sorted names of the alive peers, and whether
// any of them is already in a Raft cluster.
func (n *Node) bootstrapView() (alive []string, clusterSeen bool) {
	for _, m := range n.gossip.Members() {
		if m.State != gossip.MemberAlive {
			continue
		}
		alive = append(alive, m.Name)
		if m.Name != n.cfg.Name && m.Meta.InRaft {
			clusterSeen = true
		}
	}
	slices.Sort(alive)
	return alive, clusterSeen
}

func (n *Node) bootstrap(ctx context.Context) {
	conf := raft.Configuration{Servers: []raft.Server{{
		ID: raft.ServerID(n.cfg.Name), Address: raft.ServerAddress(n.raftAddr()), Suffrage: raft.Voter,
	}}}
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil {
		n.log.Error("bootstrap failed", "err", err)
		return
	}
	n.log.Info("bootstrapped a new cluster", "expect", n.cfg.BootstrapExpect)
}
