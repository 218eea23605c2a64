package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// Networks a Server listens on and a Client dials.
const (
	// NetworkQUIC is QUIC over UDP with mutual TLS: the default.
	NetworkQUIC = "quic"
	// NetworkTCP is mutual TLS over TCP, the same protocol with one TCP
	// connection per stream: for where UDP is blocked.
	NetworkTCP = "tcp"
	// NetworkPlain is TCP without TLS: no authentication and no privacy.
	// It exists as a benchmark baseline only; never use it between
	// nodes.
	NetworkPlain = "tcp-plain"
)

// ServerConfig configures a Server.
type ServerConfig struct {
	// Network is NetworkQUIC, NetworkTCP or NetworkPlain.
	Network string
	// Addr is the host:port to listen on, when neither PacketConn nor
	// Listener is set.
	Addr string
	// PacketConn, for NetworkQUIC, is a UDP socket to serve on instead of
	// Addr (tests create one inside a network namespace). The server
	// owns it and closes it on Close.
	PacketConn net.PacketConn
	// Listener, for NetworkTCP and NetworkPlain, is what to accept on
	// instead of Addr; the server owns it and closes it on Close.
	Listener net.Listener
	// TLS is the server's TLS, Identity.ServerTLS(ALPN): it must require
	// and verify a client certificate. nil only with NetworkPlain.
	TLS *tls.Config
	// Store receives the checkpoints.
	Store *Store
	// Accept, if set, decides whether to take a checkpoint that the peer
	// named peer (from its verified certificate; "" with NetworkPlain)
	// offers; a non-nil error refuses it and is told to the client
	// (wrapped in ErrRefused; an error that wraps ErrInterrupted as well
	// tells the client to retry later). It is called from the offer's
	// own goroutine, once per attempt, before anything is written, and
	// may block for a while (it may consult Raft). nil accepts every
	// offer.
	Accept func(peer string, m *Manifest, digest string) error
	// Pages, if set, dials the local page server of checkpoint
	// (workload, seq) for a page relay that the peer named peer (from
	// its verified certificate; "" with NetworkPlain) asks for; the
	// server relays the stream to the connection it returns, and closes
	// that when the relay ends. A non-nil error refuses the relay and is
	// told to the client (wrapped in ErrRefused, as Accept's). It is
	// called from the stream's own goroutine and should not block for
	// long: Close waits for it. nil refuses every relay.
	Pages func(peer, workload string, seq uint64) (net.Conn, error)
	// Received, if set, is told of each checkpoint of workload that the
	// store holds sealed after an offer from peer (received, or there
	// already), once the client was told. It is called from the offer's
	// own goroutine and should return quickly.
	Received func(peer, workload string, seq uint64, digest string)
	// Logger receives the server's logs.
	Logger *slog.Logger
	// MaxSessions bounds the transfers received at once; an offer beyond
	// it is answered "busy", which the client retries.
	MaxSessions int
	// ResumeTTL is how long what an interrupted transfer received is
	// kept for a resume after it was last used.
	ResumeTTL time.Duration
	// IdleTimeout bounds every silence: a QUIC connection with no packet,
	// a stream with no frame, a transfer with no chunk. Keep-alives keep
	// a healthy connection from idling.
	IdleTimeout time.Duration
}

// DefaultServerConfig returns the defaults: QUIC, 16 sessions, a
// ten-minute resume TTL and a 30-second idle timeout. Set Addr (or
// PacketConn), TLS and Store.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		Network:     NetworkQUIC,
		Logger:      slog.New(slog.DiscardHandler),
		MaxSessions: 16,
		ResumeTTL:   10 * time.Minute,
		IdleTimeout: 30 * time.Second,
	}
}

// DefaultTestServerConfig is DefaultServerConfig with timeouts for tests,
// listening on 127.0.0.1, any port.
func DefaultTestServerConfig() ServerConfig {
	c := DefaultServerConfig()
	c.Addr = "127.0.0.1:0"
	c.ResumeTTL = time.Minute
	c.IdleTimeout = 5 * time.Second
	return c
}

