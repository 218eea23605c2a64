package node

import (
	"context"
	"net"
	"reflect"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/node/api"
)

// startGossip joins nothing yet: it opens the memberlist with this node's
// metadata; joinLoop finds the peers.
func (n *Node) startGossip() error {
	gc := gossip.DefaultConfig()
	gc.Name = n.cfg.Name
	gc.BindAddr = n.cfg.BindAddr
	gc.BindPort = n.cfg.GossipPort
	gc.AdvertiseAddr = n.addr
	gc.AdvertisePort = n.cfg.GossipPort
	gc.Keys = n.cfg.GossipKeys
	gc.Logger = n.log.With("part", "gossip")
	if n.cfg.GossipProbe > 0 {
		gc.ProbeInterval = n.cfg.GossipProbe
	}
	if n.cfg.GossipProbeTimeout > 0 {
		gc.ProbeTimeout = n.cfg.GossipProbeTimeout
	}
	if n.cfg.GossipInterval > 0 {
		gc.GossipInterval = n.cfg.GossipInterval
	}
	if n.cfg.GossipSuspicionMult > 0 {
		gc.SuspicionMult = n.cfg.GossipSuspicionMult
	}
	if n.cfg.Net != nil {
		gc.Transport = n.cfg.Net.gossipTransport(net.JoinHostPort(n.addr, strconv.Itoa(n.cfg.GossipPort)))
	}
	meta := n.localMeta()
	g, err := gossip.New(gc, meta)
	if err != nil {
		return err
	}
	n.gossip = g
	n.mu.Lock()
	n.lastMeta = meta
	n.mu.Unlock()
	return nil
}

// rejoinEvery is how often a peer tries to reach peers gossip gave up on.
const rejoinEvery = 5 * time.Second

// joinLoop joins the configured peers, retrying until one answers (as
// Consul's retry-join does). Then, every rejoinEvery, it re-joins peers
// gossip declared dead: memberlist alone heals only partitions shorter than
// its gossip-to-the-dead time (about 30 s), as serf's reconnect does.
func (n *Node) joinLoop(ctx context.Context) {
	n.joinSeeds(ctx)
	for sleep(ctx, rejoinEvery) {
		var addrs []string
		for _, m := range n.gossip.Members() {
			if m.State == gossip.MemberDead && m.Addr != "" {
				addrs = append(addrs, net.JoinHostPort(m.Addr, strconv.Itoa(m.Port)))
			}
		}
		if len(addrs) > 0 {
			if got, err := n.gossip.Join(addrs); got > 0 {
				n.log.Info("re-joined peers gossip had declared dead", "contacted", got, "err", err)
			}
		}
	}
}

func (n *Node) joinSeeds(ctx context.Context) {
	if len(n.cfg.Join) == 0 {
		return
	}
	for attempt := 0; ; attempt++ {
		got, err := n.gossip.Join(n.cfg.Join)
		if err == nil && got > 0 {
			n.log.Info("joined the gossip pool", "contacted", got)
			return
		}
		if attempt%10 == 0 {
			n.log.Warn("join: no peer answered yet; retrying", "join", n.cfg.Join, "err", err)
		}
		if !sleep(ctx, 500*time.Millisecond) {
			return
		}
	}
}

// localMeta is what this node gossips about itself now.
func (n *Node) localMeta() gossip.Meta {
	m := gossip.Meta{
		Cloud: n.cfg.Cloud, Region: n.cfg.Region, Zone: n.cfg.Zone,
		InstanceID: n.cfg.InstanceID, InstanceType: n.cfg.InstanceType, Lifecycle: n.cfg.Lifecycle,
		MemoryMiB: n.cfg.Capacity.MemoryMiB, CPUMillis: n.cfg.Capacity.CPUMillis,
		Addr: n.addr, RaftPort: uint16(n.cfg.RaftPort), TransferPort: uint16(n.transferPort()),
		HTTPPort: uint16(n.cfg.HTTPPort), IngressPort: uint16(n.cfg.IngressPort),
		State: string(fsm.NodeAlive), Role: api.RoleMember,
	}
	if n.sup != nil {
		m.Modes = n.sup.Modes()
	}
	if n.raft == nil {
		return m
	}
	m.Role = n.roleOf(n.cfg.Name, n.servers())
	m.Leader = n.isLeader()
	if s, ok := n.localServers(); ok && len(s) > 0 {
		m.InRaft = true
	}
	if node, ok := n.view().Node(n.cfg.Name); ok && (node.State == fsm.NodeDoomed || node.State == fsm.NodeDraining) {
		m.State, m.Deadline = string(node.State), node.Deadline
	}
	n.mu.Lock()
	doomed := n.doomedUntil
	n.mu.Unlock()
	if !doomed.IsZero() { // a notice came: say so before Raft does
		m.State, m.Deadline = string(fsm.NodeDoomed), doomed
	}
	return m
}

