package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// The property tests drive random command sequences over a small universe
// of names, so that commands often hit the same node or workload.
const (
	propCases = 60
	propSteps = 400
)

var (
	propNodes     = []string{"n1", "n2", "n3", "n4"}
	propWorkloads = []string{"wa", "wb", "wc"}
	propPhases    = []string{PhasePlanned, PhaseTransferring, PhaseCutover, PhaseDone, PhaseFailed, "bogus"}
)

// refWorkload is the reference model of one workload's fencing.
type refWorkload struct {
	epoch uint64   // current epoch, 0 before the first grant
	past  []uint64 // every epoch that was current before, oldest first
	// appended are the indices of every accepted result, oldest first,
	// and keepBytes the bound the last one carried.
	appended  []uint64
	keepBytes int64
}

// gen generates commands; it reads the reference model to pick epochs
// that are current, past, zero or never granted.
type gen struct {
	r    *rand.Rand
	ref  map[string]*refWorkload
	at   time.Time
	seen map[string]uint64 // the highest epoch seen per workload
	// tally counts accepted and refused results, to show both happen.
	tally map[bool]int
	// trims counts checks that found a trimmed results log.
	trims int
}

func newGen(seed, stream uint64) *gen {
	return &gen{
		r:   rand.New(rand.NewPCG(seed, stream)),
		ref: map[string]*refWorkload{}, at: t0,
		seen: map[string]uint64{}, tally: map[bool]int{},
	}
}

func (g *gen) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *gen) epoch(id string) uint64 {
	w := g.ref[id]
	switch n := g.r.IntN(10); {
	case w == nil || n == 0:
		return uint64(g.r.IntN(50))
	case n < 6:
		return w.epoch
	case n < 8 && len(w.past) > 0:
		return w.past[g.r.IntN(len(w.past))]
	case n < 9:
		return w.epoch + 1
	}
	return 0
}

func (g *gen) standbys() []string {
	return propNodes[:g.r.IntN(3)]
}

func (g *gen) spec(id string) WorkloadSpec {
	s := testSpec(id)
	if g.r.IntN(10) == 0 {
		s.Standbys = 9 // invalid
	}
	if g.r.IntN(3) == 0 {
		s = WorkloadSpec{ID: id, Command: []string{"x"}} // relies on defaults
	}
	return s
}

// commands are the generators, one per command type.
var commands = []func(g *gen) Command{
	func(g *gen) Command { return NodeUpsert{Node: testNode(g.pick(propNodes)), At: g.at} },
	func(g *gen) Command {
		return LeaseRenew{Nodes: g.standbys(), At: g.at, TTL: time.Duration(g.r.IntN(8)) * time.Second}
	},
	func(g *gen) Command { return LeaseExpire{Node: g.pick(propNodes), At: g.at} },
	func(g *gen) Command {
		states := []NodeState{NodeAlive, NodeDoomed, NodeDraining, NodeLeft, NodeLost}
		return NodeStateChange{Node: g.pick(propNodes), State: states[g.r.IntN(len(states))], Deadline: g.at.Add(time.Minute), At: g.at}
	},
	func(g *gen) Command { return NodeRemove{Node: g.pick(propNodes)} },
	func(g *gen) Command { return WorkloadSubmit{Spec: g.spec(g.pick(propWorkloads)), At: g.at} },
	func(g *gen) Command {
		id := g.pick(propWorkloads)
		var prev uint64
		if g.r.IntN(2) == 0 {
			prev = g.epoch(id)
		}
		return WorkloadGrant{Workload: id, Holder: g.pick(propNodes), Standbys: g.standbys(), PrevEpoch: prev, At: g.at}
	},
	func(g *gen) Command {
		id := g.pick(propWorkloads)
		return WorkloadReport{Workload: id, Epoch: g.epoch(id), State: WorkloadRunning, Message: "m", At: g.at}
	},
	func(g *gen) Command { return WorkloadRemove{Workload: g.pick(propWorkloads)} },
	func(g *gen) Command {
		return WorkloadSetStandbys{Workload: g.pick(propWorkloads), Standbys: g.standbys()}
	},
	func(g *gen) Command {
		id := g.pick(propWorkloads)
		return WorkloadPreempt{Workload: id, PrevEpoch: g.epoch(id), Reason: "r", At: g.at}
	},
	func(g *gen) Command {
		id := g.pick(propWorkloads)
		return CheckpointPrepare{Workload: id, Epoch: g.epoch(id), Digest: g.pick([]string{"d1", "d2"}), Bytes: 5, At: g.at}
	},
	func(g *gen) Command {
		return CheckpointCommit{Workload: g.pick(propWorkloads), Seq: uint64(g.r.IntN(6)), Digest: g.pick([]string{"d1", "d2"}), Standbys: g.standbys(), At: g.at}
	},
	func(g *gen) Command {
		return CheckpointAbort{Workload: g.pick(propWorkloads), Seq: uint64(g.r.IntN(6))}
	},
	func(g *gen) Command {
		return MigrationBegin{Migration: Migration{ID: fmt.Sprint("m", g.r.IntN(5)), Workload: g.pick(propWorkloads)}, At: g.at}
	},
	func(g *gen) Command {
		return MigrationPhase{ID: fmt.Sprint("m", g.r.IntN(5)), Phase: g.pick(propPhases), Epoch: uint64(g.r.IntN(3)), At: g.at}
	},
	func(g *gen) Command {
		id := g.pick(propWorkloads)
		// A small byte bound, or none (an append from before the bound),
		// so that logs are trimmed by bytes within a few appends.
		keep := []int64{0, 5, 8}[g.r.IntN(3)]
		return ResultAppend{Workload: id, Epoch: g.epoch(id), Value: fmt.Sprint(g.r.IntN(100)), At: g.at, KeepBytes: keep}
	},
	func(g *gen) Command {
		return HazardRecord{Hazard: Hazard{Node: g.pick(propNodes), Kind: "preempt", At: g.at}}
	},
}

