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
	running map[string]bool // workload ids being moved
	limiter *rate.Limiter
	wg      sync.WaitGroup
}

func newEvacuation(perSecond float64, burst int) *evacuation {
	return &evacuation{running: map[string]bool{}, limiter: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// priorityRank orders priorities, most important first.
var priorityRank = map[string]int{fsm.PriorityCritical: 0, fsm.PriorityHigh: 1, fsm.PriorityNormal: 2, fsm.PriorityBatch: 3}

// evacuate starts the moves off doomed and draining nodes that are due.
func (n *Node) evacuate(ctx context.Context) {
	v := n.machine
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
	var todo []fsm.Workload
	for _, w := range v.Workloads() {
		if _, ok := leaving[w.Assignment.Holder]; ok && w.Assignment.State != fsm.WorkloadStopped && w.Assignment.Epoch != 0 && !moving[w.Spec.ID] {
			todo = append(todo, w)
		}
	}
	slices.SortStableFunc(todo, func(a, b fsm.Workload) int {
		return priorityRank[a.Spec.Priority] - priorityRank[b.Spec.Priority]
	})
	nodes := n.placementNodes(v.Workloads())
	for i := range nodes {
		if _, ok := leaving[nodes[i].Name]; ok {
			nodes[i].Eligible = false
		}
	}
	for _, w := range todo {
		if !n.evac.claim(w.Spec.ID) {
			continue
		}
		target, err := evacuationTarget(w, leaving[w.Assignment.Holder], nodes)
		if err != nil {
			n.evac.release(w.Spec.ID)
			n.log.Warn("no target for an evacuation", "workload", w.Spec.ID, "from", w.Assignment.Holder, "err", err)
			continue
		}
		if !n.evac.limiter.Allow() {
			n.evac.release(w.Spec.ID)
			return // paced: the next round goes on
		}
		// The target's capacity is taken now, so the next plan sees it.
		for i := range nodes {
			if nodes[i].Name == target {
				nodes[i].Free.MemoryMiB -= w.Spec.Resources.MemoryMiB
				nodes[i].Free.CPUMillis -= w.Spec.Resources.CPUMillis
				nodes[i].Load++
			}
		}
		reason := "drain"
		if leaving[w.Assignment.Holder].State == fsm.NodeDoomed {
			reason = "doomed"
		}
		// Recorded here, in priority order, before any move starts: the
		// record also keeps a next leader from starting the move again.
		from := w.Assignment.Holder
		mig := fsm.Migration{ID: migrationID(w.Spec.ID, n.now()), Workload: w.Spec.ID, From: from, To: target, Reason: reason}
		if _, _, err := n.apply(ctx, fsm.MigrationBegin{Migration: mig, At: n.now()}); err != nil {
			n.evac.release(w.Spec.ID)
			n.log.Warn("evacuation not recorded", "workload", w.Spec.ID, "err", err)
			return
		}
		n.startMove(ctx, migrateRequest{ID: w.Spec.ID, To: target, Reason: reason, Migration: mig.ID}, from)
	}
}

// checkpointWait bounds a final checkpoint and its transfer, for telling
// an abandoned move record from one in progress.
const checkpointWait = 2 * time.Minute

// startMove runs one move in a goroutine the evacuation owns.
func (n *Node) startMove(ctx context.Context, req migrateRequest, from string) {
	id, to := req.ID, req.To
	n.log.Info("evacuating", "workload", id, "from", from, "to", to, "reason", req.Reason)
	n.evac.wg.Add(1)
	go func() {
		defer n.evac.wg.Done()
		defer n.evac.release(id)
		begin := time.Now()
		_, err := n.migrateVia(ctx, req)
		if err != nil {
			n.log.Error("evacuation move failed", "workload", id, "from", from, "to", to, "err", err)
			n.applyLogged(context.WithoutCancel(ctx), fsm.MigrationPhase{ID: req.Migration, Phase: fsm.PhaseFailed, Error: err.Error(), At: n.now()})
			return
		}
		n.log.Info("evacuated", "workload", id, "from", from, "to", to, "took", time.Since(begin).Round(time.Millisecond))
	}()
}

func (e *evacuation) claim(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running[id] {
		return false
	}
	e.running[id] = true
	return true
}

func (e *evacuation) release(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.running, id)
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
