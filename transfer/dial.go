package transfer

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"

	"github.com/quic-go/quic-go"
)

// link is a client's connection to a server, over which it opens
// streams. close is idempotent and unblocks every stream.
type link interface {
	open(ctx context.Context) (stream, error)
	close()
}

// dial connects to the server at addr.
func (c *Client) dial(ctx context.Context, addr, peerName string) (link, error) {
	if c.cfg.Network != NetworkQUIC {
		return &tcpLink{c: c, addr: addr, peer: peerName}, nil
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	var pc net.PacketConn
	if c.cfg.ListenPacket != nil {
		pc, err = c.cfg.ListenPacket()
	} else {
		pc, err = net.ListenUDP("udp", nil)
	}
	if err != nil {
		return nil, fmt.Errorf("UDP socket: %w", err)
	}
	tr := &quic.Transport{Conn: pc}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	conn, err := tr.Dial(dctx, ua, withALPN(c.cfg.TLS(peerName)), quicConfig(c.cfg.IdleTimeout))
	if err != nil {
		tr.Close()
		pc.Close()
		return nil, err
	}
	return &quicLink{pc: pc, tr: tr, conn: conn}, nil
}

// quicLink is one QUIC connection on a socket of its own.
type quicLink struct {
	pc   net.PacketConn
	tr   *quic.Transport
	conn *quic.Conn
	once sync.Once
}

func (l *quicLink) open(ctx context.Context) (stream, error) {
	s, err := l.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return quicStream{s}, nil
}

func (l *quicLink) close() {
	l.once.Do(func() {
		l.conn.CloseWithError(0, "")
		l.tr.Close()
		l.pc.Close()
	})
}

// tcpLink opens every stream as a TCP connection of its own, with TLS
// unless the network is NetworkPlain.
type tcpLink struct {
	c          *Client
	addr, peer string

	mu     sync.Mutex // guards conns and closed
	conns  []net.Conn
	closed bool
}

func (l *tcpLink) open(ctx context.Context) (stream, error) {
	ctx, cancel := context.WithTimeout(ctx, l.c.cfg.DialTimeout)
	defer cancel()
	var conn net.Conn
	var err error
	if l.c.cfg.DialTCP != nil {
		conn, err = l.c.cfg.DialTCP(ctx, l.addr)
	} else {
		d := net.Dialer{KeepAliveConfig: tcpKeepAlive}
		conn, err = d.DialContext(ctx, "tcp", l.addr)
	}
	if err != nil {
		return nil, err
	}
	if !l.add(conn) {
		return nil, net.ErrClosed
	}
	if l.c.cfg.TLS != nil {
		tc := tls.Client(conn, withALPN(l.c.cfg.TLS(l.peer)))
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		conn = tc
	}
	return netStream{conn}, nil
}

// add registers conn for close, or closes it if the link is closed.
func (l *tcpLink) add(conn net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		conn.Close()
		return false
	}
	l.conns = append(l.conns, conn)
	return true
}

func (l *tcpLink) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}