// Validate reports the first setting that cannot work, by name.
func (c *ServerConfig) Validate() error {
	if err := validateNetwork(c.Network, c.TLS != nil); err != nil {
		return fmt.Errorf("transfer server: %w", err)
	}
	switch {
	case c.Addr == "" && c.PacketConn == nil && c.Listener == nil:
		return errors.New("transfer server: Addr is empty and there is no PacketConn or Listener")
	case c.PacketConn != nil && c.Network != NetworkQUIC:
		return fmt.Errorf("transfer server: PacketConn is for network %s, not %s", NetworkQUIC, c.Network)
	case c.Listener != nil && c.Network == NetworkQUIC:
		return fmt.Errorf("transfer server: Listener is for TCP networks, not %s", c.Network)
	case c.TLS != nil && c.TLS.ClientAuth != tls.RequireAnyClientCert && c.TLS.ClientAuth != tls.RequireAndVerifyClientCert:
		return errors.New("transfer server: TLS does not require a client certificate (use Identity.ServerTLS)")
	case c.Store == nil:
		return errors.New("transfer server: Store is nil")
	case c.Logger == nil:
		return errors.New("transfer server: Logger is nil")
	case c.MaxSessions < 1:
		return fmt.Errorf("transfer server: MaxSessions %d is less than 1", c.MaxSessions)
	case c.ResumeTTL <= 0:
		return fmt.Errorf("transfer server: ResumeTTL %v is not positive", c.ResumeTTL)
	case c.IdleTimeout < 100*time.Millisecond:
		return fmt.Errorf("transfer server: IdleTimeout %v is less than 100ms", c.IdleTimeout)
	}
	return nil
}

// validateNetwork checks a network name against whether TLS is set.
func validateNetwork(network string, hasTLS bool) error {
	switch network {
	case NetworkQUIC, NetworkTCP:
		if !hasTLS {
			return fmt.Errorf("network %s needs TLS", network)
		}
	case NetworkPlain:
		if hasTLS {
			return fmt.Errorf("network %s is without TLS, but TLS is set", network)
		}
	default:
		return fmt.Errorf("Network %q is none of %s, %s, %s", network, NetworkQUIC, NetworkTCP, NetworkPlain)
	}
	return nil
}

// Server receives checkpoints into a Store. It listens on one QUIC (or
// TCP) address; every connection authenticates with a client certificate
// of the cluster's CA; every offer runs as a session of its own.
type Server struct {
	cfg   ServerConfig
	log   *slog.Logger
	qconf *quic.Config
	tls   *tls.Config // cfg.TLS with ALPN, or nil

	ctx    context.Context // cancelled by Close, with errServerClosing
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // every goroutine the server starts

	mu       sync.Mutex // guards the fields below
	started  bool
	closed   bool
	tr       *quic.Transport
	qln      *quic.Listener
	tln      net.Listener
	byKey    map[string]*recvSession // live sessions by staging directory name
	byID     map[transferID]*recvSession
	conns    map[int]func() // closes each live connection
	nextConn int

	hooks serverHooks // set by tests before Start
}

// serverHooks let tests see inside; nil hooks are not called.
type serverHooks struct {
	// chunkWritten is called after each chunk from the network is
	// written, with the session's count so far, on a data stream's
	// goroutine.
	chunkWritten func(received int64)
}

var errServerClosing = fmt.Errorf("%w: the receiver is shutting down", ErrInterrupted)

// NewServer validates cfg and returns a server that listens once
// started.
func NewServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "transfer-server"), qconf: quicConfig(cfg.IdleTimeout),
		byKey: make(map[string]*recvSession), byID: make(map[transferID]*recvSession), conns: make(map[int]func())}
	if cfg.TLS != nil {
		s.tls = withALPN(cfg.TLS)
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	return s, nil
}

// Start listens and serves in the background until Close.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("transfer server: Start after Close")
	case s.started:
		return errors.New("transfer server: started twice")
	}
	var err error
	if s.cfg.Network == NetworkQUIC {
		err = s.listenQUICLocked()
	} else {
		err = s.listenTCPLocked()
	}
	if err != nil {
		return fmt.Errorf("transfer server: listen: %w", err)
	}
	s.started = true
	s.goLocked(s.gcLoop)
	s.log.Info("listening", "network", s.cfg.Network, "addr", s.addrLocked())
	return nil
}