// next returns the next entry: usually an encoded command, sometimes an
// unknown (ignorable or not) or malformed one.
func (g *gen) next(t *testing.T) (Command, []byte) {
	g.at = g.at.Add(time.Duration(g.r.IntN(3000)) * time.Millisecond)
	switch g.r.IntN(40) {
	case 0:
		return nil, []byte{200, '{', '}'}
	case 1:
		return nil, []byte{100, '{', '}'}
	case 2:
		return nil, []byte{byte(CmdWorkloadGrant), '{'}
	}
	c := commands[g.r.IntN(len(commands))](g)
	return c, encodeOrFail(t, c)
}

// TestPropertyReplicasAgree applies the same random entries to two
// machines, one of which is snapshotted into a fresh machine half way,
// and checks every response and the final state agree.
func TestPropertyReplicasAgree(t *testing.T) {
	for seed := range uint64(propCases) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			g := newGen(seed, 1)
			a, b := New(), New()
			restoreAt := g.r.IntN(propSteps)
			for i := range propSteps {
				index := uint64(i + 1)
				if i == restoreAt {
					b = snapshotRestore(t, b)
				}
				_, data := g.next(t)
				ra, rb := a.Apply(index, data), b.Apply(index, data)
				if fmt.Sprint(ra.Err) != fmt.Sprint(rb.Err) || !reflect.DeepEqual(ra.Value, rb.Value) {
					t.Fatalf("step %d: responses differ: %+v vs %+v", i, ra, rb)
				}
			}
			sa, _ := a.Snapshot()
			sb, _ := b.Snapshot()
			if !bytes.Equal(sa, sb) {
				t.Fatalf("final states differ (restore at %d):\n%s\n%s", restoreAt, sa, sb)
			}
		})
	}
}

func snapshotRestore(t *testing.T, m *Machine) *Machine {
	t.Helper()
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	fresh := New()
	if err := fresh.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	return fresh
}

// TestPropertyFencing checks the machine against the reference model:
// epochs only grow, every past epoch is tombstoned (within
// MaxTombstones), and a result is accepted iff its epoch is current.
func TestPropertyFencing(t *testing.T) {
	tally, trims := map[bool]int{}, 0
	for seed := range uint64(propCases) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			g := newGen(seed, 2)
			defer func() { tally[true] += g.tally[true]; tally[false] += g.tally[false]; trims += g.trims }()
			m := New()
			for i := range propSteps {
				index := uint64(i + 1)
				c, data := g.next(t)
				r := m.Apply(index, data)
				if err := g.step(index, c, r); err != nil {
					t.Fatalf("step %d %#v: %v", i, c, err)
				}
				if err := g.check(m); err != nil {
					t.Fatalf("step %d %#v: %v", i, c, err)
				}
			}
		})
	}
	if tally[true] < propCases || tally[false] < propCases {
		t.Fatalf("results accepted %d, refused %d times: the generator does not exercise fencing", tally[true], tally[false])
	}
	if trims == 0 {
		t.Fatal("no results log was ever trimmed: the generator does not exercise the bounds")
	}
}

