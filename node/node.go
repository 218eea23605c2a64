// Package node is a lifeboat peer: it wires gossip, Raft, the state
// machine, placement and the admin API together and runs the loops that
// keep a cluster self-managing. Only this package and cmd know how the
// parts fit.
//
// A Node keeps the wiring and the lifecycle; each part is a small type in
// its own file that owns its state and its lock: directory.go (where peers
// are), replica.go and mirror.go (the read side), propose.go (the write
// side), lease.go, fence.go and keep.go (leases, self-fence, doom),
// membership.go (gossip), autopilot.go, sync.go, commit.go and offers.go
// (the two-phase commit, both sides), move.go and handoff.go (a move on
// the holder), evacuation*.go, reserve.go and recover.go (the leader's
// evacuation), notice.go, gc.go; cluster.go and peerserve.go adapt the
// node to runtime.Cluster and peer.Handler.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/lifeboat/lifeboat/internal/monotime"
	"github.com/lifeboat/lifeboat/node/ingress"
	"github.com/lifeboat/lifeboat/node/peer"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/runtime"
	"github.com/lifeboat/lifeboat/placement"
	"github.com/lifeboat/lifeboat/transfer"
)

// Node is one running peer: it builds the parts (each a small type that
// owns its state and its lock), wires them together and runs their loops.
// What it keeps itself is the wiring: the listeners, Raft and gossip as
// started, and the lifecycle.
type Node struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	mono func() monotime.Instant
	// testClock is the steppable wall clock (Config.Unsafe.ClockControl).
	testClock *jumpClock
	addr      string // advertise IP

	raft *raft.Raft
	// hadState reports whether Raft found state in the data dir at start.
	hadState bool
	closers  []io.Closer // Raft stores and transport

	gossip  *gossip.Gossip
	api     *api.Server
	httpSrv *http.Server
	ingress *ingress.Ingress // nil when IngressPort is 0
	metrics *metrics
	sup     *runtime.Supervisor
	store   *transfer.Store  // the checkpoints: the supervisor's and the transfer servers'
	xfer    *transfer.Server // receives checkpoints from holders (QUIC)
	xferTCP *transfer.Server // the same over mutual TLS on TCP
	pager   pageOpener       // the page relay of lazy moves
	kick    chan struct{}    // wakes the leader loop early

	// The parts, in the order a request meets them.
	dir     *directory      // where peers are (gossip)
	rep     *replica        // the read side: Raft replica or mirror
	mirror  *mirror         // a member's copy of the leader's state
	calls   *peer.Client    // calls to other peers' internal endpoints
	prop    *proposer       // the write side: commands through Raft
	leases  *leases         // node leases, both ends
	fence   *fence          // the holder's self-fence and this host's doom
	self    *membership     // this node in the gossip pool
	pilot   *autopilot      // the leader's server set
	syncer  *syncer         // the supervisor follows the replica
	commits *committer      // the holder's two-phase commit
	offers  *offers         // what peers may push or read here
	moves   *moves          // moves run on the holder
	cluster *runtimeCluster // the supervisor's view of the cluster
	notices *notices        // this host's cloud notices
	gc      *collector      // checkpoints nobody needs
	evac    *evacuation     // the moves the leader started

	mu     sync.Mutex // guards closed
	closed bool

	runCtx context.Context // ends when Close begins
	cancel context.CancelFunc
	wg     sync.WaitGroup // every loop goroutine
}

// New validates cfg and builds a node; Start runs it.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, now: cfg.Now, mono: cfg.Mono, addr: cfg.advertise(), kick: make(chan struct{}, 1)}
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
	if cfg.Unsafe.ClockControl {
		n.testClock = &jumpClock{}
		n.now = n.testClock.Now
	}
	n.metrics = newMetrics(n)
	n.wire(n.now())
	n.evac = newEvacuation(evacConfigOf(cfg), n.evacuationDeps())
	return n, nil
}

