package checker

import (
	"net/http"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

// StaleRejected checks the fence. In every ok read, entries' indices
// increase and their epochs never decrease (no stale epoch got in after a
// newer one). Every stale op was refused: an ok one is a violation, and so
// is a stale op's value (its Tag) showing up in any read, whatever its
// recorded outcome. Figures: stale attempts, rejected_409 (the fence was
// exercised), refused_other (failed with another status), unknown, and
// the reads checked. Pass does not require any stale attempt: the runner
// decides whether zero rejections is acceptable.
func StaleRejected(ops []history.Op, workloads []string) Verdict {
	var p problems
	figures := map[string]any{}
	attempts, rejected, other, unknown, reads := 0, 0, 0, 0, 0
	for _, w := range workloads {
		rs := pick(ops, w, history.KindRead, history.Ok)
		reads += len(rs)
		for _, r := range rs {
			checkOrder(&p, w, r)
		}
		for _, op := range ops {
			if op.Workload != w || op.Kind != history.KindStale {
				continue
			}
			attempts++
			switch {
			case op.Outcome == history.Ok:
				p.add("%s: stale %s was accepted (status %d)", w, describe(op), op.Status)
			case op.Outcome == history.Fail && op.Status == http.StatusConflict:
				rejected++
			case op.Outcome == history.Fail:
				other++
			default:
				unknown++
			}
			checkAbsent(&p, w, op, rs)
		}
	}
	figures["attempts"], figures["rejected_409"], figures["refused_other"] = attempts, rejected, other
	figures["unknown"], figures["reads"] = unknown, reads
	return p.verdict(NameStaleRejected, figures)
}

// checkOrder adds a problem where read r's log goes back in index or epoch.
func checkOrder(p *problems, w string, r history.Op) {
	for i := 1; i < len(r.Log); i++ {
		prev, e := r.Log[i-1], r.Log[i]
		if e.Index <= prev.Index {
			p.add("%s: read %s has index %d after %d", w, describe(r), e.Index, prev.Index)
		}
		if e.Epoch < prev.Epoch {
			p.add("%s: read %s has %q under epoch %d at index %d after epoch %d at index %d",
				w, describe(r), e.Value, e.Epoch, e.Index, prev.Epoch, prev.Index)
		}
	}
}

// checkAbsent adds a problem if stale op's value is in any of reads.
func checkAbsent(p *problems, w string, op history.Op, reads []history.Op) {
	if op.Tag == "" {
		return
	}
	for _, r := range reads {
		for _, e := range r.Log {
			if e.Value == op.Tag {
				p.add("%s: stale %s got in: read %s has %q at index %d", w, describe(op), describe(r), e.Value, e.Index)
				return
			}
		}
	}
}
