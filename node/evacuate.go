package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/peer"
	"github.com/lifeboat/lifeboat/placement"
)

// The evacuation orchestrator runs on the leader. Every round it looks for
// nodes that are doomed (a termination notice) or draining (an operator's
// drain) and still hold workloads, plans a target for each workload and
// starts the moves — each the same handoff as `workload migrate`, run by
// the holder — most important first, paced by a token bucket so that a
// mass notice does not stampede the targets.

// evacuation is the leader's bookkeeping of the moves it started.
type evacuation struct {
	mu      sync.Mutex
	running map[string]move // workload id → its move in flight
	// reserved is capacity a preemption freed for a workload that waits
	// to move there: target → workload id → resources. grantPending does
	// not give it away.
	reserved map[string]map[string]reservation
	limiter  *rate.Limiter
	bps      float64 // measured move throughput (bytes/s, moving average); 0 until a move finished
	wg       sync.WaitGroup
}

// move is one move in flight: the node it loads (the target, or the
// holder of a preemption) and, for a target, the room it takes there.
type move struct {
	on   string
	need placement.Resources
}

// reservation is capacity held on a target for one evacuee.
type reservation struct {
	need  placement.Resources
	until time.Time
}

func newEvacuation(perSecond float64, burst int) *evacuation {
	return &evacuation{running: map[string]move{}, reserved: map[string]map[string]reservation{},
		limiter: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// priorityRank orders priorities, most important first.
var priorityRank = map[string]int{fsm.PriorityCritical: 0, fsm.PriorityHigh: 1, fsm.PriorityNormal: 2, fsm.PriorityBatch: 3}

// evacuate starts the moves off doomed and draining nodes that are due.
func (n *Node) evacuate(ctx context.Context) {
	v := n.rep.machine
	leaving := map[string]fsm.Node{}
	for _, rec := range v.Nodes() {
		if rec.State == fsm.NodeDoomed || rec.State == fsm.NodeDraining {
			leaving[rec.Name] = rec
		}
	}
	if _, me := leaving[n.cfg.Name]; len(leaving) == 0 || me {
		return // a leaving leader hands leadership over first (autopilot); the next one evacuates
	}
	moving := map[string]bool{} // a move recorded, not finished, not abandoned: perhaps a former leader's
	for _, m := range v.Migrations() {
		last := m.Phases[len(m.Phases)-1].At
		if m.Phase != fsm.PhaseDone && m.Phase != fsm.PhaseFailed && n.now().Sub(last) < restoreWait+checkpointWait {
			moving[m.Workload] = true
		}
	}
	workloads := v.Workloads()
	var todo []fsm.Workload
	for _, w := range workloads {
		if _, ok := leaving[w.Assignment.Holder]; ok && w.Assignment.State != fsm.WorkloadStopped && w.Assignment.Epoch != 0 && !moving[w.Spec.ID] {
			todo = append(todo, w)
		}
	}
	if len(todo) == 0 {
		return
	}
	nodes := n.placementNodes(workloads)
	targets := 0
	for i := range nodes {
		if _, ok := leaving[nodes[i].Name]; ok {
			nodes[i].Eligible = false
		}
		if nodes[i].Eligible {
			targets++
		}
	}
	if targets == 0 {
		n.log.Warn("evacuation: no node can take work", "workloads", len(todo))
		return
	}
	// The pace matches what the targets absorb: more targets, more moves.
	n.evac.pace(n.cfg.EvacuationRate*float64(targets), n.cfg.EvacuationBurst*targets)
	busy := n.evac.load()
	full := false
	for i := range nodes {
		if busy[nodes[i].Name] >= n.cfg.EvacuationInflight {
			nodes[i].Eligible, full = false, true
		}
	}
	now := n.now()
	left := map[string]time.Duration{} // per leaving node; 0: no deadline (a drain)
	for name, rec := range leaving {
		if !rec.Deadline.IsZero() {
			left[name] = max(rec.Deadline.Sub(now), time.Nanosecond)
		}
	}
	est := n.evac.estimator(n.cfg.EvacuationThroughput, n.cfg.EvacuationOverhead)
	plan := planEvacuation(todo, left, est, targets*n.cfg.EvacuationInflight, n.cfg.EvacuationRate*float64(targets))
	for _, it := range plan {
		w := it.w
		from := w.Assignment.Holder
		if n.evac.busy(w.Spec.ID) {
			continue
		}
		room := n.evac.withReservations(nodes, w.Spec.ID, now) // nodes as this workload finds them
		target, err := evacuationTarget(w, leaving[from], room)
		if err != nil {
			if full {
				continue // a target is busy: wait for a slot before preempting anything
			}
			if n.evac.reservedFor(w.Spec.ID, now) {
				continue // a preemption is making room for it
			}
			if on, victims := preemptionPlan(w, from, room, workloads, moving); len(victims) > 0 {
				n.preempt(ctx, w, on, victims)
				continue
			}
			n.log.Warn("no target for an evacuation", "workload", w.Spec.ID, "from", from, "err", err)
			continue
		}
		if !n.evac.limiter.Allow() {
			return // paced: the next round goes on
		}
		need := placement.Resources{MemoryMiB: w.Spec.Resources.MemoryMiB, CPUMillis: w.Spec.Resources.CPUMillis}
		if !n.evac.claim(w.Spec.ID, move{on: target, need: need}) {
			continue
		}
		// The claim holds the target's room (withReservations); its load
		// and in-flight count are taken here.
		for i := range nodes {
			if nodes[i].Name == target {
				nodes[i].Load++
				if busy[target]++; busy[target] >= n.cfg.EvacuationInflight {
					nodes[i].Eligible, full = false, true
				}
			}
		}
		reason := "drain"
		if leaving[from].State == fsm.NodeDoomed {
			reason = "doomed"
		}
		if !it.fits {
			n.metrics.evacLate.Inc()
			n.log.Warn("evacuation will likely not finish before the deadline", "workload", w.Spec.ID, "from", from,
				"estimate", it.est.Round(time.Millisecond), "deadline", leaving[from].Deadline)
		}
		// Recorded here, in plan order, before any move starts: the
		// record also keeps a next leader from starting the move again.
		mig := fsm.Migration{ID: migrationID(w.Spec.ID, now), Workload: w.Spec.ID, From: from, To: target, Reason: reason}
		idx, _, err := n.apply(ctx, fsm.MigrationBegin{Migration: mig, At: n.now()})
		if err != nil {
			n.evac.release(w.Spec.ID)
			n.log.Warn("evacuation not recorded", "workload", w.Spec.ID, "err", err)
			return
		}
		n.startMove(ctx, peer.MigrateRequest{ID: w.Spec.ID, To: target, Reason: reason, Migration: mig.ID, Index: idx}, from)
	}
}

// preempt makes room on node on for w by taking victims (less important
// work held there) off it: each is checkpointed, stopped and returned to
// pending, to be placed again where capacity allows. The room is reserved
// for w until its move starts.
func (n *Node) preempt(ctx context.Context, w fsm.Workload, on string, victims []fsm.Workload) {
	n.evac.reserve(on, w.Spec.ID, placement.Resources{MemoryMiB: w.Spec.Resources.MemoryMiB, CPUMillis: w.Spec.Resources.CPUMillis},
		n.now().Add(restoreWait))
	for _, v := range victims {
		if !n.evac.claim(v.Spec.ID, move{on: on}) {
			continue
		}
		reason := fmt.Sprintf("preempted for %s (%s)", w.Spec.ID, w.Spec.Priority)
		mig := fsm.Migration{ID: migrationID(v.Spec.ID, n.now()), Workload: v.Spec.ID, From: on, Reason: reason}
		idx, _, err := n.apply(ctx, fsm.MigrationBegin{Migration: mig, At: n.now()})
		if err != nil {
			n.evac.release(v.Spec.ID)
			n.log.Warn("preemption not recorded", "workload", v.Spec.ID, "err", err)
			return
		}
		n.metrics.preemptions.Inc()
		n.startMove(ctx, peer.MigrateRequest{ID: v.Spec.ID, Park: true, Reason: reason, Migration: mig.ID, Index: idx}, on)
	}
}

// checkpointWait bounds a final checkpoint and its transfer, for telling
// an abandoned move record from one in progress.
const checkpointWait = 2 * time.Minute

// startMove runs one move in a goroutine the evacuation owns.
func (n *Node) startMove(ctx context.Context, req peer.MigrateRequest, from string) {
	id, to := req.ID, req.To
	n.log.Info("evacuating", "workload", id, "from", from, "to", to, "reason", req.Reason, "park", req.Park)
	n.evac.wg.Add(1)
	go func() {
		defer n.evac.wg.Done()
		defer n.evac.release(id)
		begin := time.Now()
		res, err := n.migrateVia(ctx, req)
		took := time.Since(begin)
		if err != nil {
			if m, ok := n.evac.moving(id); ok && m.on != "" && !req.Park {
				// Keep the room for the retry: it may be room a preemption made.
				n.evac.reserve(m.on, id, m.need, n.now().Add(retryReservation))
			}
			n.metrics.evacMoves.WithLabelValues("failed").Observe(took.Seconds())
			n.log.Error("evacuation move failed", "workload", id, "from", from, "to", to, "err", err)
			n.applyLogged(context.WithoutCancel(ctx), fsm.MigrationPhase{ID: req.Migration, Phase: fsm.PhaseFailed, Error: err.Error(), At: n.now()})
			return
		}
		n.metrics.evacMoves.WithLabelValues("ok").Observe(took.Seconds())
		if !req.Park {
			n.evac.measured(res.Bytes, took, n.cfg.EvacuationOverhead)
		}
		n.log.Info("evacuated", "workload", id, "from", from, "to", to, "took", took.Round(time.Millisecond))
	}()
}

// retryReservation is how long the room of a failed move stays held for
// its retry.
const retryReservation = 10 * time.Second

// moving returns id's move in flight.
func (e *evacuation) moving(id string) (move, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, ok := e.running[id]
	return m, ok
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

// claim marks id as moving; false if it already moves. The move's room
// on its target stays reserved until release.
func (e *evacuation) claim(id string, m move) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.running[id]; ok {
		return false
	}
	e.running[id] = m
	for _, r := range e.reserved {
		delete(r, id) // its move starts: the move holds the room now
	}
	return true
}

// reservedFor reports whether a preemption is making room for id.
func (e *evacuation) reservedFor(id string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.reserved {
		if res, ok := r[id]; ok && !now.After(res.until) {
			return true
		}
	}
	return false
}

func (e *evacuation) busy(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.running[id]
	return ok
}

func (e *evacuation) release(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.running, id)
}

// load counts the moves in flight per node they load.
func (e *evacuation) load() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]int{}
	for _, m := range e.running {
		out[m.on]++
	}
	return out
}

