package checker

import (
	"sort"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

// SingleServer checks that no two holders of one workload served at once.
// Every ok probe and ok incr reveals the epoch the workload was served
// under. A violation is a pair of ops of one workload, a answered under
// epoch e and b answered under a higher epoch e' > e, where a was invoked
// after b completed: the old holder still served after the new one had.
// Ops with epoch 0 (not reported) are skipped. Figures: ops checked,
// violating pairs and the worst overlap (a's invocation minus b's
// completion).
func SingleServer(ops []history.Op, workloads []string) Verdict {
	var p problems
	checked, pairs := 0, 0
	var worst time.Duration
	for _, w := range workloads {
		served := servedOps(ops, w)
		checked += len(served)
		pr, wo := checkEpochs(&p, w, served)
		pairs += pr
		worst = max(worst, wo)
	}
	return p.verdict(NameSingleServer, map[string]any{"ops": checked, "pairs": pairs, "worst_overlap": worst})
}

// servedOps are workload w's ok probes and incrs with an epoch.
func servedOps(ops []history.Op, w string) []history.Op {
	var out []history.Op
	for _, op := range ops {
		if op.Workload == w && op.Outcome == history.Ok && op.Epoch != 0 &&
			(op.Kind == history.KindProbe || op.Kind == history.KindIncr) {
			out = append(out, op)
		}
	}
	return out
}

// epochGroup is the ops answered under one epoch, by completion.
type epochGroup struct {
	epoch     uint64
	completes []time.Duration // sorted
	first     history.Op      // the earliest to complete
}

// checkEpochs adds a problem for every op answered under an epoch after
// an op under a higher one had completed, and returns how many pairs
// there are and the worst overlap.
func checkEpochs(p *problems, w string, served []history.Op) (int, time.Duration) {
	groups := groupByEpoch(served)
	// earliest[i] is the first op to complete under an epoch above groups[i].
	earliest := make([]*history.Op, len(groups))
	for i := len(groups) - 2; i >= 0; i-- {
		next := &groups[i+1].first
		if e := earliest[i+1]; e != nil && e.Complete < next.Complete {
			next = e
		}
		earliest[i] = next
	}
	at := map[uint64]int{}
	for i, g := range groups {
		at[g.epoch] = i
	}
	pairs := 0
	var worst time.Duration
	for _, a := range served {
		i := at[a.Epoch]
		b := earliest[i]
		if b == nil || a.Invoke <= b.Complete {
			continue
		}
		for _, g := range groups[i+1:] {
			pairs += sort.Search(len(g.completes), func(k int) bool { return g.completes[k] >= a.Invoke })
		}
		overlap := a.Invoke - b.Complete
		worst = max(worst, overlap)
		p.add("%s: %s answered under epoch %d %v after %s under epoch %d had completed",
			w, describe(a), a.Epoch, round(overlap), describe(*b), b.Epoch)
	}
	return pairs, worst
}

// groupByEpoch groups ops by epoch, lowest first.
func groupByEpoch(ops []history.Op) []epochGroup {
	byEpoch := map[uint64]*epochGroup{}
	for _, op := range ops {
		g := byEpoch[op.Epoch]
		if g == nil {
			g = &epochGroup{epoch: op.Epoch, first: op}
			byEpoch[op.Epoch] = g
		}
		g.completes = append(g.completes, op.Complete)
		if op.Complete < g.first.Complete {
			g.first = op
		}
	}
	groups := make([]epochGroup, 0, len(byEpoch))
	for _, g := range byEpoch {
		sort.Slice(g.completes, func(i, j int) bool { return g.completes[i] < g.completes[j] })
		groups = append(groups, *g)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].epoch < groups[j].epoch })
	return groups
}
