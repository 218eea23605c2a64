package node

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/node/peer"
	"github.com/lifeboat/lifeboat/transfer"
)

// raftALPN is the protocol Raft's TLS stream layer negotiates.
const raftALPN = "lifeboat-raft/1"

// tlsStreamLayer carries Raft over mutual TLS: both ends present a peer
// certificate of the cluster CA, and a connection without one fails its
// handshake before Raft reads a byte. The port is shared with the peer
// endpoints (peer.ALPN): the client's protocol decides where a connection
// goes.
type tlsStreamLayer struct {
	net.Listener
	advertise net.Addr
	client    *tls.Config
}

var _ raft.StreamLayer = (*tlsStreamLayer)(nil)

// newTLSStreamLayer listens on bind and advertises adv. The second
// listener it returns accepts the peer endpoints' connections, each a
// *peer.Conn naming its verified peer.
func newTLSStreamLayer(bind string, adv net.Addr, id *transfer.Identity, log *slog.Logger) (*tlsStreamLayer, net.Listener, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, nil, err
	}
	mux := newPortMux(ln, id.ServerTLS(raftALPN, peer.ALPN), log)
	return &tlsStreamLayer{
		Listener:  mux.sub(raftALPN),
		advertise: adv,
		// Raft dials by address, not by name: any peer of the CA may answer.
		client: id.ClientTLS(raftALPN, ""),
	}, mux.sub(peer.ALPN), nil
}

// Dial opens a mutually authenticated connection to a Raft peer.
func (l *tlsStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", string(addr), l.client)
	if err != nil {
		return nil, fmt.Errorf("raft dial %s: %w", addr, err)
	}
	return c, nil
}

// Addr is the advertised address.
func (l *tlsStreamLayer) Addr() net.Addr { return l.advertise }

// portMux hands out only connections whose TLS handshake succeeded, so
// that a peer without a valid certificate never reaches Raft or the peer
// endpoints, each to the listener of the protocol the client chose.
// Handshakes run concurrently, each bounded by handshakeTimeout, so a slow
// or hostile client cannot hold up the others. The port closes when every
// listener it handed out is closed.
type portMux struct {
	ln   net.Listener
	cfg  *tls.Config
	log  *slog.Logger
	mu   sync.Mutex
	subs map[string]*subListener
	open int
	wg   sync.WaitGroup
}

const handshakeTimeout = 5 * time.Second

func newPortMux(ln net.Listener, cfg *tls.Config, log *slog.Logger) *portMux {
	m := &portMux{ln: ln, cfg: cfg, log: log, subs: map[string]*subListener{}}
	m.wg.Add(1)
	go m.acceptLoop()
	return m
}

// sub returns the listener of protocol alpn; call it before any client
// can connect (newTLSStreamLayer does).
func (m *portMux) sub(alpn string) *subListener {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &subListener{mux: m, alpn: alpn, ready: make(chan net.Conn), done: make(chan struct{})}
	m.subs[alpn] = s
	m.open++
	return s
}

func (m *portMux) acceptLoop() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			m.mu.Lock()
			for _, s := range m.subs {
				s.once.Do(func() { close(s.done) })
			}
			m.mu.Unlock()
			return
		}
		m.wg.Add(1)
		go m.handshake(c)
	}
}

func (m *portMux) handshake(c net.Conn) {
	defer m.wg.Done()
	tc := tls.Server(c, m.cfg)
	_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		m.log.Warn("peer connection refused", "remote", c.RemoteAddr().String(), "err", err)
		tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	cs := tc.ConnectionState()
	m.mu.Lock()
	s := m.subs[cs.NegotiatedProtocol]
	m.mu.Unlock()
	if s == nil {
		m.log.Warn("peer connection refused", "remote", c.RemoteAddr().String(), "err", "no known protocol")
		tc.Close()
		return
	}
	var conn net.Conn = tc
	if s.alpn == peer.ALPN {
		name, _, err := transfer.PeerName(cs)
		if err != nil {
			tc.Close()
			return
		}
		conn = &peer.Conn{Conn: tc, Name: name}
	}
	select {
	case s.ready <- conn:
	case <-s.done:
		tc.Close()
	}
}

// closeSub closes the port once every listener is closed, and waits for
// the handshakes in flight.
func (m *portMux) closeSub() error {
	m.mu.Lock()
	m.open--
	last := m.open == 0
	m.mu.Unlock()
	if !last {
		return nil
	}
	err := m.ln.Close()
	m.wg.Wait()
	return err
}

// subListener is the port's listener of one protocol.
type subListener struct {
	mux   *portMux
	alpn  string
	ready chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// Accept returns the next connection of this protocol that passed its
// handshake.
func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, fmt.Errorf("%s listener closed: %w", l.alpn, net.ErrClosed)
	}
}

// Close stops this protocol's connections.
func (l *subListener) Close() error {
	closed := false
	l.once.Do(func() { close(l.done); closed = true })
	if !closed {
		return nil
	}
	return l.mux.closeSub()
}

// Addr is the port's address.
func (l *subListener) Addr() net.Addr { return l.mux.ln.Addr() }
