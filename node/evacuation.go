package node

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/internal/monotime"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/peer"
	"github.com/lifeboat/lifeboat/placement"
)

// The evacuation orchestrator runs on the leader. Every round it looks for
// nodes that are doomed (a termination notice) or draining (an operator's
// drain) and still hold workloads, plans a target for each workload and
// starts the moves — each the same handoff as `workload migrate`, run by
// the holder — most important first, paced by a token bucket so that a
// mass notice does not stampede the targets. It also re-grants the work
// of holders that vanished (recover.go). The planning is placement's
// (PlanEvacuation, EvacuationTarget, PreemptionPlan); this part reads the
// replica, keeps the book of moves in flight and runs them.

// evacHost is what the evacuation needs of its node. The leader loop
// calls evacuate and recoverLost; the move goroutines the evacuation owns
// call migrateVia, waitRunning and applyLogged. Every method may block.
type evacHost interface {
	// apply proposes cmd through Raft and returns its index.
	apply(ctx context.Context, cmd fsm.Command) (uint64, json.RawMessage, error)
	// applyLogged applies cmd and logs a failure (the next round retries).
	applyLogged(ctx context.Context, cmd fsm.Command)
	// migrateVia runs a move, or a park, on the workload's holder.
	migrateVia(ctx context.Context, req peer.MigrateRequest) (api.ActionResult, error)
	// waitRunning returns once id runs under epoch, or why it does not.
	waitRunning(ctx context.Context, id string, epoch uint64) error
	// members is gossip's view of the peers; the caller must not modify it.
	members() map[string]gossip.Member
	// leaseEnd is when node's lease ends on the leader's boot-time clock.
	leaseEnd(node string) monotime.Instant
}

// evacNode is the node as the evacuation sees it: its parts.
type evacNode struct {
	prop   *proposer
	moves  *moves
	dir    *directory
	leases *leases
}

var _ evacHost = evacNode{}

func (e evacNode) apply(ctx context.Context, cmd fsm.Command) (uint64, json.RawMessage, error) {
	return e.prop.apply(ctx, cmd)
}
func (e evacNode) applyLogged(ctx context.Context, cmd fsm.Command) { e.prop.applyLogged(ctx, cmd) }
func (e evacNode) migrateVia(ctx context.Context, req peer.MigrateRequest) (api.ActionResult, error) {
	return e.moves.migrateVia(ctx, req)
}
func (e evacNode) waitRunning(ctx context.Context, id string, epoch uint64) error {
	return e.moves.waitRunning(ctx, id, epoch)
}
func (e evacNode) members() map[string]gossip.Member     { return e.dir.members() }
func (e evacNode) leaseEnd(node string) monotime.Instant { return e.leases.end(node) }

// evacConfig is the evacuation's share of the node's Config.
type evacConfig struct {
	EvacuationConfig
	Self string // this node's name: a leaving leader does not evacuate
	// RegrantAfter is how long after a lost node's lease ended its work
	// is re-granted: TTL·ρ + lock delay, 0 without fencing.
	RegrantAfter time.Duration
}

func evacConfigOf(c Config) evacConfig {
	ec := evacConfig{EvacuationConfig: c.Evacuation, Self: c.Name,
		RegrantAfter: time.Duration(float64(c.LeaseTTL)*c.DriftBound) + c.LockDelay}
	if c.Unsafe.NoFencing {
		ec.RegrantAfter = 0
	}
	return ec
}

// evacDeps are the evacuation's dependencies.
type evacDeps struct {
	host    evacHost
	replica *fsm.Machine // the leader's Raft replica; read only
	log     *slog.Logger
	now     func() time.Time
	mono    func() monotime.Instant
	metrics evacMetrics
}

// evacMetrics are the evacuation's metrics, registered by the node.
type evacMetrics struct {
	moves       *prometheus.HistogramVec // by result
	late        prometheus.Counter
	preemptions prometheus.Counter
}

// evacuationDeps wires the evacuation to this node.
func (n *Node) evacuationDeps() evacDeps {
	host := evacNode{prop: n.prop, moves: n.moves, dir: n.dir, leases: n.leases}
	return evacDeps{host: host, replica: n.rep.machine, log: n.log, now: n.now, mono: n.mono,
		metrics: evacMetrics{moves: n.metrics.evacMoves, late: n.metrics.evacLate, preemptions: n.metrics.preemptions}}
}

// evacuation is the leader's orchestrator of the moves off leaving and
// lost nodes. Its book of moves (reservations) has its own lock.
type evacuation struct {
	*reservations
	evacDeps
	cfg     evacConfig
	limiter *rate.Limiter // paces the moves; safe for concurrent use

	mu   sync.Mutex // guards tput
	tput placement.Throughput

	wg sync.WaitGroup // the move goroutines; Node.Close waits for them
}

func newEvacuation(cfg evacConfig, d evacDeps) *evacuation {
	return &evacuation{reservations: newReservations(), evacDeps: d, cfg: cfg,
		limiter: rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst)}
}

