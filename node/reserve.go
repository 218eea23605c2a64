package node

import (
	"slices"
	"sync"
	"time"

	"github.com/lifeboat/lifeboat/placement"
)

// reservations is the leader's book of the room its moves hold: the moves
// in flight (a claim per workload) and the room preemptions freed for
// evacuees. Placement sees nodes through it (withReservations), so that
// neither a grant nor another move takes that room meanwhile. Its methods
// are safe for concurrent use: the leader loop and the move goroutines
// call them.
type reservations struct {
	mu sync.Mutex // guards running and reserved
	// running is the moves in flight: workload id → its move.
	running map[string]move
	// reserved is capacity a preemption freed for a workload that waits
	// to move there (or the room of a failed move kept for its retry):
	// target → workload id → resources.
	reserved map[string]map[string]reservation
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

func newReservations() *reservations {
	return &reservations{running: map[string]move{}, reserved: map[string]map[string]reservation{}}
}

// moving returns id's move in flight.
func (r *reservations) moving(id string) (move, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.running[id]
	return m, ok
}

// claim marks id as moving; false if it already moves. The move's room
// on its target stays taken until release.
func (r *reservations) claim(id string, m move) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.running[id]; ok {
		return false
	}
	r.running[id] = m
	for _, res := range r.reserved {
		delete(res, id) // its move starts: the move holds the room now
	}
	return true
}

// reservedFor reports whether room is reserved for id until now or later.
func (r *reservations) reservedFor(id string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, res := range r.reserved {
		if v, ok := res[id]; ok && !now.After(v.until) {
			return true
		}
	}
	return false
}

// busy reports whether id moves.
func (r *reservations) busy(id string) bool {
	_, ok := r.moving(id)
	return ok
}

// release ends id's move.
func (r *reservations) release(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.running, id)
}

// load counts the moves in flight per node they load.
func (r *reservations) load() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, m := range r.running {
		out[m.on]++
	}
	return out
}

// reserve holds need on node on for id until until.
func (r *reservations) reserve(on, id string, need placement.Resources, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reserved[on] == nil {
		r.reserved[on] = map[string]reservation{}
	}
	r.reserved[on][id] = reservation{need: need, until: until}
}

// withReservations returns nodes with the room that moves in flight and
// reservations hold for workloads other than except taken off their free
// capacity (Raft shows a moving workload on its old holder until the
// grant); expired reservations are dropped.
func (r *reservations) withReservations(nodes []placement.Node, except string, now time.Time) []placement.Node {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(nodes)
	for i := range out {
		for id, m := range r.running {
			if m.on == out[i].Name && id != except {
				out[i].Free.MemoryMiB -= m.need.MemoryMiB
				out[i].Free.CPUMillis -= m.need.CPUMillis
			}
		}
		for id, v := range r.reserved[out[i].Name] {
			switch {
			case now.After(v.until):
				delete(r.reserved[out[i].Name], id)
			case id != except:
				out[i].Free.MemoryMiB -= v.need.MemoryMiB
				out[i].Free.CPUMillis -= v.need.CPUMillis
			}
		}
	}
	return out
}
