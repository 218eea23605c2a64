package checker

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

// RecoveryObservation is what the runner saw after healing every fault.
type RecoveryObservation struct {
	// HealedAt is when the last fault was healed, since the run's start.
	HealedAt time.Duration
	// WorkloadsRunningAt is, per workload, the first time after the heal
	// it was seen running; a workload never seen is absent.
	WorkloadsRunningAt map[string]time.Duration
	// Leaders is, per host, the leader it reports at the end.
	Leaders map[string]string
	// Bound is how soon after the heal every workload must run again.
	Bound time.Duration
}

// Recovered checks that the cluster recovered: every fault was healed by
// HealedAt, every workload ran again within Bound of the heal, and every
// host reports the same non-empty leader. Figures: recovered workloads,
// the slowest recovery, and the leader.
func Recovered(rec RecoveryObservation, workloads []string, faults []history.Fault) Verdict {
	var p problems
	if rec.Bound <= 0 {
		p.add("RecoveryObservation.Bound is %v; set how soon workloads must run again", rec.Bound)
	}
	for _, f := range faults {
		if f.End == 0 || f.End > rec.HealedAt {
			p.add("fault %s (%s) started at %v was not healed by %v (end %v)", f.Kind, f.Detail, round(f.Start), round(rec.HealedAt), round(f.End))
		}
	}
	recovered := 0
	var slowest time.Duration
	for _, w := range workloads {
		at, ok := rec.WorkloadsRunningAt[w]
		if !ok {
			p.add("%s: never ran after the heal at %v", w, round(rec.HealedAt))
			continue
		}
		took := max(0, at-rec.HealedAt)
		slowest = max(slowest, took)
		if took > rec.Bound {
			p.add("%s: ran again %v after the heal, over the %v bound", w, round(took), rec.Bound)
			continue
		}
		recovered++
	}
	leader := agreedLeader(&p, rec.Leaders)
	return p.verdict(NameRecovered, map[string]any{
		"recovered": fmt.Sprintf("%d/%d", recovered, len(workloads)), "slowest": slowest, "leader": leader,
	})
}

// agreedLeader is the leader every host reports, or "" with a problem.
func agreedLeader(p *problems, leaders map[string]string) string {
	if len(leaders) == 0 {
		p.add("no host reported a leader")
		return ""
	}
	hosts := make([]string, 0, len(leaders))
	for h := range leaders {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	first := leaders[hosts[0]]
	agree := first != ""
	var views []string
	for _, h := range hosts {
		views = append(views, h+"→"+leaders[h])
		agree = agree && leaders[h] == first
	}
	if !agree {
		p.add("hosts do not agree on one leader: %s", strings.Join(views, ", "))
		return ""
	}
	return first
}
