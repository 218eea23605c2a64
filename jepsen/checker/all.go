package checker

import (
	"time"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

// LinearizableTimeout is how long All lets porcupine search per workload.
const LinearizableTimeout = time.Minute

// All runs every checker over one run, in a fixed order. Workloads are
// those the run drove; if none are given, those the ops touch.
func All(ops []history.Op, faults []history.Fault, rec RecoveryObservation, workloads []string) []Verdict {
	if len(workloads) == 0 {
		workloads = Workloads(ops)
	}
	return []Verdict{
		Linearizable(ops, workloads, LinearizableTimeout),
		SingleServer(ops, workloads),
		NoLostAcks(ops, workloads),
		StaleRejected(ops, workloads),
		Monotonic(ops, workloads),
		Recovered(rec, workloads, faults),
	}
}

// Passed reports whether every verdict passed.
func Passed(vs []Verdict) bool {
	for _, v := range vs {
		if !v.Pass {
			return false
		}
	}
	return true
}
