package node

import (
	"context"
	"log/slog"
	"net"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/internal/wait"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/runtime"
)

// membership is this node in the gossip pool: it joins the peers, keeps
// finding those gossip gave up on, and keeps what this node gossips about
// itself (role, leader flag, in-Raft flag, state) true.
type membership struct {
	self  gossip.Meta // what never changes: identity, capacity, ports
	join  []string
	rep   *replica
	fence *fence
	sup   *runtime.Supervisor // set by Node.startRuntime, before gossip starts
	log   *slog.Logger

	mu   sync.Mutex // serializes metadata updates; guards last
	last gossip.Meta
}

// rejoinEvery is how often a peer tries to reach peers gossip gave up on.
const rejoinEvery = 5 * time.Second

// joinLoop joins the configured peers, retrying until one answers (as
// Consul's retry-join does). Then, every rejoinEvery, it re-joins peers
// gossip declared dead: memberlist alone heals only partitions shorter than
// its gossip-to-the-dead time (about 30 s), as serf's reconnect does.
func (m *membership) joinLoop(ctx context.Context) {
	m.joinSeeds(ctx)
	g := m.rep.dir.g
	for wait.Sleep(ctx, rejoinEvery) {
		var addrs []string
		for _, mm := range g.Members() {
			if mm.State == gossip.MemberDead && mm.Addr != "" {
				addrs = append(addrs, net.JoinHostPort(mm.Addr, strconv.Itoa(mm.Port)))
			}
		}
		if len(addrs) > 0 {
			if got, err := g.Join(addrs); got > 0 {
				m.log.Info("re-joined peers gossip had declared dead", "contacted", got, "err", err)
			}
		}
	}
}

func (m *membership) joinSeeds(ctx context.Context) {
	if len(m.join) == 0 {
		return
	}
	for attempt := 0; ; attempt++ {
		got, err := m.rep.dir.g.Join(m.join)
		if err == nil && got > 0 {
			m.log.Info("joined the gossip pool", "contacted", got)
			return
		}
		if attempt%10 == 0 {
			m.log.Warn("join: no peer answered yet; retrying", "join", m.join, "err", err)
		}
		if !wait.Sleep(ctx, 500*time.Millisecond) {
			return
		}
	}
}

// meta is what this node gossips about itself now.
func (m *membership) meta() gossip.Meta {
	md := m.self
	md.State, md.Role = string(fsm.NodeAlive), api.RoleMember
	if m.sup != nil {
		md.Modes = m.sup.Modes()
	}
	if m.rep.raft == nil {
		return md
	}
	md.Role = roleOf(m.rep.name, m.rep.servers())
	md.Leader = m.rep.isLeader()
	if s, ok := m.rep.localServers(); ok && len(s) > 0 {
		md.InRaft = true
	}
	if rec, ok := m.rep.view().Node(m.rep.name); ok && (rec.State == fsm.NodeDoomed || rec.State == fsm.NodeDraining) {
		md.State, md.Deadline = string(rec.State), rec.Deadline
	}
	if d := m.fence.noticeDeadline(); !d.IsZero() { // a notice came: say so before Raft does
		md.State, md.Deadline = string(fsm.NodeDoomed), d
	}
	return md
}

// metaLoop keeps this node's gossiped metadata true.
func (m *membership) metaLoop(ctx context.Context) {
	for wait.Sleep(ctx, 100*time.Millisecond) {
		m.push()
	}
}

// push gossips this node's metadata now if it changed.
func (m *membership) push() {
	m.mu.Lock()
	defer m.mu.Unlock()
	md := m.meta()
	if metaEqual(md, m.last) || m.rep.dir.g == nil {
		return
	}
	if err := m.rep.dir.g.UpdateMeta(md); err != nil {
		m.log.Warn("gossip metadata not updated", "err", err)
		return
	}
	m.last = md
}

func metaEqual(a, b gossip.Meta) bool {
	ea, err1 := a.Encode()
	eb, err2 := b.Encode()
	return err1 == nil && err2 == nil && string(ea) == string(eb)
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

// startGossip opens the memberlist with this node's metadata; joinLoop
// finds the peers.
func (n *Node) startGossip() error {
	gc := gossip.DefaultConfig()
	gc.Name = n.cfg.Name
	gc.BindAddr = n.cfg.BindAddr
	gc.BindPort = n.cfg.GossipPort
	gc.AdvertiseAddr = n.addr
	gc.AdvertisePort = n.cfg.GossipPort
	keys, err := n.keys.load(n.cfg)
	if err != nil {
		return err
	}
	gc.Keys = keys
	gc.Logger = n.log.With("part", "gossip")
	if n.cfg.Gossip.Probe > 0 {
		gc.ProbeInterval = n.cfg.Gossip.Probe
	}
	if n.cfg.Gossip.ProbeTimeout > 0 {
		gc.ProbeTimeout = n.cfg.Gossip.ProbeTimeout
	}
	if n.cfg.Gossip.Interval > 0 {
		gc.GossipInterval = n.cfg.Gossip.Interval
	}
	if n.cfg.Gossip.SuspicionMult > 0 {
		gc.SuspicionMult = n.cfg.Gossip.SuspicionMult
	}
	if n.cfg.Net != nil {
		gc.Transport = n.cfg.Net.GossipTransport(net.JoinHostPort(n.addr, strconv.Itoa(n.cfg.GossipPort)))
	}
	n.self.self = gossip.Meta{
		Cloud: n.cfg.Cloud, Region: n.cfg.Region, Zone: n.cfg.Zone,
		InstanceID: n.cfg.InstanceID, InstanceType: n.cfg.InstanceType, Lifecycle: n.cfg.Lifecycle,
		MemoryMiB: n.cfg.Capacity.MemoryMiB, CPUMillis: n.cfg.Capacity.CPUMillis,
		Addr: n.addr, RaftPort: uint16(n.cfg.RaftPort), TransferPort: uint16(n.transferPort()),
		HTTPPort: uint16(n.cfg.HTTPPort), IngressPort: uint16(n.cfg.IngressPort),
	}
	meta := n.self.meta()
	g, err := gossip.New(gc, meta)
	if err != nil {
		return err
	}
	n.gossip, n.dir.g = g, g
	n.self.mu.Lock()
	n.self.last = meta
	n.self.mu.Unlock()
	return nil
}
