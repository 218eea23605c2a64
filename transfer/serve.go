package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// chunkFramePool holds buffers for one CHUNK frame, header included,
// shared by the data streams of both sides.
var chunkFramePool = sync.Pool{New: func() any {
	b := make([]byte, FrameHeaderSize+4+MaxChunkData)
	return &b
}}

// acceptQUIC accepts QUIC connections until Close.
func (s *Server) acceptQUIC() {
	for {
		conn, err := s.qln.Accept(s.ctx)
		if err != nil {
			return // closed
		}
		if !s.spawn(func() { s.serveQUICConn(conn) }) {
			conn.CloseWithError(quic.ApplicationErrorCode(codeInterrupted), errServerClosing.Error())
			return
		}
	}
}

// serveQUICConn serves the streams of one QUIC connection, each on a
// goroutine of its own, until the connection closes.
func (s *Server) serveQUICConn(conn *quic.Conn) {
	closeConn := func(err error) {
		conn.CloseWithError(quic.ApplicationErrorCode(codeOf(err)), newErrorMsg(err).message)
	}
	untrack, ok := s.track(func() { closeConn(errServerClosing) })
	if !ok {
		closeConn(errServerClosing)
		return
	}
	defer untrack()
	state := conn.ConnectionState()
	peer, err := s.peerOf(state.TLS)
	s.log.Debug("connection", "remote", conn.RemoteAddr(), "peer", peer, "gso", state.GSO)
	if err != nil {
		s.log.Warn("refused a connection", "remote", conn.RemoteAddr(), "err", err)
		closeConn(fmt.Errorf("%w: %w", ErrRefused, err))
		return
	}
	for {
		st, err := conn.AcceptStream(s.ctx)
		if err != nil {
			return // the connection closed, or the server did
		}
		if !s.spawn(func() { s.serveStream(quicStream{st}, peer) }) {
			quicStream{st}.Abort()
			return
		}
	}
}

// acceptTCP accepts TCP connections until Close.
func (s *Server) acceptTCP() {
	for {
		c, err := s.tln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept", "err", err)
			select { // e.g. out of file descriptors: pause, do not spin
			case <-s.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if !s.spawn(func() { s.serveTCPConn(c) }) {
			c.Close()
			return
		}
	}
}

// serveTCPConn serves one TCP connection, which carries one stream.
func (s *Server) serveTCPConn(c net.Conn) {
	untrack, ok := s.track(func() { c.Close() })
	if !ok {
		c.Close()
		return
	}
	defer untrack()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetKeepAliveConfig(tcpKeepAlive)
	}
	peer := ""
	if s.tls != nil {
		tc := tls.Server(c, s.tls)
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.IdleTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err == nil {
			peer, err = s.peerOf(tc.ConnectionState())
		}
		if err != nil {
			s.log.Warn("refused a connection", "remote", c.RemoteAddr(), "err", err)
			c.Close()
			return
		}
		c = tc
	}
	s.serveStream(netStream{c}, peer)
}

// peerOf is the name of the verified peer of a connection.
func (s *Server) peerOf(cs tls.ConnectionState) (string, error) {
	name, role, err := PeerName(cs)
	if err != nil {
		return "", err
	}
	if role != RolePeer {
		return "", fmt.Errorf("%w: %s holds a %s certificate, not a %s one", ErrUntrusted, name, role, RolePeer)
	}
	return name, nil
}

// serveStream serves one stream: a control stream opens with OFFER, a
// data stream with HELLO, a page relay with PAGES.
func (s *Server) serveStream(st stream, peer string) {
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
	t, p, err := ReadFrame(st, nil)
	switch {
	case err != nil:
		if errors.Is(err, ErrProtocol) {
			s.writeError(st, err)
		}
	case t == FrameOffer:
		s.serveOffer(st, peer, p)
	case t == FrameHello:
		s.serveData(st, peer, p)
	case t == FramePages:
		s.servePages(st, peer, p)
	default:
		s.writeError(st, fmt.Errorf("%w: a stream opens with OFFER, HELLO or PAGES, not %v", ErrProtocol, t))
	}
}

// serveOffer runs the session an OFFER opens on its control stream and
// answers DONE or ERROR.
func (s *Server) serveOffer(ctrl stream, peer string, p []byte) {
	start := time.Now()
	o, err := decodeOffer(p)
	var rs *recvSession
	if err == nil {
		rs, err = s.admit(peer, o)
	}
	if rs != nil {
		err = rs.run(ctrl)
		rs.end(err)
	}
	log := s.log.With("peer", peer, "checkpoint", fmt.Sprintf("%s#%d", o.workload, o.seq))
	if err != nil {
		log.Warn("transfer failed", "err", err, "resumable", errors.Is(err, ErrInterrupted))
		s.writeError(ctrl, err)
		return
	}
	var received int64
	if rs != nil {
		received = rs.received.Load()
	}
	log.Info("checkpoint received", "digest", o.digest, "chunks_received", received, "took", time.Since(start).Round(time.Millisecond))
	ctrl.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
	if err := WriteFrame(ctrl, FrameDone, appendDone(nil, o.digest)); err == nil {
		ctrl.CloseWrite()
	}
	if s.cfg.Received != nil {
		s.cfg.Received(peer, o.workload, o.seq, o.digest)
	}
}

// serveData feeds the chunks of a data stream to the session its HELLO
// names, until the client ends the stream.
func (s *Server) serveData(st stream, peer string, p []byte) {
	id, err := decodeHello(p)
	if err != nil {
		s.writeError(st, err)
		return
	}
	rs := s.session(id)
	switch {
	case rs == nil:
		s.writeError(st, fmt.Errorf("%w: no transfer %s here: it ended or another took over", ErrInterrupted, id))
		return
	case rs.peer != peer:
		s.writeError(st, fmt.Errorf("%w: transfer %s is %s's, not %s's", ErrRefused, id, rs.peer, peer))
		return
	case !rs.addStream(st):
		s.writeError(st, fmt.Errorf("%w: transfer %s is over", ErrInterrupted, id))
		return
	}
	defer rs.removeStream(st)
	bp := chunkFramePool.Get().(*[]byte)
	defer chunkFramePool.Put(bp)
	for {
		st.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		t, p, err := ReadFrame(st, *bp)
		switch {
		case err == io.EOF:
			st.CloseWrite()
			return
		case err != nil:
			rs.fail(streamError("data stream", err))
			return
		case t == FrameChunk:
			g, data, err := decodeChunk(p)
			if err == nil {
				err = rs.put(g, data)
			}
			if errors.Is(err, errSessionOver) {
				return
			}
			if err != nil {
				rs.fail(err)
				return
			}
		case t&FrameIgnorable == 0:
			rs.fail(fmt.Errorf("%w: %v on a data stream", ErrProtocol, t))
			return
		}
	}
}

// writeError tells the client why on st, as well as it can, and ends
// what the server sends on it.
func (s *Server) writeError(st stream, err error) {
	e := newErrorMsg(err)
	st.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
	if WriteFrame(st, FrameError, e.append(nil)) == nil {
		st.CloseWrite()
	}
}
