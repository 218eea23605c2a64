// Package gossiptest is the in-memory twin of the network for gossip: a
// Network of memberlist transports that deliver packets and streams inside
// one process, and that can be partitioned. Pass a Transport as
// gossip.Config.Transport.
//
// Use it instead of memberlist.MockNetwork, which delivers on unbuffered
// channels: two nodes answering each other's pings from their packet
// listeners then block each other forever, a node that shut down blocks
// every sender, and its maps are unlocked, so adding a transport while
// others run is a data race.
package gossiptest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Port is the port of every transport; each has its own IP (10.x.y.z).
const Port = 7946

const (
	packetBuffer = 1024 // packets queued per transport before drops, like a socket buffer
	streamBuffer = 64   // pending stream connections per transport, like a listen backlog
)

// ErrUnreachable is returned by dials to a transport that is shut down,
// unknown or on the other side of a partition.
var ErrUnreachable = errors.New("gossiptest: unreachable")

// Network connects the transports it made. The zero value is ready to
// use; all methods are safe for concurrent use.
type Network struct {
	mu     sync.Mutex
	byAddr map[string]*Transport // guarded by mu
	group  map[string]int        // guarded by mu: node name → partition group
	count  int                   // guarded by mu
}

// NewTransport returns a transport for the node called name, with a fresh
// address. Packets sent to an unreachable or overloaded node are lost, as
// with UDP; stream dials to it fail at once.
func (n *Network) NewTransport(name string) *Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byAddr == nil {
		n.byAddr = make(map[string]*Transport)
	}
	n.count++
	ip := netip.AddrFrom4([4]byte{10, byte(n.count >> 16), byte(n.count >> 8), byte(n.count)})
	t := &Transport{
		net:     n,
		name:    name,
		addr:    &net.UDPAddr{IP: ip.AsSlice(), Port: Port},
		packets: make(chan *memberlist.Packet, packetBuffer),
		streams: make(chan net.Conn, streamBuffer),
	}
	n.byAddr[t.addr.String()] = t
	return t
}

// Partition splits the network: nodes named in different groups cannot
// reach each other; nodes not named reach everyone. It replaces any
// earlier partition.
func (n *Network) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = make(map[string]int)
	for i, g := range groups {
		for _, name := range g {
			n.group[name] = i
		}
	}
}

// Heal removes the partition.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = nil
}

// reachLocked returns the live transport at addr if from can reach it.
func (n *Network) reachLocked(from *Transport, addr string) (*Transport, bool) {
	to, ok := n.byAddr[addr]
	if !ok || to.down || from.down {
		return nil, false
	}
	gf, okf := n.group[from.name]
	gt, okt := n.group[to.name]
	if okf && okt && gf != gt {
		return nil, false
	}
	return to, true
}

// Transport is one node's end of a Network; it implements
// memberlist.NodeAwareTransport.
type Transport struct {
	net     *Network
	name    string
	addr    *net.UDPAddr
	packets chan *memberlist.Packet
	streams chan net.Conn
	down    bool // guarded by net.mu
}

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

// Addr returns the "ip:port" other nodes reach this transport at.
func (t *Transport) Addr() string { return t.addr.String() }

// FinalAdvertiseAddr returns the transport's own address, whatever is asked.
func (t *Transport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.addr.IP, t.addr.Port, nil
}

// WriteTo sends a packet to addr.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends a packet; like UDP it never blocks and never fails:
// a packet that cannot be delivered is lost.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	t.net.mu.Lock()
	to, ok := t.net.reachLocked(t, a.Addr)
	t.net.mu.Unlock()
	if !ok {
		return now, nil
	}
	select {
	case to.packets <- &memberlist.Packet{Buf: bytes.Clone(b), From: t.addr, Timestamp: now}:
	default: // receive buffer full: dropped
	}
	return now, nil
}

// PacketCh returns the packets sent to this transport.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// DialTimeout opens a stream to addr.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream to a.Addr (a.Name is ignored: the
// network routes by address), or fails at once when it is unreachable.
func (t *Transport) DialAddressTimeout(a memberlist.Address, _ time.Duration) (net.Conn, error) {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	to, ok := t.net.reachLocked(t, a.Addr)
	if !ok {
		return nil, fmt.Errorf("%w: %s from %s", ErrUnreachable, a.Addr, t.addr)
	}
	local, remote := net.Pipe()
	select {
	case to.streams <- &conn{Conn: remote, local: to.addr, remote: t.addr}:
		return &conn{Conn: local, local: t.addr, remote: to.addr}, nil
	default:
		local.Close()
		remote.Close()
		return nil, fmt.Errorf("%w: %s: backlog full", ErrUnreachable, a.Addr)
	}
}

// StreamCh returns the streams opened to this transport.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown takes the transport off the network: it is unreachable from
// then on, as a host that is gone, and pending streams are closed.
func (t *Transport) Shutdown() error {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	t.down = true
	for {
		select {
		case c := <-t.streams:
			c.Close()
		default:
			return nil
		}
	}
}

// conn is a pipe end with network addresses.
type conn struct {
	net.Conn
	local, remote net.Addr
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }
