package checker

import (
	"fmt"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/history"
	"github.com/lifeboat/lifeboat/jepsen/model"
)

// Linearizable checks each workload's incrs and reads against the
// results-log model (see model.CheckLinearizable), trim points included.
// A workload whose check times out fails too: it was not verified. A
// history that cannot be checked (an incr without a tag) fails with the
// reason. Figures: workloads, ops, unknown_unseen, timed_out and trimmed
// (the entries the logs had trimmed by their last reads, which were
// checked by count and index only); a note names each workload's trim
// point.
func Linearizable(ops []history.Op, workloads []string, timeout time.Duration) Verdict {
	var p problems
	var results []model.Result
	var notes []string
	checked, timedOut, dropped := 0, 0, 0
	var trimmed uint64
	for _, w := range workloads {
		res, err := model.CheckLinearizable(ops, w, timeout)
		if err != nil {
			p.add("%s: cannot check: %v", w, err)
			continue
		}
		results = append(results, res)
		checked += res.Ops
		dropped += res.Dropped
		trimmed += res.Trimmed
		if res.Trimmed > 0 {
			notes = append(notes, fmt.Sprintf("%s: reads found the log trimmed of its %d oldest entries, through index %d: those were checked by count and index, not content",
				w, res.Trimmed, res.TrimmedThrough))
		}
		switch {
		case res.Unknown:
			timedOut++
			p.add("%s: not verified: porcupine timed out after %v over %d ops", w, timeout, res.Ops)
		case !res.Ok:
			p.add("%s: not linearizable over %d ops (see the visualization)", w, res.Ops)
			explain(&p, ops, w)
		}
	}
	v := p.verdict(NameLinearizable, map[string]any{
		"workloads": len(workloads), "ops": checked, "unknown_unseen": dropped, "timed_out": timedOut, "trimmed": trimmed,
	})
	v.Results, v.Notes = results, notes
	return v
}

// explain adds the plain reasons a workload's reads are wrong: values no
// incr sent or a failed one sent, and acked appends missing from a read
// invoked after they completed that it cannot have trimmed. Porcupine
// finds subtler ones.
func explain(p *problems, ops []history.Op, w string) {
	indices := readIndices(ops, w)
	byTag := map[string]history.Op{}
	for _, op := range ops {
		if op.Workload == w && op.Kind == history.KindIncr && op.Tag != "" {
			byTag[op.Tag] = op
		}
	}
	for _, r := range pick(ops, w, history.KindRead, history.Ok) {
		shown := map[string]bool{}
		for _, e := range r.Log {
			_, tag, _ := model.ParseValue(e.Value)
			shown[tag] = true
			op, ok := byTag[tag]
			switch {
			case !ok:
				p.add("%s: read %s shows %q at index %d, which no incr sent", w, describe(r), e.Value, e.Index)
			case op.Outcome == history.Fail:
				p.add("%s: read %s shows %q of failed %s", w, describe(r), e.Value, describe(op))
			case op.Invoke > r.Complete:
				p.add("%s: read %s shows %q of %s invoked after it", w, describe(r), e.Value, describe(op))
			}
		}
		for _, a := range pick(ops, w, history.KindIncr, history.Ok) {
			if a.Complete < r.Invoke && !shown[a.Tag] && !maybeTrimmed(a, r, indices) {
				p.add("%s: read %s misses acked %s", w, describe(r), describe(a))
			}
		}
	}
}

// maybeTrimmed reports whether read r may have trimmed acked incr a: its
// index (from its ack or any read) is at or below r's trim index, or is
// unknown while r trimmed something.
func maybeTrimmed(a, r history.Op, indices map[string]uint64) bool {
	index := a.Index
	if index == 0 {
		index = indices[a.Tag]
	}
	if index == 0 {
		return r.Trimmed > 0
	}
	return index <= r.TrimmedThrough
}