// wire builds the parts and points them at each other; Start fills in
// what exists only once started (Raft, gossip, the supervisor).
func (n *Node) wire(startedAt time.Time) {
	cfg, name, log := n.cfg, n.cfg.Name, n.log
	var rt http.RoundTripper
	if cfg.Net != nil {
		rt = cfg.Net.RoundTripper(n.addr)
	}
	crash := crashPoints{enabled: cfg.Unsafe.CrashPoints, dataDir: cfg.DataDir, log: log}
	n.dir = &directory{}
	n.mirror = newMirror(log)
	n.rep = &replica{name: name, machine: fsm.New(), mirror: n.mirror, dir: n.dir, now: n.now}
	n.calls = newPeerClient(rt, cfg.APIToken)
	n.prop = &proposer{rep: n.rep, call: n.calls, timeout: cfg.ForwardTimeout, metrics: n.metrics, log: log}
	n.leases = &leases{name: name, ttl: cfg.LeaseTTL, drift: cfg.DriftBound, now: n.now, mono: n.mono, rep: n.rep,
		prop: n.prop, call: n.calls, batch: newLeaseBatcher(), metrics: n.metrics, log: log, seen: map[string]monotime.Instant{}}
	n.syncer = &syncer{name: name, rep: n.rep}
	n.fence = &fence{name: name, disabled: cfg.Unsafe.NoFencing, startedAt: startedAt, now: n.now, mono: n.mono,
		leases: n.leases, rep: n.rep, prop: n.prop, sync: n.syncer, metrics: n.metrics, log: log}
	n.self = &membership{join: cfg.Join, rep: n.rep, fence: n.fence, log: log.With("part", "gossip")}
	n.pilot = &autopilot{cfg: placement.AutopilotConfig{Voters: cfg.Voters, Spares: cfg.Spares}, timeout: cfg.ForwardTimeout,
		rep: n.rep, leases: n.leases, now: n.now, metrics: n.metrics, log: log}
	n.commits = &committer{name: name, state: n.rep, peers: n.dir, prop: n.prop, crash: crash, now: n.now, metrics: n.metrics, log: log,
		prepared: map[string]uint64{}}
	n.offers = &offers{name: name, rep: n.rep}
	n.moves = &moves{name: name, timeout: cfg.ForwardTimeout, rep: n.rep, prop: n.prop, commits: n.commits, call: n.calls,
		crash: crash, now: n.now, metrics: n.metrics, log: log}
	n.cluster = &runtimeCluster{name: name, rep: n.rep, prop: n.prop, commits: n.commits, call: n.calls, now: n.now, log: log}
	n.notices = &notices{w: cfg.Watcher, host: fsm.Hazard{Node: name, Cloud: cfg.Cloud, Region: cfg.Region, Zone: cfg.Zone,
		InstanceType: cfg.InstanceType}, rep: n.rep, prop: n.prop, fence: n.fence, members: n.self, now: n.now,
		metrics: n.metrics, log: log}
	n.gc = &collector{name: name, grace: cfg.CheckpointGCGrace, rep: n.rep, now: n.now, log: log}
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
	n.goLoop(ctx, "join", n.self.joinLoop)
	n.goLoop(ctx, "bootstrap", n.bootstrapLoop)
	n.goLoop(ctx, "meta", n.self.metaLoop)
	n.goLoop(ctx, "leader", n.leaderLoop)
	n.goLoop(ctx, "events", n.eventLoop)
	n.goLoop(ctx, "lease-flush", n.leases.flushLoop)
	n.goLoop(ctx, "lease-renew", func(ctx context.Context) { n.leases.renewLoop(ctx, n.fence.held) })
	n.goLoop(ctx, "mirror", func(ctx context.Context) { n.mirror.follow(ctx, n.rep, n.calls) })
	n.goLoop(ctx, "sync", n.syncer.loop)
	n.goLoop(ctx, "reports", n.syncer.reportLoop)
	n.goLoop(ctx, "gc", n.gc.loop)
	if n.cfg.Unsafe.NoFencing {
		n.log.Warn("fencing is switched off (--unsafe-disable-fencing): two holders may serve one workload at once")
	} else {
		n.goLoop(ctx, "fence", n.fence.loop)
		if len(n.cfg.KeeperCommand) > 0 {
			n.goLoop(ctx, "keeper", func(ctx context.Context) { n.fence.keeperLoop(ctx, n.cfg.KeeperCommand, n.cfg.DataDir) })
		}
	}
	n.goLoop(ctx, "watch", n.notices.loop)
	n.goLoop(ctx, "ingress", func(ctx context.Context) { serveIngress(ctx, n.ingress, n.fence.doomed, n.log) })
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
		n.cfg.Net.HostDown(n.addr)
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
	// Keep: the committed ones and the one in flight; the collector trims the rest.
	store, err := transfer.OpenStore(filepath.Join(n.cfg.DataDir, "checkpoints"), fsm.KeepCheckpoints+1)
	if err != nil {
		return fmt.Errorf("data-dir: runtime: checkpoint store: %w", err)
	}
	rc := runtime.DefaultConfig(n.cfg.DataDir)
	rc.Store = store
	rc.Logger = n.log.With("part", "runtime")
	rc.Env = []string{"LIFEBOAT_API=http://" + net.JoinHostPort(n.cfg.advertise(), strconv.Itoa(n.cfg.HTTPPort))}
	auth := api.Auth{Write: n.cfg.APIToken}
	rc.WorkloadEnv = func(id string, epoch uint64) []string {
		if tok := auth.WorkloadToken(id, epoch); tok != "" {
			return []string{"LIFEBOAT_TOKEN=" + tok}
		}
		return nil
	}
	sup, err := runtime.New(rc, n.cluster, cks...)
	if err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	n.sup, n.store = sup, store
	n.fence.sup, n.syncer.sup, n.self.sup, n.offers.sup, n.moves.sup, n.notices.sup = sup, sup, sup, sup, sup, sup
	n.gc.store = n.store
	if !n.cfg.Unsafe.NoFencing {
		sup.Fence(true) // until the first lease renewal (fence.loop)
	}
	return nil
}

// startHTTP serves the admin API.
func (n *Node) startHTTP() error {
	n.api = api.NewServer(n, api.Auth{Write: n.cfg.APIToken, Read: n.cfg.APIReadToken}, n.metrics.handler())
	peer.Register(n.api, peerHandler{n}, peer.Options{Name: n.cfg.Name, UnsafeClockControl: n.cfg.Unsafe.ClockControl})
	h := api.WithBodyTimeout(n.metrics.instrument(n.api), api.BodyTimeout)
	// No ReadTimeout: its deadline stays on the connection while a handler
	// runs, and a long one (a migrate waits minutes) would see its request
	// context cancelled when it passes.
	n.httpSrv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	addr := net.JoinHostPort(n.cfg.BindAddr, strconv.Itoa(n.cfg.HTTPPort))
	if n.cfg.Net != nil {
		n.cfg.Net.ServeHTTP(n.HTTPAddr(), h)
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http-port: listening on %s: %w", addr, err)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.httpSrv.Serve(ln); ignoreClosed(err) != nil {
			n.log.Error("admin API stopped", "err", err)
		}
	}()
	return nil
}
