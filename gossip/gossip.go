// Package gossip keeps lifeboat peers aware of each other: a thin layer over
// hashicorp/memberlist (SWIM with Lifeguard) that gossips each node's
// metadata (Meta: cloud, zone, capacity, ports, state such as doomed with
// its deadline, Raft role), reports membership changes as Events, remembers
// every member ever seen in Members, and manages the encryption keyring.
//
// Concurrency: all exported methods of Gossip are safe for concurrent use.
// memberlist calls this package back from its own goroutines; those
// callbacks never block (events go to a buffered channel and are dropped,
// and counted, when it is full).
package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

var (
	// ErrClosed is returned by operations on a closed Gossip.
	ErrClosed = errors.New("gossip: closed")
	// ErrLeft is returned by UpdateMeta after Leave.
	ErrLeft = errors.New("gossip: this node has left the cluster")
)

// Gossip is one node's membership in the gossip pool.
//
// Goroutines: the caller's goroutine runs New, Join, UpdateMeta, Leave and
// Close, which call into memberlist and may block (Join up to the TCP
// timeout per address, UpdateMeta and Leave up to their timeouts).
// memberlist's goroutines call the delegate (delegate.go) and the log
// adapter (logging.go), which update the member table and send events
// without blocking. Members, NumAlive, LocalMeta and the keyring methods
// only read local state and never block on the network.
type Gossip struct {
	cfg     Config
	log     *slog.Logger
	ml      *memberlist.Memberlist // set in New, before any method runs
	mlConf  *memberlist.Config     // memberlist's copy; BindPort is the bound port
	keyring *memberlist.Keyring    // nil when encryption is off
	events  chan Event

	// lifeMu serialises Leave and Close: memberlist panics on Leave after
	// Shutdown.
	lifeMu sync.Mutex
	closed atomic.Bool // set once by Close

	// mu guards the fields below. memberlist callbacks take it while they
	// hold memberlist's node lock, so never call memberlist with mu held.
	mu           sync.Mutex
	meta         Meta
	metaBuf      []byte // meta encoded, as NodeMeta returns it
	left         bool   // Leave has started: meta is final
	members      map[string]*memberRecord
	eventsClosed bool
	dropped      uint64
}

// New validates cfg, starts memberlist with meta as this node's metadata
// and returns the running Gossip; it joins no one yet (see Join). The
// Events channel already holds the Join event of this node itself.
func New(cfg Config, meta Meta) (*Gossip, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	buf, err := meta.Encode()
	if err != nil {
		return nil, fmt.Errorf("gossip: local meta: %w", err)
	}
	keyring, err := newKeyring(cfg.Keys)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = discardLogger()
	}
	meta.Modes = slices.Clone(meta.Modes)
	g := &Gossip{
		cfg: cfg, log: logger.With("component", "gossip", "node", cfg.Name),
		keyring: keyring, events: make(chan Event, eventBuffer),
		meta: meta, metaBuf: buf, members: make(map[string]*memberRecord),
	}
	mc := cfg.memberlistConfig(keyring)
	d := delegate{g}
	mc.Delegate, mc.Events, mc.Ping, mc.Alive = d, d, d, d
	mc.Logger = newMemberlistLogger(g.log, g.onLogLine)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start memberlist: %w", err)
	}
	g.ml, g.mlConf = ml, mc
	return g, nil
}

// onLogLine watches memberlist's log for the one signal of a suspicion it
// gives (see suspectedName). Called from memberlist's goroutines.
func (g *Gossip) onLogLine(level slog.Level, msg string) {
	if level != slog.LevelInfo {
		return
	}
	if name, ok := suspectedName(msg); ok {
		g.setSuspect(name, true)
	}
}

// Join contacts the given peers ("host:port", or "host" for this node's
// bind port) and merges their view of the cluster. It returns how many
// were reached; the error is nil when at least one was. It blocks for up
// to memberlist's TCP timeout (10 s) per unreachable address.
func (g *Gossip) Join(addrs []string) (int, error) {
	if len(addrs) == 0 {
		return 0, errors.New("gossip: join: no addresses")
	}
	if g.closed.Load() {
		return 0, ErrClosed
	}
	full := make([]string, len(addrs))
	for i, a := range addrs {
		full[i] = withDefaultPort(a, g.mlConf.BindPort)
	}
	n, err := g.ml.Join(full)
	if err != nil {
		return n, fmt.Errorf("gossip: join %s: %w", strings.Join(full, ","), err)
	}
	return n, nil
}

// withDefaultPort appends port to addr when it has none.
func withDefaultPort(addr string, port int) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// LocalName returns this node's name (Config.Name).
func (g *Gossip) LocalName() string { return g.cfg.Name }

// LocalAddr returns the "host:port" peers use to reach this node, the one
// to pass to their Join; with BindPort 0 it shows the port picked.
func (g *Gossip) LocalAddr() string { return g.ml.LocalNode().Address() }

// LocalMeta returns this node's current metadata.
func (g *Gossip) LocalMeta() Meta {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.meta
	m.Modes = slices.Clone(m.Modes)
	return m
}

// Events returns the channel of membership changes, this node's included.
// It is buffered (256); when the consumer falls behind, events are
// dropped (see DroppedEvents), so a consumer should also reconcile from
// Members now and then. Close closes the channel.
func (g *Gossip) Events() <-chan Event { return g.events }

// UpdateMeta replaces this node's metadata and gossips it. It returns an
// error, and changes nothing, when m does not encode (ErrMetaTooLarge,
// ErrInvalidMeta), after Close (ErrClosed) or after Leave (ErrLeft).
// It waits up to a second or so for the broadcast to go out; if that
// takes longer the update is still stored and keeps being gossiped, and
// the delay is only logged.
func (g *Gossip) UpdateMeta(m Meta) error {
	buf, err := m.Encode()
	if err != nil {
		return fmt.Errorf("gossip: update meta: %w", err)
	}
	if g.closed.Load() {
		return ErrClosed
	}
	m.Modes = slices.Clone(m.Modes)
	g.mu.Lock()
	if g.left {
		g.mu.Unlock()
		return ErrLeft
	}
	g.meta, g.metaBuf = m, buf
	g.mu.Unlock()
	if err := g.ml.UpdateNode(g.broadcastTimeout()); err != nil {
		g.log.Warn("metadata update still being gossiped", "err", err)
	}
	return nil
}

// broadcastTimeout bounds the wait for an update to be gossiped to all:
// memberlist retransmits a broadcast RetransmitMult × log10(N+1) times, at
// most a few per gossip round, so this covers clusters of up to 10,000
// nodes with room to spare.
func (g *Gossip) broadcastTimeout() time.Duration {
	return max(time.Second, time.Duration(5*g.cfg.RetransmitMult)*g.cfg.GossipInterval)
}

// Leave announces that this node leaves on purpose, then keeps gossiping
// until Close. It first gossips its metadata with State "left" (which is
// how peers tell a departure from a failure: they then report it as left,
// not dead) and then memberlist's leave message, waiting at most timeout
// in all. Leave after Leave does nothing; after Close it returns ErrClosed.
func (g *Gossip) Leave(timeout time.Duration) error {
	if timeout <= 0 {
		return fmt.Errorf("gossip: leave timeout %v must be > 0", timeout)
	}
	g.lifeMu.Lock()
	defer g.lifeMu.Unlock()
	if g.closed.Load() {
		return ErrClosed
	}
	if !g.markLeft() {
		return nil
	}
	deadline := time.Now().Add(timeout)
	if err := g.ml.UpdateNode(timeout / 2); err != nil {
		g.log.Warn("left state still being gossiped", "err", err)
	}
	if err := g.ml.Leave(max(time.Until(deadline), time.Millisecond)); err != nil {
		return fmt.Errorf("gossip: leave: %w", err)
	}
	return nil
}

// markLeft sets this node's metadata state to left and reports whether it
// was not already.
func (g *Gossip) markLeft() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.left {
		return false
	}
	g.left = true
	g.meta.State = StateLeft
	if buf, err := g.meta.Encode(); err == nil { // cannot fail: meta encoded before
		g.metaBuf = buf
	}
	return true
}

// Close shuts memberlist down without a leave message (peers will see this
// node fail unless Leave ran first) and closes the Events channel. It is
// idempotent. This package starts no goroutines of its own; memberlist's
// stop shortly after Close returns, and their late callbacks are ignored.
func (g *Gossip) Close() error {
	g.lifeMu.Lock()
	defer g.lifeMu.Unlock()
	if g.closed.Swap(true) {
		return nil
	}
	err := g.ml.Shutdown()
	g.mu.Lock()
	g.closeEventsLocked()
	g.mu.Unlock()
	if err != nil {
		return fmt.Errorf("gossip: shutdown: %w", err)
	}
	return nil
}