// step checks the response to c against the model and advances the model.
func (g *gen) step(index uint64, c Command, r Response) error {
	switch c := c.(type) {
	case WorkloadSubmit:
		_, exists := g.ref[c.Spec.ID]
		valid := c.Spec.WithDefaults().Validate() == nil
		if err := expect(r.Err, !exists && valid); err != nil {
			return err
		}
		if r.Err == nil {
			g.ref[c.Spec.ID] = &refWorkload{}
		}
	case WorkloadGrant:
		w := g.ref[c.Workload]
		if err := expect(r.Err, w != nil && (c.PrevEpoch == 0 || c.PrevEpoch == w.epoch)); err != nil {
			return err
		}
		if r.Err == nil {
			if w.epoch != 0 {
				w.past = append(w.past, w.epoch)
			}
			w.epoch = index
		}
	case WorkloadPreempt:
		w := g.ref[c.Workload]
		if err := expect(r.Err, w != nil && w.epoch != 0 && c.PrevEpoch == w.epoch); err != nil {
			return err
		}
		if r.Err == nil {
			w.past = append(w.past, w.epoch)
			w.epoch = 0 // pending again: no epoch is current until the next grant
		}
	case WorkloadRemove:
		if err := expect(r.Err, g.ref[c.Workload] != nil); err != nil {
			return err
		}
		delete(g.ref, c.Workload)
		delete(g.seen, c.Workload) // a resubmitted workload starts again
	case ResultAppend:
		w := g.ref[c.Workload]
		g.tally[r.Err == nil]++
		if r.Err == nil && w != nil {
			w.appended = append(w.appended, index)
			w.keepBytes = c.KeepBytes
		}
		return expect(r.Err, w != nil && w.epoch != 0 && c.Epoch == w.epoch)
	}
	return nil
}

func expect(err error, ok bool) error {
	if ok != (err == nil) {
		return fmt.Errorf("got error %v, model expects success %v", err, ok)
	}
	return nil
}

// check compares the machine's workloads with the model.
func (g *gen) check(m *Machine) error {
	if len(m.Workloads()) != len(g.ref) {
		return fmt.Errorf("%d workloads, model has %d", len(m.Workloads()), len(g.ref))
	}
	for id, ref := range g.ref {
		w, ok := m.Workload(id)
		if !ok || w.Assignment.Epoch != ref.epoch {
			return fmt.Errorf("workload %s: epoch %d (found %v), model %d", id, w.Assignment.Epoch, ok, ref.epoch)
		}
		if e := w.Assignment.Epoch; e != 0 && e < g.seen[id] { // 0: preempted, pending
			return fmt.Errorf("workload %s: epoch went down from %d to %d", id, g.seen[id], e)
		}
		g.seen[id] = max(g.seen[id], w.Assignment.Epoch)
		if w.Tombstoned(ref.epoch) {
			return fmt.Errorf("workload %s: current epoch %d tombstoned", id, ref.epoch)
		}
		kept := ref.past[max(0, len(ref.past)-MaxTombstones):]
		for _, e := range kept {
			if !w.Tombstoned(e) || (ref.epoch != 0 && e >= ref.epoch) {
				return fmt.Errorf("workload %s: past epoch %d not tombstoned or not below %d", id, e, ref.epoch)
			}
		}
		if w.ResultsTrimmed > 0 {
			g.trims++
		}
		if err := checkResults(w, ref); err != nil {
			return fmt.Errorf("workload %s: %w", id, err)
		}
	}
	return nil
}

// checkResults checks that results are in log order under growing
// epochs, that the log is every accepted append after its trim point, and
// that it keeps within its bounds.
func checkResults(w Workload, ref *refWorkload) error {
	for i := 1; i < len(w.Results); i++ {
		p, r := w.Results[i-1], w.Results[i]
		if r.Index <= p.Index || r.Epoch < p.Epoch {
			return errors.New("results out of order")
		}
	}
	n := w.ResultsTrimmed
	if n > uint64(len(ref.appended)) || n+uint64(len(w.Results)) != uint64(len(ref.appended)) {
		return fmt.Errorf("%d results kept and %d trimmed; the model appended %d", len(w.Results), n, len(ref.appended))
	}
	for i, r := range w.Results {
		if r.Index != ref.appended[n+uint64(i)] {
			return fmt.Errorf("result %d at index %d; the model has %d", i, r.Index, ref.appended[n+uint64(i)])
		}
	}
	if through := w.ResultsTrimmedThrough; (n == 0 && through != 0) || (n > 0 && through != ref.appended[n-1]) {
		return fmt.Errorf("trimmed %d through index %d; the model trimmed through %v", n, through, ref.appended[:n])
	}
	total := 0
	for _, r := range w.Results {
		total += len(r.Value)
	}
	if len(w.Results) > MaxResults || (ref.keepBytes > 0 && int64(total) > ref.keepBytes && len(w.Results) > 1) {
		return fmt.Errorf("%d results of %d bytes kept; the bound is %d bytes", len(w.Results), total, ref.keepBytes)
	}
	return nil
}
