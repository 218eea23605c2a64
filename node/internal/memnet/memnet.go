// Package memnet is the in-memory twin of every transport a lifeboat peer
// uses (node.Network): gossip packets and streams, the Raft transport and
// stores, and the peer HTTP calls. Tests only; the production binary never
// imports it.
package memnet

import (
	"github.com/lifeboat/lifeboat/node/peer"

	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
)

// Net is an in-memory network of peers. It can cut links between hosts
// (by advertise IP) to partition them, so that multi-peer logic runs in
// one process in milliseconds.
type Net struct {
	mu     sync.Mutex
	raft   map[string]*raft.InmemTransport // by "ip:port"
	gossip map[string]*memGossip           // by "ip:port"
	http   map[string]http.Handler         // by "ip:port"
	cut    map[[2]string]bool              // cut links between two IPs, both orders
	down   map[string]bool                 // hosts (IPs) that are down
	disks  map[string]memStores            // Raft stores by node name, kept across restarts
}

// memStores are a node's in-memory Raft stores; they outlive the node so
// that a restart "with the same data dir" finds its state again.
type memStores struct {
	logs  *raft.InmemStore
	snaps *raft.InmemSnapshotStore
}

// RaftStores returns the in-memory Raft stores of a node; they outlive
// the node, so that a restart "with the same data dir" finds its state.
func (n *Net) RaftStores(name string) (raft.LogStore, raft.StableStore, raft.SnapshotStore) {
	n.mu.Lock()
	defer n.mu.Unlock()
	st, ok := n.disks[name]
	if !ok {
		st = memStores{logs: raft.NewInmemStore(), snaps: raft.NewInmemSnapshotStore()}
		n.disks[name] = st
	}
	return st.logs, st.logs, st.snaps
}

// New returns an empty in-memory network.
func New() *Net {
	return &Net{
		raft:   map[string]*raft.InmemTransport{},
		gossip: map[string]*memGossip{},
		http:   map[string]http.Handler{},
		cut:    map[[2]string]bool{},
		down:   map[string]bool{},
		disks:  map[string]memStores{},
	}
}

// Cut severs the link between hosts a and b (advertise IPs) both ways.
func (n *Net) Cut(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[[2]string{a, b}] = true
	n.cut[[2]string{b, a}] = true
	n.syncRaftLocked()
}

// Heal restores every cut link.
func (n *Net) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[[2]string]bool{}
	n.syncRaftLocked()
}