func (e *evacuation) reserve(on, id string, need placement.Resources, until time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.reserved[on] == nil {
		e.reserved[on] = map[string]reservation{}
	}
	e.reserved[on][id] = reservation{need: need, until: until}
}

// withReservations returns nodes with the room that moves in flight and
// preemptions hold for workloads other than except taken off their free
// capacity (Raft shows a moving workload on its old holder until the
// grant); expired reservations are dropped.
func (e *evacuation) withReservations(nodes []placement.Node, except string, now time.Time) []placement.Node {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := slices.Clone(nodes)
	for i := range out {
		for id, m := range e.running {
			if m.on == out[i].Name && id != except {
				out[i].Free.MemoryMiB -= m.need.MemoryMiB
				out[i].Free.CPUMillis -= m.need.CPUMillis
			}
		}
		for id, r := range e.reserved[out[i].Name] {
			switch {
			case now.After(r.until):
				delete(e.reserved[out[i].Name], id)
			case id != except:
				out[i].Free.MemoryMiB -= r.need.MemoryMiB
				out[i].Free.CPUMillis -= r.need.CPUMillis
			}
		}
	}
	return out
}

// minMeasured is the smallest move that tells the throughput: a smaller
// one's time is all overhead.
const minMeasured = 8 << 20

// measured folds one finished move into the throughput estimate.
func (e *evacuation) measured(bytes int64, took, overhead time.Duration) {
	if bytes < minMeasured {
		return
	}
	d := max(took-overhead, 10*time.Millisecond)
	bps := float64(bytes) / d.Seconds()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.bps == 0 {
		e.bps = bps
	} else {
		e.bps = 0.7*e.bps + 0.3*bps
	}
}

