package transfer

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// A page relay carries the lazy pages of a checkpoint: CRIU's lazy-pages
// daemon on the node that restores a process reaches the page server of
// the frozen process on the node that dumped it, through the transfer
// protocol's authenticated connection instead of a TCP port of its own.
//
//  1. The client opens a stream and sends PAGES: the checkpoint's
//     workload and seq.
//  2. The server asks ServerConfig.Pages for a connection to the local
//     page server of that checkpoint and answers PAGES with an empty
//     payload once it has one, or ERROR (refused without a Pages hook).
//  3. From then on the stream carries raw bytes both ways, relayed to
//     and from the page server. Each side that reads the end of what it
//     relays ends what it writes on the other; the relay is over when
//     both directions are, or either fails, and the server then closes
//     the page server's connection and the stream.
//
//	PAGES  u16 len, workload | u64 seq  (client → server)
//	PAGES  empty                        (server → client: connected)

// pages is PAGES: the checkpoint whose page server to relay to.
type pages struct {
	workload string
	seq      uint64
}

func (m *pages) append(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(m.workload)))
	dst = append(dst, m.workload...)
	return binary.BigEndian.AppendUint64(dst, m.seq)
}

func (m *pages) name() string { return fmt.Sprintf("%s#%d", m.workload, m.seq) }

func decodePages(p []byte) (pages, error) {
	var m pages
	if len(p) < 2 {
		return m, protoErr("PAGES", "%d bytes, too short", len(p))
	}
	n := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	if len(p) != n+8 {
		return m, protoErr("PAGES", "%d bytes after a workload of %d, want %d", len(p), n, n+8)
	}
	m.workload = string(p[:n])
	if err := ValidateWorkload(m.workload); err != nil {
		return m, protoErr("PAGES", "%v", err)
	}
	m.seq = binary.BigEndian.Uint64(p[n:])
	return m, nil
}

// servePages connects a PAGES stream to the local page server and
// relays until either side ends, Close included.
func (s *Server) servePages(st stream, peer string, p []byte) {
	m, err := decodePages(p)
	if err != nil {
		s.writeError(st, err)
		return
	}
	log := s.log.With("peer", peer, "checkpoint", m.name())
	local, err := s.dialPages(peer, m)
	if err != nil {
		log.Warn("page relay refused", "err", err)
		s.writeError(st, err)
		return
	}
	defer local.Close()
	st.SetReadDeadline(time.Time{})
	st.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
	if err := WriteFrame(st, FramePages, nil); err != nil {
		log.Warn("page relay: ack", "err", err)
		return
	}
	st.SetWriteDeadline(time.Time{}) // a restored process may not fault for a long while
	log.Debug("page relay open", "local", local.RemoteAddr())
	start := time.Now()
	err = relay(s.ctx, st, local)
	log.Debug("page relay ended", "err", err, "took", time.Since(start).Round(time.Millisecond))
}

// dialPages asks the Pages hook for the page server of m.
func (s *Server) dialPages(peer string, m pages) (net.Conn, error) {
	if s.cfg.Pages == nil {
		return nil, fmt.Errorf("%w: page relay of %s: this node relays no page servers", ErrRefused, m.name())
	}
	c, err := s.cfg.Pages(peer, m.workload, m.seq)
	if err != nil {
		return nil, fmt.Errorf("%w: page relay of %s for %s: %w", ErrRefused, m.name(), peer, err)
	}
	if c == nil {
		return nil, fmt.Errorf("page relay of %s: the Pages hook returned no connection", m.name())
	}
	return c, nil
}

// relay copies st to local and local to st until both directions have
// ended, either fails or ctx ends; on a failure it aborts st and closes
// local, and it returns once both copies have stopped. The caller closes
// st (and may close local again).
func relay(ctx context.Context, st stream, local net.Conn) error {
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errc <- pipe(local, st, func() error { return closeWrite(local) }) })
	wg.Go(func() { errc <- pipe(st, local, st.CloseWrite) })
	err := awaitPipes(ctx, errc)
	if err != nil {
		st.Abort()
	}
	local.Close()
	wg.Wait()
	return err
}

