package node

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/placement"
)

// runAutopilot executes the first action placement.Autopilot asks for;
// the next round (AutopilotInterval later) re-reads the configuration and
// asks again, so every step starts from the truth.
func (n *Node) runAutopilot(ctx context.Context) {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	servers := f.Configuration().Servers
	cands := n.autopilotServers(servers)
	actions := placement.Autopilot(cands, placement.AutopilotConfig{Voters: n.cfg.Voters, Spares: n.cfg.Spares})
	if len(actions) == 0 {
		return
	}
	a := actions[0]
	if a.Kind == placement.Promote && !n.spareSettled(a.ID, servers) {
		return // let the spare catch up first; ask again next round
	}
	if err := n.execute(a, servers); err != nil {
		n.log.Warn("autopilot action failed", "action", a.Kind.String(), "peer", a.ID, "err", err)
		return
	}
	n.metrics.autopilot(a.Kind.String())
	n.log.Info("autopilot", "action", a.Kind.String(), "peer", a.ID, "reason", a.Reason)
}

// autopilotServers describes every peer known to gossip or to Raft.
func (n *Node) autopilotServers(servers []raft.Server) []placement.Server {
	members := n.members()
	names := map[string]bool{}
	for name := range members {
		names[name] = true
	}
	for _, s := range servers {
		names[string(s.ID)] = true
	}
	leaderID := n.cfg.Name
	out := make([]placement.Server, 0, len(names))
	for name := range names {
		out = append(out, n.autopilotServer(name, members, servers, leaderID))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (n *Node) autopilotServer(name string, members map[string]gossip.Member, servers []raft.Server, leader string) placement.Server {
	s := placement.Server{ID: name, Suffrage: placement.None, Leader: name == leader}
	if rs, ok := raftServer(servers, name); ok {
		s.Suffrage = placement.Nonvoter
		if rs.Suffrage == raft.Voter {
			s.Suffrage = placement.Voter
		}
	}
	m, inGossip := members[name]
	rec, inFSM := n.machine.Node(name)
	if inGossip {
		s.Zone, s.Cloud = m.Meta.Zone, m.Meta.Cloud
	} else if inFSM {
		s.Zone, s.Cloud = rec.Zone, rec.Cloud
	}
	gstate := m.State
	lost := inFSM && (rec.State == fsm.NodeLost || rec.State == fsm.NodeLeft)
	// A server gossip has never heard of counts as dead only once this
	// leader has led long enough for gossip to have met everyone: right
	// after a restart its member list is still filling.
	unknown := !inGossip && n.ledFor() > gossipGrace
	s.Dead = unknown || gstate == gossip.MemberDead || gstate == gossip.MemberLeft || lost
	s.Healthy = inGossip && gstate == gossip.MemberAlive && !lost && m.Meta.Addr != ""
	s.Doomed = (inFSM && (rec.State == fsm.NodeDoomed || rec.State == fsm.NodeDraining)) ||
		m.Meta.State == string(fsm.NodeDoomed) || m.Meta.State == string(fsm.NodeDraining)
	if name == n.cfg.Name {
		s.Dead, s.Healthy = false, true // the leader itself runs
	}
	return s
}

// gossipGrace is how long a new leader waits before a Raft server that
// gossip does not know is taken for dead.
const gossipGrace = 5 * time.Second

// ledFor is how long this node has led (zero when it does not lead).
func (n *Node) ledFor() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.leaderSince.IsZero() {
		return 0
	}
	return n.mono().Sub(n.leaderSince)
}

// spareSettleTime is how long a new spare replicates before autopilot may
// promote it, so that a voter is never made of a peer far behind the log.
const spareSettleTime = time.Second

// spareSettled reports whether a spare has been in the configuration long
// enough to be promoted. It remembers when the leader first saw each spare
// and forgets peers that are no longer spares. Only the leader loop calls it.
func (n *Node) spareSettled(name string, servers []raft.Server) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	seen := map[string]time.Time{}
	for _, s := range servers {
		if s.Suffrage == raft.Nonvoter {
			at, ok := n.spareSince[string(s.ID)]
			if !ok {
				at = n.now()
			}
			seen[string(s.ID)] = at
		}
	}
	n.spareSince = seen
	at, ok := seen[name]
	return ok && n.now().Sub(at) >= spareSettleTime
}

// execute carries out one autopilot action against Raft.
func (n *Node) execute(a placement.Action, servers []raft.Server) error {
	timeout := n.cfg.ForwardTimeout
	switch a.Kind {
	case placement.AddNonvoter:
		addr, err := n.raftAddrOf(a.ID)
		if err != nil {
			return err
		}
		return n.raft.AddNonvoter(raft.ServerID(a.ID), addr, 0, timeout).Error()
	case placement.Promote:
		s, ok := raftServer(servers, a.ID)
		if !ok {
			return fmt.Errorf("promote %s: not in the configuration", a.ID)
		}
		return n.raft.AddVoter(s.ID, s.Address, 0, timeout).Error()
	case placement.Demote:
		return n.raft.DemoteVoter(raft.ServerID(a.ID), 0, timeout).Error()
	case placement.Remove:
		return n.raft.RemoveServer(raft.ServerID(a.ID), 0, timeout).Error()
	case placement.TransferLeadership:
		if a.Target == "" {
			return n.raft.LeadershipTransfer().Error()
		}
		s, ok := raftServer(servers, a.Target)
		if !ok {
			return fmt.Errorf("transfer leadership to %s: not in the configuration", a.Target)
		}
		return n.raft.LeadershipTransferToServer(s.ID, s.Address).Error()
	}
	return fmt.Errorf("unknown autopilot action %v", a.Kind)
}

// raftAddrOf is a peer's Raft address, from its gossiped metadata.
func (n *Node) raftAddrOf(name string) (raft.ServerAddress, error) {
	m, ok := n.members()[name]
	if !ok || m.Meta.Addr == "" || m.Meta.RaftPort == 0 {
		return "", fmt.Errorf("no raft address known for %s", name)
	}
	return raft.ServerAddress(net.JoinHostPort(m.Meta.Addr, strconv.Itoa(int(m.Meta.RaftPort)))), nil
}