// metaLoop keeps this node's gossiped metadata (role, leader, state) true.
func (n *Node) metaLoop(ctx context.Context) {
	for sleep(ctx, 100*time.Millisecond) {
		n.pushMeta()
	}
}

// pushMeta gossips this node's metadata now if it changed.
func (n *Node) pushMeta() {
	n.metaMu.Lock()
	defer n.metaMu.Unlock()
	m := n.localMeta()
	n.mu.Lock()
	same := metaEqual(m, n.lastMeta)
	n.mu.Unlock()
	if same || n.gossip == nil {
		return
	}
	if err := n.gossip.UpdateMeta(m); err != nil {
		n.log.Warn("gossip metadata not updated", "err", err)
		return
	}
	n.mu.Lock()
	n.lastMeta = m
	n.mu.Unlock()
}

func metaEqual(a, b gossip.Meta) bool {
	ea, err1 := a.Encode()
	eb, err2 := b.Encode()
	return err1 == nil && err2 == nil && string(ea) == string(eb)
}

// roleOf names a node's role in a Raft configuration.
func (n *Node) roleOf(name string, servers []raft.Server) string {
	for _, s := range servers {
		if string(s.ID) != name {
			continue
		}
		if s.Suffrage == raft.Voter {
			return api.RoleVoter
		}
		return api.RoleSpare
	}
	return api.RoleMember
}

// members returns gossip's view of every peer ever seen, by name.
func (n *Node) members() map[string]gossip.Member {
	out := map[string]gossip.Member{}
	for _, m := range n.gossip.Members() {
		out[m.Name] = m
	}
	return out
}

// leaderName is the leader as this node knows it: from Raft when it is in
// Raft, otherwise from the mirror or the gossiped leader flag.
func (n *Node) leaderName() string {
	if n.inRaft() {
		_, id := n.raft.LeaderWithID()
		return string(id)
	}
	for _, m := range n.gossip.Members() {
		if m.Meta.Leader && m.State == gossip.MemberAlive {
			return m.Name
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mirrorLeader
}

// httpAddrOf is the admin API address of a peer, from its gossiped meta.
func (n *Node) httpAddrOf(name string) string {
	m, ok := n.members()[name]
	if !ok || m.Meta.Addr == "" || m.Meta.HTTPPort == 0 {
		return ""
	}
	return net.JoinHostPort(m.Meta.Addr, strconv.Itoa(int(m.Meta.HTTPPort)))
}

// nodeFromMeta is the fsm record a gossiped member asks for.
func nodeFromMeta(name string, m gossip.Meta, gossipPort int) fsm.Node {
	return fsm.Node{
		Name: name, Cloud: m.Cloud, Region: m.Region, Zone: m.Zone,
		InstanceID: m.InstanceID, InstanceType: m.InstanceType, Lifecycle: m.Lifecycle,
		Capacity: fsm.Resources{MemoryMiB: m.MemoryMiB, CPUMillis: m.CPUMillis},
		Addr:     m.Addr, Modes: m.Modes,
		Ports: fsm.Ports{Gossip: gossipPort, Raft: int(m.RaftPort), Transfer: int(m.TransferPort),
			HTTP: int(m.HTTPPort), Ingress: int(m.IngressPort)},
	}
}

// identityChanged reports whether the recorded node differs from what it
// gossips in anything NodeUpsert carries.
func identityChanged(rec, want fsm.Node) bool {
	return !reflect.DeepEqual(identity(rec), identity(want))
}

// identity keeps only the fields a node gossips about itself.
func identity(n fsm.Node) fsm.Node {
	n.State, n.Deadline, n.LeaseExpiry, n.Drained, n.UpdatedAt = "", time.Time{}, time.Time{}, false, time.Time{}
	if len(n.Modes) == 0 {
		n.Modes = nil
	}
	return n
}