// estimator returns how long moving a workload is expected to take: the
// overhead plus its bytes at the measured throughput, or at assumed until
// a move has measured it. Its bytes are its latest checkpoint's; without
// one, a criu workload's memory (CRIU dumps it), and nothing for app and
// none (their state is what the application writes, not its memory).
func (e *evacuation) estimator(assumed float64, overhead time.Duration) func(fsm.Workload) time.Duration {
	e.mu.Lock()
	bps := e.bps
	e.mu.Unlock()
	if bps <= 0 {
		bps = assumed
	}
	return func(w fsm.Workload) time.Duration {
		var bytes int64
		if w.Spec.Checkpoint.Mode == fsm.ModeCRIU {
			bytes = w.Spec.Resources.MemoryMiB << 20
		}
		if k := len(w.Checkpoints); k > 0 {
			bytes = w.Checkpoints[k-1].Bytes
		}
		return overhead + time.Duration(float64(bytes)/bps*float64(time.Second))
	}
}

// evacItem is one planned move.
type evacItem struct {
	w    fsm.Workload
	est  time.Duration
	fits bool // expected to finish before its host's deadline
}

// planEvacuation orders the moves: most important first and, where the
// hosts' deadlines (left, per holder; absent: none) cannot fit them all,
// the moves expected to finish in time before those that are not — a move
// that cannot finish only delays the ones that could, and its workload
// restarts from its last committed checkpoint anyway. The schedule it
// checks against runs parallel moves at once, at most perSecond starting
// each second; est sizes one move.
func planEvacuation(todo []fsm.Workload, left map[string]time.Duration, est func(fsm.Workload) time.Duration, parallel int, perSecond float64) []evacItem {
	items := make([]evacItem, len(todo))
	for i, w := range todo {
		items[i] = evacItem{w: w, est: est(w), fits: true}
	}
	slices.SortStableFunc(items, func(a, b evacItem) int {
		if d := priorityRank[a.w.Spec.Priority] - priorityRank[b.w.Spec.Priority]; d != 0 {
			return d
		}
		return a.w.SubmittedAt.Compare(b.w.SubmittedAt)
	})
	work := map[string]time.Duration{} // per leaving host: the planned moves' total time
	started := map[string]int{}
	for i := range items {
		from := items[i].w.Assignment.Holder
		limit, ok := left[from]
		if !ok {
			continue
		}
		start := max(work[from]/time.Duration(max(parallel, 1)), time.Duration(float64(started[from])/perSecond*float64(time.Second)))
		if start+items[i].est > limit {
			items[i].fits = false
			continue
		}
		work[from] += items[i].est
		started[from]++
	}
	slices.SortStableFunc(items, func(a, b evacItem) int { return boolRank(!a.fits) - boolRank(!b.fits) })
	return items
}