// evacRound is one round: what the replica showed at its start, updated
// as the round claims targets. Only the leader loop touches it.
type evacRound struct {
	now     time.Time
	leaving map[string]fsm.Node  // doomed and draining nodes
	moving  map[string]bool      // workloads with a live move record, perhaps a former leader's
	todo    []placement.Workload // what the leaving nodes hold
	all     []placement.Workload // every workload: preemption's candidates
	nodes   []placement.Node     // the leaving ones not eligible
	targets int                  // eligible nodes
	busy    map[string]int       // moves in flight per node
	full    bool                 // a target reached its in-flight cap
}

// evacuate starts the moves off doomed and draining nodes that are due.
func (e *evacuation) evacuate(ctx context.Context) {
	r := e.survey()
	if r == nil {
		return
	}
	if r.targets == 0 {
		e.log.Warn("evacuation: no node can take work", "workloads", len(r.todo))
		return
	}
	// The pace matches what the targets absorb: more targets, more moves.
	e.pace(e.cfg.Rate*float64(r.targets), e.cfg.Burst*r.targets)
	r.busy = e.load()
	for i := range r.nodes {
		if r.busy[r.nodes[i].Name] >= e.cfg.Inflight {
			r.nodes[i].Eligible, r.full = false, true
		}
	}
	plan := placement.PlanEvacuation(r.todo, r.deadlines(), e.estimator(),
		r.targets*e.cfg.Inflight, e.cfg.Rate*float64(r.targets))
	for _, it := range plan {
		if !e.start(ctx, r, it) {
			return // paced, or Raft refused: the next round goes on
		}
	}
}

// survey reads the replica for a round; nil when there is nothing to
// move, or when this node itself leaves (autopilot hands leadership over
// first; the next leader evacuates).
func (e *evacuation) survey() *evacRound {
	r := &evacRound{now: e.now(), leaving: map[string]fsm.Node{}}
	for _, rec := range e.replica.Nodes() {
		if rec.State == fsm.NodeDoomed || rec.State == fsm.NodeDraining {
			r.leaving[rec.Name] = rec
		}
	}
	if _, me := r.leaving[e.cfg.Self]; len(r.leaving) == 0 || me {
		return nil
	}
	r.moving = liveMoves(e.replica.Migrations(), r.now)
	workloads := e.replica.Workloads()
	for _, w := range workloads {
		if _, ok := r.leaving[w.Assignment.Holder]; ok && w.Assignment.State != fsm.WorkloadStopped && w.Assignment.Epoch != 0 && !r.moving[w.Spec.ID] {
			r.todo = append(r.todo, placementWorkload(w))
		}
	}
	if len(r.todo) == 0 {
		return nil
	}
	r.all = placementWorkloads(workloads)
	r.nodes = placementNodes(e.replica.Nodes(), workloads, e.host.members())
	for i := range r.nodes {
		if _, ok := r.leaving[r.nodes[i].Name]; ok {
			r.nodes[i].Eligible = false
		}
		if r.nodes[i].Eligible {
			r.targets++
		}
	}
	return r
}

// checkpointWait bounds a final checkpoint and its transfer, for telling
// an abandoned move record from one in progress.
const checkpointWait = 2 * time.Minute

// liveMoves returns the workloads with a move recorded, not finished and
// not abandoned.
func liveMoves(ms []fsm.Migration, now time.Time) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		last := m.Phases[len(m.Phases)-1].At
		if m.Phase != fsm.PhaseDone && m.Phase != fsm.PhaseFailed && now.Sub(last) < restoreWait+checkpointWait {
			out[m.Workload] = true
		}
	}
	return out
}

// deadlines is the time left per leaving node; a drain has none.
func (r *evacRound) deadlines() map[string]time.Duration {
	left := map[string]time.Duration{}
	for name, rec := range r.leaving {
		if !rec.Deadline.IsZero() {
			left[name] = max(rec.Deadline.Sub(r.now), time.Nanosecond)
		}
	}
	return left
}

// took counts a move claimed to target: one more workload there, one
// more move in flight, up to the cap.
func (r *evacRound) took(target string, inflight int) {
	for i := range r.nodes {
		if r.nodes[i].Name == target {
			r.nodes[i].Load++
			if r.busy[target]++; r.busy[target] >= inflight {
				r.nodes[i].Eligible, r.full = false, true
			}
		}
	}
}

// pace sets the token bucket's rate and burst.
func (e *evacuation) pace(perSecond float64, burst int) {
	if e.limiter.Limit() != rate.Limit(perSecond) {
		e.limiter.SetLimit(rate.Limit(perSecond))
	}
	if e.limiter.Burst() != burst {
		e.limiter.SetBurst(burst)
	}
}

// measured folds one finished move into the throughput estimate.
func (e *evacuation) measured(bytes int64, took time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tput.Measured(bytes, took, e.cfg.Overhead)
}

// estimator sizes moves at the throughput measured so far.
func (e *evacuation) estimator() func(placement.Workload) time.Duration {
	e.mu.Lock()
	tput := e.tput
	e.mu.Unlock()
	return tput.Estimator(e.cfg.Throughput, e.cfg.Overhead)
}
