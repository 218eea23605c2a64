package node

import (
	"net"
	"strconv"

	"github.com/lifeboat/lifeboat/gossip"
)

// directory answers who the peers are and where to reach them, from
// gossip: the one place a peer's addresses are read from its gossiped
// metadata.
type directory struct {
	g *gossip.Gossip // set by Node.startGossip, before any loop runs; nil before
}

// members returns gossip's view of every peer ever seen, by name.
func (d *directory) members() map[string]gossip.Member {
	out := map[string]gossip.Member{}
	if d.g == nil {
		return out
	}
	for _, m := range d.g.Members() {
		out[m.Name] = m
	}
	return out
}

// addrOf is host:port of a peer's listener port (from its gossiped
// metadata), or "" when gossip knows no such address.
func (d *directory) addrOf(name string, port func(gossip.Meta) uint16) string {
	m, ok := d.members()[name]
	if !ok {
		return ""
	}
	return metaAddr(m, port)
}

// metaAddr is host:port of a member's listener port, or "".
func metaAddr(m gossip.Member, port func(gossip.Meta) uint16) string {
	p := port(m.Meta)
	if m.Meta.Addr == "" || p == 0 {
		return ""
	}
	return net.JoinHostPort(m.Meta.Addr, strconv.Itoa(int(p)))
}

// The ports a peer gossips, for addrOf.
func raftPort(m gossip.Meta) uint16     { return m.RaftPort }
func transferPort(m gossip.Meta) uint16 { return m.TransferPort }

// peerAddrOf is the address of a peer's endpoints (node/peer): its Raft
// port, where they share mutual TLS with Raft.
func (d *directory) peerAddrOf(name string) string { return d.addrOf(name, raftPort) }

// gossipedLeader is the live peer, other than except, that gossips that
// it leads; "" when none does.
func (d *directory) gossipedLeader(except string) string {
	if d.g == nil {
		return ""
	}
	for _, m := range d.g.Members() {
		if m.Meta.Leader && m.State == gossip.MemberAlive && m.Name != except {
			return m.Name
		}
	}
	return ""
}