// preemptionPlan finds room for w when no node has it: the node (not from,
// able to take w but for capacity) where taking off the fewest less
// important workloads frees enough, least important and largest first.
// It returns that node and the victims, or no victims when none helps.
func preemptionPlan(w fsm.Workload, from string, nodes []placement.Node, workloads []fsm.Workload, moving map[string]bool) (string, []fsm.Workload) {
	req := requestFor(w.Spec)
	rank := priorityRank[w.Spec.Priority]
	bestOn, best := "", []fsm.Workload(nil)
	for _, nd := range nodes {
		if nd.Name == from || !nd.Eligible {
			continue
		}
		var cands []fsm.Workload
		for _, o := range workloads {
			if o.Assignment.Holder == nd.Name && o.Assignment.Epoch != 0 && priorityRank[o.Spec.Priority] > rank && !moving[o.Spec.ID] {
				cands = append(cands, o)
			}
		}
		slices.SortStableFunc(cands, func(a, b fsm.Workload) int {
			if d := priorityRank[b.Spec.Priority] - priorityRank[a.Spec.Priority]; d != 0 {
				return d
			}
			return int(b.Spec.Resources.MemoryMiB - a.Spec.Resources.MemoryMiB)
		})
		room := nd
		var victims []fsm.Workload
		for _, c := range cands {
			if _, err := placement.ChooseHolder(req, []placement.Node{room}); err == nil {
				break
			}
			victims = append(victims, c)
			room.Free.MemoryMiB += c.Spec.Resources.MemoryMiB
			room.Free.CPUMillis += c.Spec.Resources.CPUMillis
		}
		if _, err := placement.ChooseHolder(req, []placement.Node{room}); err != nil || len(victims) == 0 {
			continue
		}
		if best == nil || len(victims) < len(best) {
			bestOn, best = nd.Name, victims
		}
	}
	return bestOn, best
}