// awaitPipes waits for both of relay's copies, and returns the first
// error of either, or ctx's cause if ctx ends first.
func awaitPipes(ctx context.Context, errc <-chan error) error {
	for range 2 {
		select {
		case err := <-errc:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// pipe copies src to dst until src ends, then ends what dst is sent.
func pipe(dst io.Writer, src io.Reader, closeWrite func() error) error {
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	return closeWrite()
}

// closeWrite ends what is sent on c; a connection that cannot half-close
// is closed, which ends the relay.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// OpenPages opens a page relay to the page server of checkpoint
// (workload, seq) behind the Server at addr, whose certificate must name
// peerName (any peer of the CA if peerName is empty). ctx bounds the
// opening only: once the server has connected, the relay lasts until it
// is closed, however long it stays idle.
//
// The bytes written are the page server's to read, and what it writes
// is read. The returned value also has CloseWrite() error, which ends
// what is written (the page server reads EOF) while reading goes on;
// Close drops the stream and its connection at once, with anything not
// yet delivered. Errors wrap ErrRefused (the server has no page server
// for the checkpoint, or relays none), ErrUntrusted, ErrProtocol,
// ErrReceiver or ErrInterrupted, like Send's.
func (c *Client) OpenPages(ctx context.Context, addr, peerName, workload string, seq uint64) (io.ReadWriteCloser, error) {
	m := pages{workload: workload, seq: seq}
	if err := ValidateWorkload(workload); err != nil {
		return nil, fmt.Errorf("open page relay of %s at %s: %w", m.name(), addr, err)
	}
	pc, err := c.openPages(ctx, addr, peerName, m)
	if err != nil {
		return nil, fmt.Errorf("open page relay of %s at %s: %w", m.name(), addr, err)
	}
	return pc, nil
}

// openPages dials, sends PAGES and waits for the ack, all of it ended
// by ctx.
func (c *Client) openPages(ctx context.Context, addr, peerName string, m pages) (*pagesConn, error) {
	l, err := c.dial(ctx, addr, peerName)
	if err != nil {
		return nil, c.failure(ctx, fmt.Errorf("dial: %w", err))
	}
	stop := context.AfterFunc(ctx, l.close)
	st, err := c.pagesHandshake(ctx, l, peerName, m)
	if !stop() {
		l.close() // returns once the AfterFunc's close has
		return nil, c.failure(ctx, ctx.Err())
	}
	if err != nil {
		l.close()
		return nil, err
	}
	return &pagesConn{st: st, l: l}, nil
}

// pagesHandshake opens the stream of a page relay on l and returns it
// once the server has acked PAGES, with no deadlines left on it.
func (c *Client) pagesHandshake(ctx context.Context, l link, peerName string, m pages) (stream, error) {
	st, err := l.open(ctx)
	if err != nil {
		return nil, c.failure(ctx, fmt.Errorf("open stream: %w", err))
	}
	st.SetWriteDeadline(time.Now().Add(c.cfg.IdleTimeout))
	if err := WriteFrame(st, FramePages, m.append(nil)); err != nil {
		return nil, c.failure(ctx, fmt.Errorf("send PAGES: %w", err))
	}
	st.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
	t, p, err := readMessage(st)
	switch {
	case err != nil:
		return nil, c.failure(ctx, fmt.Errorf("read the answer to PAGES: %w", err))
	case t == FrameError:
		return nil, finalAnswer(t, p, peerName, "")
	case t != FramePages || len(p) != 0:
		return nil, fmt.Errorf("%w: %v of %d bytes in answer to PAGES", ErrProtocol, t, len(p))
	}
	st.SetReadDeadline(time.Time{})
	st.SetWriteDeadline(time.Time{})
	return st, nil
}

// pagesConn is the client's end of a page relay: its stream, and the
// link that carries only it.
type pagesConn struct {
	st   stream
	l    link
	once sync.Once
}

var _ io.ReadWriteCloser = (*pagesConn)(nil)

func (p *pagesConn) Read(b []byte) (int, error)  { return p.st.Read(b) }
func (p *pagesConn) Write(b []byte) (int, error) { return p.st.Write(b) }

// CloseWrite ends what is written: the page server reads EOF.
func (p *pagesConn) CloseWrite() error { return p.st.CloseWrite() }

// Close drops the stream and its connection; it is idempotent.
func (p *pagesConn) Close() error {
	p.once.Do(func() {
		p.st.Close()
		p.l.close()
	})
	return nil
}
