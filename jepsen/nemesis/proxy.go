package nemesis

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds of one relayed direction: at most queueChunks reads of at most
// chunkSize bytes wait for their time (2 MiB). When the queue is full the
// proxy stops reading, so the sender's TCP window closes (backpressure).
const (
	chunkSize   = 16 << 10
	queueChunks = 128
	dialTimeout = 5 * time.Second
)

// errProxyClosed is returned by serve after Close.
var errProxyClosed = errors.New("nemesis: delay proxy closed")

// delayProxy relays TCP connections to where they were going, holding
// every chunk it reads for delay (plus a random 0..jitter) before writing
// it on. Chunks never overtake each other: each is written at the later
// of its due time and the previous write. It dials from the harness's
// own namespace. Its methods are safe for concurrent use.
type delayProxy struct {
	delay, jitter time.Duration
	// dest is where an accepted connection was going (originalDst in
	// the real path; tests supply it).
	dest func(*net.TCPConn) (netip.AddrPort, error)
	// allow reports whether the proxy may relay to dst; it refuses
	// (closes) every other connection.
	allow func(dst netip.AddrPort) bool
	log   *slog.Logger

	ctx     context.Context // ended by Close: aborts dials in progress
	cancel  context.CancelFunc
	wg      sync.WaitGroup // every goroutine the proxy starts
	relayed atomic.Int64   // connections relayed so far

	mu     sync.Mutex // guards closed, lns and conns
	closed bool
	lns    []net.Listener
	conns  map[net.Conn]struct{} // open accepted and dialled connections
}

func newDelayProxy(delay, jitter time.Duration, dest func(*net.TCPConn) (netip.AddrPort, error), allow func(netip.AddrPort) bool, log *slog.Logger) *delayProxy {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &delayProxy{delay: delay, jitter: jitter, dest: dest, allow: allow, log: log,
		ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
}

// serve relays the connections ln accepts until Close, which also
// closes ln. After Close it closes ln and returns errProxyClosed.
func (p *delayProxy) serve(ln net.Listener) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.Join(errProxyClosed, ln.Close())
	}
	p.lns = append(p.lns, ln)
	p.wg.Add(1)
	go p.acceptLoop(ln)
	return nil
}

// Close stops every listener, closes every relayed connection and waits
// until all the proxy's goroutines have ended. It is idempotent.
func (p *delayProxy) Close() error {
	p.mu.Lock()
	var errs []error
	if !p.closed {
		p.closed = true
		p.cancel()
		for _, ln := range p.lns {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		for c := range p.conns {
			_ = c.Close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
	return errors.Join(errs...)
}

// track registers c for Close; false (and c is not registered) once
// closed.
func (p *delayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// release unregisters and closes c.
func (p *delayProxy) release(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *delayProxy) acceptLoop(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			p.log.Warn("delay proxy: accept", "err", err)
			select { // a transient error (EMFILE, …): do not spin
			case <-p.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if !p.track(c) {
			_ = c.Close()
			return
		}
		p.wg.Add(1) // this goroutine holds a count: Wait cannot have returned
		go p.handle(c)
	}
}

// handle relays one accepted connection to its destination.
func (p *delayProxy) handle(c net.Conn) {
	defer p.wg.Done()
	defer p.release(c)
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	dst, err := p.dest(tc)
	if err != nil {
		p.log.Warn("delay proxy: no destination", "remote", c.RemoteAddr(), "err", err)
		return
	}
	if !p.allow(dst) {
		p.log.Warn("delay proxy: refused", "remote", c.RemoteAddr(), "dst", dst)
		return
	}
	d := net.Dialer{Timeout: dialTimeout}
	up, err := d.DialContext(p.ctx, "tcp4", dst.String())
	if err != nil {
		p.log.Debug("delay proxy: dial", "dst", dst, "err", err)
		return
	}
	if !p.track(up) {
		_ = up.Close()
		return
	}
	defer p.release(up)
	p.relayed.Add(1)
	p.relay(c, up)
}

// relay copies both ways until both directions have ended or one
// failed; a failure closes both connections.
func (p *delayProxy) relay(a, b net.Conn) {
	stop := make(chan struct{})
	var once sync.Once
	abort := func() {
		once.Do(func() {
			close(stop)
			_ = a.Close()
			_ = b.Close()
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.pipe(b, a, stop, abort)
	}()
	p.pipe(a, b, stop, abort)
	<-done
}

// chunk is bytes read and when they are due at the other side.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, each chunk held until it is due.
func (p *delayProxy) pipe(src, dst net.Conn, stop <-chan struct{}, abort func()) {
	q := make(chan chunk, queueChunks)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.read(src, q, stop, abort)
	}()
	p.write(dst, q, stop, abort)
	<-done
}

// read queues what src sends and closes q at its end (EOF); any other
// error aborts the connection pair.
func (p *delayProxy) read(src net.Conn, q chan<- chunk, stop <-chan struct{}, abort func()) {
	defer close(q)
	buf := make([]byte, chunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			c := chunk{data: bytes.Clone(buf[:n]), due: time.Now().Add(p.delay + p.jitterOnce())}
			select {
			case q <- c:
			case <-stop:
				return
			}
		}
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			abort()
			return
		}
	}
}

// write writes each queued chunk to dst once it is due; after q closes
// (src's EOF) it passes the EOF on with a half-close.
func (p *delayProxy) write(dst net.Conn, q <-chan chunk, stop <-chan struct{}, abort func()) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for c := range q {
		if wait := time.Until(c.due); wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
		if _, err := dst.Write(c.data); err != nil {
			abort()
			return
		}
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); !ok || cw.CloseWrite() != nil {
		abort()
	}
}

func (p *delayProxy) jitterOnce() time.Duration {
	if p.jitter <= 0 {
		return 0
	}
	return rand.N(p.jitter + 1)
}

// originalDst is where c was going before a DNAT rule in c's namespace
// sent it to the proxy (SO_ORIGINAL_DST; IPv4 only). The conntrack entry
// is looked up in the namespace of c's socket, so the listener must live
// in the namespace whose rule rewrote the destination.
func originalDst(c *net.TCPConn) (netip.AddrPort, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("nemesis: original destination: %w", err)
	}
	var mreq *unix.IPv6Mreq // 20 bytes: large enough for a sockaddr_in
	var serr error
	if err := raw.Control(func(fd uintptr) {
		mreq, serr = unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
	}); err != nil {
		return netip.AddrPort{}, fmt.Errorf("nemesis: original destination: %w", err)
	}
	if serr != nil {
		return netip.AddrPort{}, fmt.Errorf("nemesis: original destination (SO_ORIGINAL_DST): %w", serr)
	}
	b := mreq.Multiaddr[:] // struct sockaddr_in: family, port, address
	if fam := binary.NativeEndian.Uint16(b[0:2]); fam != unix.AF_INET {
		return netip.AddrPort{}, fmt.Errorf("nemesis: original destination: address family %d, want AF_INET", fam)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:4])), nil
}