// reachableLocked reports whether a packet from host a reaches host b.
func (n *Net) reachableLocked(a, b string) bool {
	return !n.down[a] && !n.down[b] && !n.cut[[2]string{a, b}]
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// syncRaftLocked connects every pair of reachable Raft transports and
// disconnects the rest.
func (n *Net) syncRaftLocked() {
	for a, ta := range n.raft {
		for b, tb := range n.raft {
			if a == b {
				continue
			}
			if n.reachableLocked(hostOf(a), hostOf(b)) {
				ta.Connect(raft.ServerAddress(b), tb)
			} else {
				ta.Disconnect(raft.ServerAddress(b))
			}
		}
	}
}

// RaftTransport registers and returns the Raft transport of addr.
func (n *Net) RaftTransport(addr string) raft.Transport {
	_, t := raft.NewInmemTransport(raft.ServerAddress(addr))
	n.mu.Lock()
	defer n.mu.Unlock()
	n.raft[addr] = t
	delete(n.down, hostOf(addr))
	n.syncRaftLocked()
	return t
}

// HostDown marks a host's transports gone (its node was closed or killed).
func (n *Net) HostDown(ip string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down[ip] = true
	for addr, t := range n.raft {
		if hostOf(addr) == ip {
			delete(n.raft, addr)
			t.DisconnectAll()
		}
	}
	for addr := range n.gossip {
		if hostOf(addr) == ip {
			delete(n.gossip, addr)
		}
	}
	for addr := range n.http {
		if hostOf(addr) == ip {
			delete(n.http, addr)
		}
	}
	n.syncRaftLocked()
}

// ServeHTTP registers the admin handler of addr.
func (n *Net) ServeHTTP(addr string, h http.Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.http[addr] = h
}

// RoundTripper returns an http.RoundTripper that delivers requests sent
// from host "from", the node name, to the registered handlers, as the
// peer endpoints' transport would: naming the caller (peer.WithCaller) as
// its certificate would. A request to a host that is down, cut off or
// unknown fails as a dial would: a *net.OpError "dial".
func (n *Net) RoundTripper(from, name string) http.RoundTripper {
	return memRoundTripper{net: n, from: from, name: name}
}

type memRoundTripper struct {
	net  *Net
	from string
	name string
}

func (rt memRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.net.mu.Lock()
	h, ok := rt.net.http[req.URL.Host]
	reach := rt.net.reachableLocked(rt.from, hostOf(req.URL.Host))
	rt.net.mu.Unlock()
	if !ok || !reach {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &net.OpError{Op: "dial", Net: "memnet", Source: memAddr(rt.from), Addr: memAddr(req.URL.Host),
			Err: fmt.Errorf("no route from %s", rt.from)}
	}
	rec := &memResponse{header: http.Header{}, code: http.StatusOK}
	h.ServeHTTP(rec, req.WithContext(peer.WithCaller(req.Context(), rt.name)))
	return &http.Response{
		StatusCode: rec.code, Status: strconv.Itoa(rec.code) + " " + http.StatusText(rec.code),
		Header: rec.header, Body: io.NopCloser(&rec.body), Request: req,
		ProtoMajor: 1, ProtoMinor: 1, ContentLength: int64(rec.body.Len()),
	}, nil
}

// memResponse records a handler's answer.
type memResponse struct {
	header http.Header
	code   int
	wrote  bool
	body   bytes.Buffer
}

func (r *memResponse) Header() http.Header { return r.header }
func (r *memResponse) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}
func (r *memResponse) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

// GossipTransport registers and returns the gossip transport of addr.
func (n *Net) GossipTransport(addr string) memberlist.NodeAwareTransport {
	t := &memGossip{net: n, addr: addr, packets: make(chan *memberlist.Packet, 1024),
		streams: make(chan net.Conn, 64), done: make(chan struct{})}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.gossip[addr] = t
	delete(n.down, hostOf(addr))
	return t
}

// memGossip is a memberlist transport over Net. Packets to an
// unreachable or full peer are dropped, as UDP would drop them; dials fail.
type memGossip struct {
	net     *Net
	addr    string
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
}

var _ memberlist.NodeAwareTransport = (*memGossip)(nil)

func (t *memGossip) peer(addr string) (*memGossip, bool) {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	p, ok := t.net.gossip[addr]
	if !ok || !t.net.reachableLocked(hostOf(t.addr), hostOf(addr)) {
		return nil, false
	}
	return p, true
}

func (t *memGossip) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	host, port, err := net.SplitHostPort(t.addr)
	if err != nil {
		return nil, 0, err
	}
	p, err := strconv.Atoi(port)
	return net.ParseIP(host), p, err
}

func (t *memGossip) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *memGossip) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	p, ok := t.peer(a.Addr)
	if !ok {
		return now, nil
	}
	pkt := &memberlist.Packet{Buf: append([]byte(nil), b...), From: memAddr(t.addr), Timestamp: now}
	select {
	case p.packets <- pkt:
	case <-p.done:
	default:
	}
	return now, nil
}

func (t *memGossip) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *memGossip) StreamCh() <-chan net.Conn           { return t.streams }

func (t *memGossip) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *memGossip) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	p, ok := t.peer(a.Addr)
	if !ok {
		return nil, fmt.Errorf("memnet: no route to %s", a.Addr)
	}
	c1, c2 := net.Pipe()
	select {
	case p.streams <- c1:
		return c2, nil
	case <-p.done:
	case <-time.After(timeout):
	}
	c1.Close()
	c2.Close()
	return nil, fmt.Errorf("memnet: dial %s timed out", a.Addr)
}

func (t *memGossip) Shutdown() error {
	t.once.Do(func() { close(t.done) })
	return nil
}

type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }
