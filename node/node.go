// Package node is a lifeboat peer: it wires gossip, Raft, the state
// machine, placement and the admin API together and runs the loops that
// keep a cluster self-managing (bootstrap, autopilot, node leases, workload
// grants, the members' state mirror). Only this package and cmd know how
// the parts fit.
package node

import (
	"context"
	"errors"
	"fmt"
	"github.com/lifeboat/lifeboat/internal/monotime"
	"github.com/lifeboat/lifeboat/node/ingress"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/runtime"
	"github.com/lifeboat/lifeboat/transfer"
)

// Node is one running peer.
type Node struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
	// startedAt is when New built this node (wall clock).
	startedAt time.Time
	mono      func() monotime.Instant
	// testClock is the steppable wall clock (Config.UnsafeClockControl).
	testClock *jumpClock
	addr      string // advertise IP

	machine *fsm.Machine // the Raft replica (voters and spares)
	mirror  *fsm.Machine // the leader's state as a member last fetched it
	raft    *raft.Raft
	// hadState reports whether Raft found state in the data dir at start.
	hadState bool
	closers  []io.Closer // Raft stores and transport

	gossip  *gossip.Gossip
	api     *api.Server
	httpSrv *http.Server
	ingress *ingress.Ingress // nil when IngressPort is 0
	httpLn  net.Listener
	peers   *http.Client
	metrics *metrics
	leases  *leaseBatcher
	sup     *runtime.Supervisor
	xfer    *transfer.Server // receives checkpoints from holders (QUIC)
	xferTCP *transfer.Server // the same over mutual TLS on TCP
	sender  checkpointSender // ships checkpoints to standbys
	pager   pageOpener       // the page relay of lazy moves
	kick    chan struct{}    // wakes the leader loop early
	evac    *evacuation      // the moves the leader started

	metaMu sync.Mutex // serializes gossip metadata updates
	mu     sync.Mutex // guards the fields below
	// leaderSince is when this node last became leader (zero: not leader).
	leaderSince monotime.Instant
	// leaseSentAt is the send time of the last acknowledged lease renewal.
	leaseSentAt monotime.Instant
	// leaseSeen is, on the leader, when it applied each node's last
	// renewal (this leadership only): the leader's own view of the
	// leases, on a clock no wall-clock step moves.
	leaseSeen map[string]monotime.Instant
	// leaseIndex is the leader's applied index at the last renewal.
	leaseIndex uint64
	// mirrorIndex and mirrorServers are the last mirror fetched.
	mirrorIndex   uint64
	mirrorServers []raft.Server
	mirrorLeader  string
	// noLeaderSince is when Raft last started knowing no leader (orphaned).
	noLeaderSince time.Time
	// syncedIndex is the index of the newest replica the supervisor
	// followed (syncTo): it never follows an older one.
	syncedIndex uint64
	lastMeta    gossip.Meta
	// spareSince is when the leader first saw each spare (autopilot debounce).
	spareSince map[string]time.Time
	// doomedUntil is the deadline of the termination notice this node got;
	// zero without one.
	doomedUntil time.Time
	// fencedAt is when fenceLoop froze the workloads; zero when not fenced.
	fencedAt time.Time
	// heldOnce: fenceLoop let the workloads run at least once since start.
	heldOnce bool
	// prepared is the last checkpoint seq this node prepared per workload.
	prepared map[string]uint64
	closed   bool

	runCtx context.Context // ends when Close begins
	cancel context.CancelFunc
	wg     sync.WaitGroup // every loop goroutine
}

// New validates cfg and builds a node; Start runs it.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, now: cfg.Now, mono: cfg.Mono, addr: cfg.advertise(),
		machine: fsm.New(), mirror: fsm.New(), leases: newLeaseBatcher(), kick: make(chan struct{}, 1),
		prepared: map[string]uint64{}}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.log = n.log.With("node", cfg.Name)
	if n.now == nil {
		n.now = time.Now
	}
	if n.mono == nil {
		n.mono = monotime.Now
	}
	if cfg.UnsafeClockControl {
		n.testClock = &jumpClock{}
		n.now = n.testClock.Now
	}
	n.startedAt = n.now()
	n.metrics = newMetrics(n)
	n.evac = newEvacuation(evacConfigOf(cfg), n.evacuationDeps())
	n.peers = n.peerHTTPClient()
	return n, nil
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Addr is the node's advertise IP.
func (n *Node) Addr() string { return n.addr }

// HTTPAddr is the host:port of the admin API.
func (n *Node) HTTPAddr() string { return net.JoinHostPort(n.addr, strconv.Itoa(n.cfg.HTTPPort)) }

// Start opens the listeners and starts the loops. On error everything
// started so far is closed again.
func (n *Node) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.runCtx = ctx
	steps := []func() error{n.startRuntime, n.startTransfer, n.startRaft, n.startGossip, n.startHTTP, n.startIngress}
	for _, step := range steps {
		if err := step(); err != nil {
			n.Close()
			return err
		}
	}
	n.goLoop(ctx, "join", n.joinLoop)
	n.goLoop(ctx, "bootstrap", n.bootstrapLoop)
	n.goLoop(ctx, "meta", n.metaLoop)
	n.goLoop(ctx, "leader", n.leaderLoop)
	n.goLoop(ctx, "events", n.eventLoop)
	n.goLoop(ctx, "lease-flush", n.leaseFlushLoop)
	n.goLoop(ctx, "lease-renew", n.renewLoop)
	n.goLoop(ctx, "mirror", n.mirrorLoop)
	n.goLoop(ctx, "sync", n.syncLoop)
	n.goLoop(ctx, "reports", n.reportLoop)
	n.goLoop(ctx, "gc", n.gcLoop)
	if n.cfg.UnsafeNoFencing {
		n.log.Warn("fencing is switched off (--unsafe-disable-fencing): two holders may serve one workload at once")
	} else {
		n.goLoop(ctx, "fence", n.fenceLoop)
		if len(n.cfg.KeeperCommand) > 0 {
			n.goLoop(ctx, "keeper", n.keeperLoop)
		}
	}
	n.goLoop(ctx, "watch", n.watchLoop)
	n.goLoop(ctx, "ingress", n.ingressLoop)
	n.log.Info("peer started", "addr", n.addr, "http", n.cfg.HTTPPort, "raft", n.cfg.RaftPort, "gossip", n.cfg.GossipPort)
	return nil
}

// goLoop runs one owned loop until ctx ends; Close waits for it.
func (n *Node) goLoop(ctx context.Context, name string, loop func(context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		loop(ctx)
		n.log.Debug("loop stopped", "loop", name)
	}()
}

// Close stops the node without leaving the cluster (a restart with the
// same data dir rejoins). It is idempotent.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	if n.cancel != nil {
		n.cancel()
	}
	var errs []error
	if n.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		errs = append(errs, ignoreClosed(n.httpSrv.Shutdown(ctx)))
		cancel()
	}
	n.wg.Wait()
	n.evac.wg.Wait()
	if n.sup != nil {
		errs = append(errs, n.sup.Close())
	}
	for _, x := range []*transfer.Server{n.xfer, n.xferTCP} {
		if x != nil {
			errs = append(errs, x.Close())
		}
	}
	if n.gossip != nil {
		errs = append(errs, n.gossip.Close())
	}
	if n.raft != nil {
		errs = append(errs, n.raft.Shutdown().Error())
	}
	for _, c := range n.closers {
		errs = append(errs, c.Close())
	}
	if n.cfg.Net != nil {
		n.cfg.Net.hostDown(n.addr)
	}
	n.log.Info("peer stopped")
	return errors.Join(errs...)
}

// Leave announces a graceful departure to the gossip pool; the leader
// then records the node as left and autopilot removes it from Raft.
func (n *Node) Leave(timeout time.Duration) error {
	if n.gossip == nil {
		return nil
	}
	return n.gossip.Leave(timeout)
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// startRuntime opens the checkpoint store and the supervisor.
func (n *Node) startRuntime() error {
	cks := n.cfg.Checkpointers
	if cks == nil {
		cks = []runtime.Checkpointer{runtime.NewApp(), runtime.None{}}
	}
	rc := runtime.DefaultConfig(n.cfg.DataDir)
	rc.Logger = n.log.With("part", "runtime")
	rc.Env = []string{"LIFEBOAT_API=http://" + net.JoinHostPort(n.cfg.advertise(), strconv.Itoa(n.cfg.HTTPPort))}
	rc.Keep = fsm.KeepCheckpoints + 1 // the committed ones and the one in flight; gcLoop trims the rest
	sup, err := runtime.New(rc, &runtimeCluster{n: n}, cks...)
	if err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	n.sup = sup
	if !n.cfg.UnsafeNoFencing {
		sup.Fence(true) // until the first lease renewal (fenceLoop)
	}
	return nil
}

// startHTTP serves the admin API.
func (n *Node) startHTTP() error {
	n.api = api.NewServer(n, api.Auth{Write: n.cfg.APIToken, Read: n.cfg.APIReadToken}, n.metrics.handler())
	n.registerInternal(n.api)
	h := n.metrics.instrument(n.api)
	n.httpSrv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	addr := net.JoinHostPort(n.cfg.BindAddr, strconv.Itoa(n.cfg.HTTPPort))
	if n.cfg.Net != nil {
		n.cfg.Net.serveHTTP(n.HTTPAddr(), h)
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http-port: listening on %s: %w", addr, err)
	}
	n.httpLn = ln
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.httpSrv.Serve(ln); ignoreClosed(err) != nil {
			n.log.Error("admin API stopped", "err", err)
		}
	}()
	return nil
}

// sleep waits d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