// evacuationTarget picks where a workload leaving node from goes: a
// standby that holds its latest committed checkpoint and can take it
// (other zones first), else the placement's choice of holder.
func evacuationTarget(w fsm.Workload, from fsm.Node, nodes []placement.Node) (string, error) {
	req := requestFor(w.Spec)
	var ready []placement.Node
	if k := len(w.Checkpoints); k > 0 {
		holders := w.Checkpoints[k-1].Standbys
		for _, nd := range nodes {
			if slices.Contains(holders, nd.Name) && nd.Name != from.Name {
				ready = append(ready, nd)
			}
		}
	}
	slices.SortStableFunc(ready, func(a, b placement.Node) int { // another zone first
		return boolRank(a.Zone == from.Zone) - boolRank(b.Zone == from.Zone)
	})
	for _, nd := range ready {
		if t, err := placement.ChooseHolder(req, []placement.Node{nd}); err == nil {
			return t, nil
		}
	}
	others := slices.DeleteFunc(slices.Clone(nodes), func(nd placement.Node) bool { return nd.Name == from.Name })
	t, err := placement.ChooseHolder(req, others)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errNoTarget, err)
	}
	return t, nil
}

var errNoTarget = errors.New("no node can take the workload")

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Drain marks a node draining: it takes no new work, and the leader moves
// its workloads away.
func (n *Node) Drain(ctx context.Context, name string) (api.DrainResult, error) {
	return n.setDrain(ctx, name, fsm.NodeDraining)
}

// Undrain returns a drained node to service.
func (n *Node) Undrain(ctx context.Context, name string) (api.DrainResult, error) {
	return n.setDrain(ctx, name, fsm.NodeAlive)
}

func (n *Node) setDrain(ctx context.Context, name string, state fsm.NodeState) (api.DrainResult, error) {
	rec, ok := n.view().Node(name)
	if !ok {
		return api.DrainResult{}, fmt.Errorf("%w: no node %q", fsm.ErrNotFound, name)
	}
	if state == fsm.NodeAlive && rec.State != fsm.NodeDraining {
		return api.DrainResult{}, fmt.Errorf("%w: node %s is %s, not draining", api.ErrConflict, name, rec.State)
	}
	if _, _, err := n.apply(ctx, fsm.NodeStateChange{Node: name, State: state, At: n.now()}); err != nil {
		return api.DrainResult{}, err
	}
	res := api.DrainResult{Node: name, State: string(state)}
	for _, w := range n.view().Workloads() {
		if w.Assignment.Holder == name {
			res.Workloads = append(res.Workloads, w.Spec.ID)
		}
	}
	return res, nil
}
