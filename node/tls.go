package node

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/transfer"
)

// raftALPN is the protocol Raft's TLS stream layer negotiates.
const raftALPN = "lifeboat-raft/1"

// tlsStreamLayer carries Raft over mutual TLS: both ends present a peer
// certificate of the cluster CA, and a connection without one fails its
// handshake before Raft reads a byte.
type tlsStreamLayer struct {
	net.Listener
	advertise net.Addr
	client    *tls.Config
}

var _ raft.StreamLayer = (*tlsStreamLayer)(nil)

// newTLSStreamLayer listens on bind and advertises adv.
func newTLSStreamLayer(bind string, adv net.Addr, id *transfer.Identity, log *slog.Logger) (*tlsStreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	return &tlsStreamLayer{
		Listener:  newHandshakeListener(ln, id.ServerTLS(raftALPN), log),
		advertise: adv,
		// Raft dials by address, not by name: any peer of the CA may answer.
		client: id.ClientTLS(raftALPN, ""),
	}, nil
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

// handshakeListener hands Raft only connections whose TLS handshake
// succeeded, so that a peer without a valid certificate never reaches it.
// Handshakes run concurrently, each bounded by handshakeTimeout, so a slow
// or hostile client cannot hold up the others.
type handshakeListener struct {
	net.Listener
	cfg   *tls.Config
	log   *slog.Logger
	ready chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

const handshakeTimeout = 5 * time.Second

func newHandshakeListener(ln net.Listener, cfg *tls.Config, log *slog.Logger) *handshakeListener {
	l := &handshakeListener{Listener: ln, cfg: cfg, log: log, ready: make(chan net.Conn), done: make(chan struct{})}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *handshakeListener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			l.once.Do(func() { close(l.done) })
			return
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

func (l *handshakeListener) handshake(c net.Conn) {
	defer l.wg.Done()
	tc := tls.Server(c, l.cfg)
	_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		l.log.Warn("raft connection refused", "remote", c.RemoteAddr().String(), "err", err)
		tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	select {
	case l.ready <- tc:
	case <-l.done:
		tc.Close()
	}
}

// Accept returns the next connection that passed its handshake.
func (l *handshakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, fmt.Errorf("raft listener closed: %w", net.ErrClosed)
	}
}

// Close stops accepting and waits for the handshakes in flight.
func (l *handshakeListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.done) })
	l.wg.Wait()
	return err
}
