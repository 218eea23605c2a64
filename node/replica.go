package node

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
)

// replica is this peer's read side of the replicated state: its own Raft
// replica while it is in Raft, otherwise the mirror of the leader's state
// that a member keeps (mirror.go). Every part reads the state through it;
// it decides which copy is current and who leads.
type replica struct {
	name    string
	machine *fsm.Machine // the Raft replica (voters and spares)
	mirror  *mirror
	dir     *directory
	now     func() time.Time
	raft    *raft.Raft // set by Node.startRaft, before any loop runs

	mu sync.Mutex // guards noLeaderSince
	// noLeaderSince is when Raft last started knowing no leader (orphaned).
	noLeaderSince time.Time
}

// orphanAfter is how long a node in Raft may know no leader while gossip
// shows another peer leading before it takes itself for removed.
const orphanAfter = 5 * time.Second

// view is the replica reads come from: this node's Raft replica while it
// is in Raft, otherwise the mirror of the leader's state — except before
// the mirror's first fetch, when a node that just left Raft (autopilot
// demoted it) still has its last Raft replica, stale but far better than
// the empty mirror.
func (r *replica) view() *fsm.Machine {
	if r.inRaft() {
		return r.machine
	}
	if r.mirror.index() == 0 && r.raft.AppliedIndex() > 0 {
		return r.machine
	}
	return r.mirror.machine
}

// ready reports whether the replica has caught up with anything at all:
// its own Raft state or the leader's mirror.
func (r *replica) ready() bool {
	if r.inRaft() {
		return r.raft.AppliedIndex() > 0
	}
	return r.mirror.index() > 0
}

// waitView waits until ok holds on the current replica.
func (r *replica) waitView(ctx context.Context, ok func(*fsm.Machine) bool) error {
	for {
		v := r.view()
		changed := v.Notify()
		if ok(v) {
			return nil
		}
		select {
		case <-changed:
		case <-time.After(200 * time.Millisecond): // the view itself may switch (member ↔ Raft)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// isLeader reports whether this node leads now.
func (r *replica) isLeader() bool { return r.raft.State() == raft.Leader }

// leaderName is the leader as this node knows it: from Raft when it is in
// Raft, otherwise from the gossiped leader flag or the mirror.
func (r *replica) leaderName() string {
	if r.inRaft() {
		_, id := r.raft.LeaderWithID()
		return string(id)
	}
	if name := r.dir.gossipedLeader(""); name != "" {
		return name
	}
	return r.mirror.leader()
}

// servers returns the latest Raft configuration this node knows: its own
// replica's when it is in Raft, otherwise the mirror's.
func (r *replica) servers() []raft.Server {
	if s, ok := r.localServers(); ok && r.inConfig(s) {
		return s
	}
	return r.mirror.config()
}

// localServers is this node's own Raft configuration.
func (r *replica) localServers() ([]raft.Server, bool) {
	f := r.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, false
	}
	return f.Configuration().Servers, true
}

func (r *replica) inConfig(servers []raft.Server) bool {
	_, ok := raftServer(servers, r.name)
	return ok
}

// inRaft reports whether this node is in its own latest configuration and
// so keeps a live replica — unless it is orphaned.
func (r *replica) inRaft() bool {
	s, ok := r.localServers()
	return ok && r.inConfig(s) && !r.orphaned()
}

// orphaned reports that this node was taken out of Raft without learning
// it: autopilot removed it while it was stopped or cut off, and its own
// copy of the configuration still lists it, so it campaigns in vain (the
// others have a leader and ignore it) and knows no leader. Once Raft has
// known no leader for orphanAfter while gossip shows another live peer
// leading, the node acts as a member — reads from the mirror, forwards to
// the gossiped leader, renews its lease there — until a leader takes it
// back into Raft.
func (r *replica) orphaned() bool {
	if r.raft.State() == raft.Leader {
		return false
	}
	_, id := r.raft.LeaderWithID()
	now := r.now()
	r.mu.Lock()
	if id != "" {
		r.noLeaderSince = time.Time{}
		r.mu.Unlock()
		return false
	}
	if r.noLeaderSince.IsZero() {
		r.noLeaderSince = now
	}
	since := r.noLeaderSince
	r.mu.Unlock()
	return now.Sub(since) >= orphanAfter && r.dir.gossipedLeader(r.name) != ""
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

// roleOf names a node's role in a Raft configuration.
func roleOf(name string, servers []raft.Server) string {
	s, ok := raftServer(servers, name)
	switch {
	case !ok:
		return api.RoleMember
	case s.Suffrage == raft.Voter:
		return api.RoleVoter
	}
	return api.RoleSpare
}
