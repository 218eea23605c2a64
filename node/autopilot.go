package node

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/placement"
)

// autopilot keeps the leader's server set: each round it executes the
// first action placement.Autopilot asks for; the next round
// (AutopilotInterval later) re-reads the configuration and asks again, so
// every step starts from the truth.
type autopilot struct {
	cfg     placement.AutopilotConfig
	timeout time.Duration // bounds one configuration change
	rep     *replica
	leases  *leases
	now     func() time.Time
	metrics *metrics
	log     *slog.Logger

	mu sync.Mutex // guards spareSince
	// spareSince is when the leader first saw each spare (the debounce
	// before a promotion).
	spareSince map[string]time.Time
}

// run executes one round.
func (ap *autopilot) run() {
	f := ap.rep.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	servers := f.Configuration().Servers
	actions := placement.Autopilot(ap.servers(servers), ap.cfg)
	if len(actions) == 0 {
		return
	}
	a := actions[0]
	if a.Kind == placement.Promote && !ap.spareSettled(a.ID, servers) {
		return // let the spare catch up first; ask again next round
	}
	if err := ap.execute(a, servers); err != nil {
		ap.log.Warn("autopilot action failed", "action", a.Kind.String(), "peer", a.ID, "err", err)
		return
	}
	ap.metrics.autopilot(a.Kind.String())
	ap.log.Info("autopilot", "action", a.Kind.String(), "peer", a.ID, "reason", a.Reason)
}

// servers describes every peer known to gossip or to Raft.
func (ap *autopilot) servers(servers []raft.Server) []placement.Server {
	members := ap.rep.dir.members()
	names := map[string]bool{}
	for name := range members {
		names[name] = true
	}
	for _, s := range servers {
		names[string(s.ID)] = true
	}
	leaderID := ap.rep.name
	out := make([]placement.Server, 0, len(names))
	for name := range names {
		out = append(out, ap.server(name, members, servers, leaderID))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (ap *autopilot) server(name string, members map[string]gossip.Member, servers []raft.Server, leader string) placement.Server {
	s := placement.Server{ID: name, Suffrage: placement.None, Leader: name == leader}
	if rs, ok := raftServer(servers, name); ok {
		s.Suffrage = placement.Nonvoter
		if rs.Suffrage == raft.Voter {
			s.Suffrage = placement.Voter
		}
	}
	m, inGossip := members[name]
	rec, inFSM := ap.rep.machine.Node(name)
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
	unknown := !inGossip && ap.leases.ledFor() > gossipGrace
	s.Dead = unknown || gstate == gossip.MemberDead || gstate == gossip.MemberLeft || lost
	// Only a member the leader recorded (once it proved its certificate:
	// reconcileMembers) becomes a server.
	s.Healthy = inGossip && gstate == gossip.MemberAlive && !lost && m.Meta.Addr != "" &&
		(inFSM || s.Suffrage != placement.None)
	s.Doomed = (inFSM && (rec.State == fsm.NodeDoomed || rec.State == fsm.NodeDraining)) ||
		m.Meta.State == string(fsm.NodeDoomed) || m.Meta.State == string(fsm.NodeDraining)
	if name == ap.rep.name {
		s.Dead, s.Healthy = false, true // the leader itself runs
	}
	return s
}

// gossipGrace is how long a new leader waits before a Raft server that
// gossip does not know is taken for dead.
const gossipGrace = 5 * time.Second

// spareSettleTime is how long a new spare replicates before autopilot may
// promote it, so that a voter is never made of a peer far behind the log.
const spareSettleTime = time.Second

// spareSettled reports whether a spare has been in the configuration long
// enough to be promoted. It remembers when the leader first saw each spare
// and forgets peers that are no longer spares. Only the leader loop calls it.
func (ap *autopilot) spareSettled(name string, servers []raft.Server) bool {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	seen := map[string]time.Time{}
	for _, s := range servers {
		if s.Suffrage == raft.Nonvoter {
			at, ok := ap.spareSince[string(s.ID)]
			if !ok {
				at = ap.now()
			}
			seen[string(s.ID)] = at
		}
	}
	ap.spareSince = seen
	at, ok := seen[name]
	return ok && ap.now().Sub(at) >= spareSettleTime
}

// execute carries out one autopilot action against Raft.
func (ap *autopilot) execute(a placement.Action, servers []raft.Server) error {
	r, timeout := ap.rep.raft, ap.timeout
	switch a.Kind {
	case placement.AddNonvoter:
		addr := ap.rep.dir.addrOf(a.ID, raftPort)
		if addr == "" {
			return fmt.Errorf("no raft address known for %s", a.ID)
		}
		return r.AddNonvoter(raft.ServerID(a.ID), raft.ServerAddress(addr), 0, timeout).Error()
	case placement.Promote:
		s, ok := raftServer(servers, a.ID)
		if !ok {
			return fmt.Errorf("promote %s: not in the configuration", a.ID)
		}
		return r.AddVoter(s.ID, s.Address, 0, timeout).Error()
	case placement.Demote:
		return r.DemoteVoter(raft.ServerID(a.ID), 0, timeout).Error()
	case placement.Remove:
		return r.RemoveServer(raft.ServerID(a.ID), 0, timeout).Error()
	case placement.TransferLeadership:
		if a.Target == "" {
			return r.LeadershipTransfer().Error()
		}
		s, ok := raftServer(servers, a.Target)
		if !ok {
			return fmt.Errorf("transfer leadership to %s: not in the configuration", a.Target)
		}
		return r.LeadershipTransferToServer(s.ID, s.Address).Error()
	}
	return fmt.Errorf("unknown autopilot action %v", a.Kind)
}
