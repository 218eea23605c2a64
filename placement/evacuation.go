package placement

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Workload is one workload as evacuation planning sees it.
type Workload struct {
	ID string
	// Priority is the spec's priority name, ordered by PriorityRank.
	Priority string
	// Submitted is when the workload was submitted: the order within a
	// priority.
	Submitted time.Time
	// Holder is the node that holds it; empty when none does.
	Holder string
	// Placed reports whether a holder was granted an epoch of it.
	Placed bool
	// Request is what it needs of a holder.
	Request Request
	// DumpsMemory reports whether its checkpoint is a dump of its memory
	// (CRIU): without a checkpoint, its memory is then what a move ships.
	DumpsMemory bool
	// Checkpoint is its latest committed checkpoint; nil when none.
	Checkpoint *Checkpoint
}

// Checkpoint is a committed checkpoint as planning sees it.
type Checkpoint struct {
	Bytes int64
	// Holders are the standbys that hold it.
	Holders []string
}

// PlannedMove is one move of an evacuation plan.
type PlannedMove struct {
	Workload Workload
	// Est is how long the move is expected to take.
	Est time.Duration
	// Fits reports whether the move is expected to finish before its
	// host's deadline.
	Fits bool
}

// PlanEvacuation orders the moves: most important first and, where the
// hosts' deadlines (left, per holder; absent: none) cannot fit them all,
// the moves expected to finish in time before those that are not — a move
// that cannot finish only delays the ones that could, and its workload
// restarts from its last committed checkpoint anyway. The schedule it
// checks against runs parallel moves at once, at most perSecond starting
// each second; est sizes one move.
func PlanEvacuation(todo []Workload, left map[string]time.Duration, est func(Workload) time.Duration, parallel int, perSecond float64) []PlannedMove {
	items := make([]PlannedMove, len(todo))
	for i, w := range todo {
		items[i] = PlannedMove{Workload: w, Est: est(w), Fits: true}
	}
	slices.SortStableFunc(items, func(a, b PlannedMove) int {
		if d := PriorityRank(a.Workload.Priority) - PriorityRank(b.Workload.Priority); d != 0 {
			return d
		}
		return a.Workload.Submitted.Compare(b.Workload.Submitted)
	})
	work := map[string]time.Duration{} // per leaving host: the planned moves' total time
	started := map[string]int{}
	for i := range items {
		from := items[i].Workload.Holder
		limit, ok := left[from]
		if !ok {
			continue
		}
		start := max(work[from]/time.Duration(max(parallel, 1)), time.Duration(float64(started[from])/perSecond*float64(time.Second)))
		if start+items[i].Est > limit {
			items[i].Fits = false
			continue
		}
		work[from] += items[i].Est
		started[from]++
	}
	slices.SortStableFunc(items, func(a, b PlannedMove) int { return b2i(!a.Fits) - b2i(!b.Fits) })
	return items
}

// PreemptionPlan finds room for w when no node has it: the node (not from,
// able to take w but for capacity) where taking off the fewest less
// important placed workloads, none of them moving, frees enough, least
// important and largest first. It returns that node and the victims, or
// no victims when none helps.
func PreemptionPlan(w Workload, from string, nodes []Node, workloads []Workload, moving map[string]bool) (string, []Workload) {
	bestOn, best := "", []Workload(nil)
	for _, nd := range nodes {
		if nd.Name == from || !nd.Eligible {
			continue
		}
		victims := victimsOn(w, nd, workloads, moving)
		if len(victims) == 0 {
			continue
		}
		if best == nil || len(victims) < len(best) {
			bestOn, best = nd.Name, victims
		}
	}
	return bestOn, best
}

// victimsOn returns the fewest workloads to take off nd for w to fit
// there, or none when taking them all does not make it fit.
func victimsOn(w Workload, nd Node, workloads []Workload, moving map[string]bool) []Workload {
	rank := PriorityRank(w.Priority)
	var cands []Workload
	for _, o := range workloads {
		if o.Holder == nd.Name && o.Placed && PriorityRank(o.Priority) > rank && !moving[o.ID] {
			cands = append(cands, o)
		}
	}
	slices.SortStableFunc(cands, func(a, b Workload) int {
		if d := PriorityRank(b.Priority) - PriorityRank(a.Priority); d != 0 {
			return d
		}
		return int(b.Request.Need.MemoryMiB - a.Request.Need.MemoryMiB)
	})
	room := nd
	var victims []Workload
	for _, c := range cands {
		if Fits(w.Request, room) == nil {
			break
		}
		victims = append(victims, c)
		room.Free.MemoryMiB += c.Request.Need.MemoryMiB
		room.Free.CPUMillis += c.Request.Need.CPUMillis
	}
	if Fits(w.Request, room) != nil {
		return nil
	}
	return victims
}

// ErrNoTarget is wrapped by EvacuationTarget's error when no node can
// take the workload.
var ErrNoTarget = errors.New("no node can take the workload")

// EvacuationTarget picks where a workload leaving node from (its Name and
// Zone) goes: a standby that holds its latest committed checkpoint and
// can take it (other zones first), else ChooseHolder's choice among the
// other nodes.
func EvacuationTarget(w Workload, from Node, nodes []Node) (string, error) {
	var ready []Node
	if w.Checkpoint != nil {
		for _, nd := range nodes {
			if slices.Contains(w.Checkpoint.Holders, nd.Name) && nd.Name != from.Name {
				ready = append(ready, nd)
			}
		}
	}
	slices.SortStableFunc(ready, func(a, b Node) int { // another zone first
		return b2i(a.Zone == from.Zone) - b2i(b.Zone == from.Zone)
	})
	for _, nd := range ready {
		if Fits(w.Request, nd) == nil {
			return nd.Name, nil
		}
	}
	others := slices.DeleteFunc(slices.Clone(nodes), func(nd Node) bool { return nd.Name == from.Name })
	t, err := ChooseHolder(w.Request, others)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoTarget, err)
	}
	return t, nil
}
