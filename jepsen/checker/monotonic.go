package checker

import (
	"sort"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

// Monotonic checks that a restored count never goes back past an
// acknowledged one. For ok incrs A and B of one workload, if A completed
// before B was invoked then B's count exceeds A's. An ok probe P must
// show at least the count of every ok incr A that completed before P was
// invoked with A's epoch <= P's epoch: a probe of an older, frozen holder
// may still show an older count, so it is not held to newer incrs.
// Figures: incrs, probes, violations.
func Monotonic(ops []history.Op, workloads []string) Verdict {
	var p problems
	incrs, probes := 0, 0
	for _, w := range workloads {
		is := pick(ops, w, history.KindIncr, history.Ok)
		ps := pick(ops, w, history.KindProbe, history.Ok)
		incrs += len(is)
		probes += len(ps)
		sort.SliceStable(is, func(i, j int) bool { return is[i].Complete < is[j].Complete })
		checkIncrs(&p, w, is)
		checkProbes(&p, w, is, ps)
	}
	return p.verdict(NameMonotonic, map[string]any{"incrs": incrs, "probes": probes, "violations": p.n})
}

// checkIncrs checks incrs, sorted by completion, against each other.
func checkIncrs(p *problems, w string, byComplete []history.Op) {
	byInvoke := append([]history.Op(nil), byComplete...)
	sort.SliceStable(byInvoke, func(i, j int) bool { return byInvoke[i].Invoke < byInvoke[j].Invoke })
	var top *history.Op // the highest count completed so far
	j := 0
	for _, b := range byInvoke {
		for ; j < len(byComplete) && byComplete[j].Complete < b.Invoke; j++ {
			if top == nil || byComplete[j].Value > top.Value {
				top = &byComplete[j]
			}
		}
		if top != nil && b.Value <= top.Value {
			p.add("%s: %s answered %d after %s had answered %d", w, describe(b), b.Value, describe(*top), top.Value)
		}
	}
}

// checkProbes checks each probe against the incrs, sorted by completion,
// that completed before it under an epoch no higher than its own.
func checkProbes(p *problems, w string, byComplete, probes []history.Op) {
	for _, pr := range probes {
		var top *history.Op
		for i := 0; i < len(byComplete) && byComplete[i].Complete < pr.Invoke; i++ {
			a := &byComplete[i]
			if a.Epoch <= pr.Epoch && (top == nil || a.Value > top.Value) {
				top = a
			}
		}
		if top != nil && pr.Value < top.Value {
			p.add("%s: probe %s showed %d after %s had answered %d", w, describe(pr), pr.Value, describe(*top), top.Value)
		}
	}
}