func (s *Server) listenQUICLocked() error {
	pc := s.cfg.PacketConn
	if pc == nil {
		var err error
		if pc, err = net.ListenPacket("udp", s.cfg.Addr); err != nil {
			return err
		}
	}
	s.tr = &quic.Transport{Conn: pc}
	ln, err := s.tr.Listen(s.tls, s.qconf)
	if err != nil {
		s.tr.Close()
		pc.Close()
		return err
	}
	s.qln = ln
	s.goLocked(s.acceptQUIC)
	return nil
}

func (s *Server) listenTCPLocked() error {
	ln := s.cfg.Listener
	if ln == nil {
		var err error
		lc := net.ListenConfig{KeepAliveConfig: tcpKeepAlive}
		if ln, err = lc.Listen(context.Background(), "tcp", s.cfg.Addr); err != nil {
			return err
		}
	}
	s.tln = ln
	s.goLocked(s.acceptTCP)
	return nil
}

// Addr is the address the server listens on (nil before Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrLocked()
}

func (s *Server) addrLocked() net.Addr {
	switch {
	case s.qln != nil:
		return s.qln.Addr()
	case s.tln != nil:
		return s.tln.Addr()
	}
	return nil
}

// Close stops listening, breaks off every transfer (their clients see
// ErrInterrupted; what they sent stays for a resume), and waits for
// every goroutine of the server. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if !s.started { // the server owns what it was given
		if s.cfg.PacketConn != nil {
			s.cfg.PacketConn.Close()
		}
		if s.cfg.Listener != nil {
			s.cfg.Listener.Close()
		}
	}
	closers := make([]func(), 0, len(s.conns))
	for _, c := range s.conns {
		closers = append(closers, c)
	}
	s.mu.Unlock()

	s.cancel(errServerClosing)
	var errs []error
	if s.qln != nil {
		errs = append(errs, s.qln.Close())
	}
	for _, c := range closers {
		c()
	}
	if s.tr != nil {
		errs = append(errs, s.tr.Close(), s.tr.Conn.Close())
	}
	if s.tln != nil {
		errs = append(errs, s.tln.Close())
	}
	s.wg.Wait()
	var real []error
	for _, err := range errs {
		if err != nil && !errors.Is(err, net.ErrClosed) {
			real = append(real, err)
		}
	}
	if err := errors.Join(real...); err != nil {
		return fmt.Errorf("transfer server: close: %w", err)
	}
	return nil
}

// goLocked starts fn as a goroutine of the server; s.mu is held.
func (s *Server) goLocked(fn func()) bool {
	if s.closed {
		return false
	}
	s.wg.Go(fn)
	return true
}

// spawn starts fn as a goroutine of the server, unless it is closed.
func (s *Server) spawn(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.goLocked(fn)
}

// track registers a live connection for Close to close; it reports false
// (and the caller closes the connection) once the server is closed.
func (s *Server) track(closeConn func()) (untrack func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	id := s.nextConn
	s.nextConn++
	s.conns[id] = closeConn
	return func() {
		s.mu.Lock()
		delete(s.conns, id)
		s.mu.Unlock()
	}, true
}

// register adds a session, superseding a live one of the same
// checkpoint (whose sender is presumably gone).
func (s *Server) register(rs *recvSession) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errServerClosing
	}
	old := s.byKey[rs.key]
	if old == nil && len(s.byKey) >= s.cfg.MaxSessions {
		return fmt.Errorf("%w: the receiver is busy with %d transfers", ErrInterrupted, len(s.byKey))
	}
	if old != nil {
		old.fail(errSuperseded)
		delete(s.byID, old.id)
		rs.prev = old
	}
	s.byKey[rs.key] = rs
	s.byID[rs.id] = rs
	return nil
}

// unregister removes a session unless a newer one replaced it.
func (s *Server) unregister(rs *recvSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey[rs.key] == rs {
		delete(s.byKey, rs.key)
	}
	if s.byID[rs.id] == rs {
		delete(s.byID, rs.id)
	}
}

// session returns the live session id, or nil.
func (s *Server) session(id transferID) *recvSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[id]
}
