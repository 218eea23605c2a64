package checker

import (
	"fmt"

	"github.com/lifeboat/lifeboat/jepsen/history"
	"github.com/lifeboat/lifeboat/jepsen/model"
)

// NoLostAcks checks that every acknowledged incr survived: its
// "COUNT@TAG" is in the workload's final read (its last ok read by
// invocation, which the runner performs after healing and stopping
// traffic), with the count it answered and, if it reported one, its
// epoch; or the log provably trimmed it: its Raft index (from its ack,
// or from any read that showed it) is at or below the final read's trim
// index. The trim point must also add up: no more distinct entries may be
// known at or below the trim index (acked, or shown by any read) than the
// log says it trimmed. Incrs that completed after the final read was
// invoked are not checked (figure "late"). A workload with acked incrs
// and no ok read fails. Figures: acked, found, trimmed, lost, late; a
// note names each workload's trim point.
func NoLostAcks(ops []history.Op, workloads []string) Verdict {
	var p problems
	var t ackTally
	var notes []string
	for _, w := range workloads {
		incrs := pick(ops, w, history.KindIncr, history.Ok)
		final, ok := finalRead(ops, w)
		if !ok {
			if len(incrs) > 0 {
				p.add("%s: %d acked incrs and no ok read to find them in", w, len(incrs))
				t.acked += len(incrs)
			}
			continue
		}
		if final.Trimmed > 0 {
			notes = append(notes, fmt.Sprintf("%s: the final read %s found the log trimmed of its %d oldest entries, through index %d",
				w, describe(final), final.Trimmed, final.TrimmedThrough))
		}
		t.check(&p, w, incrs, final, readIndices(ops, w))
		checkTrimCount(&p, w, ops, final)
	}
	v := p.verdict(NameNoLostAcks, map[string]any{"acked": t.acked, "found": t.found, "trimmed": t.trimmed,
		"lost": t.acked - t.found - t.trimmed, "late": t.late})
	v.Notes = notes
	return v
}

// ackTally counts NoLostAcks' acks by what became of them.
type ackTally struct{ acked, found, trimmed, late int }

// check looks for each of workload w's acked incrs in its final read,
// adding a problem for each that is neither there nor provably trimmed.
// indices are the Raft indices reads showed, by tag.
func (t *ackTally) check(p *problems, w string, incrs []history.Op, final history.Op, indices map[string]uint64) {
	log := map[string]history.Entry{}
	for _, e := range final.Log {
		if _, tag, ok := model.ParseValue(e.Value); ok {
			log[tag] = e
		}
	}
	for _, op := range incrs {
		if op.Complete > final.Invoke {
			t.late++
			continue
		}
		t.acked++
		index := op.Index
		if index == 0 {
			index = indices[op.Tag]
		}
		switch {
		case op.Tag == "":
			p.add("%s: acked %s has no tag", w, describe(op))
		case findAck(p, w, op, log):
			t.found++
		case index != 0 && index <= final.TrimmedThrough:
			t.trimmed++
		default:
			p.add("%s: acked %s (%s) is not in the final read %s%s", w, describe(op), model.IncrValue(op), describe(final),
				whyNotTrimmed(final, index))
		}
	}
}

// whyNotTrimmed says why an acked entry missing from the final read
// cannot have been trimmed, if the read trimmed anything.
func whyNotTrimmed(final history.Op, index uint64) string {
	switch {
	case final.Trimmed == 0:
		return ""
	case index == 0:
		return fmt.Sprintf(", which trimmed through index %d, and neither its ack nor any read gave its index", final.TrimmedThrough)
	}
	return fmt.Sprintf(", which trimmed only through index %d, below its index %d", final.TrimmedThrough, index)
}

// findAck reports whether acked op is in the final read's log, adding a
// problem if the log has it with another count or epoch.
func findAck(p *problems, w string, op history.Op, log map[string]history.Entry) bool {
	e, ok := log[op.Tag]
	switch {
	case !ok:
		return false
	case e.Value != model.IncrValue(op):
		p.add("%s: acked %s answered %d but the log has %q at index %d", w, describe(op), op.Value, e.Value, e.Index)
	case op.Epoch != 0 && e.Epoch != op.Epoch:
		p.add("%s: acked %s is in the log under epoch %d at index %d", w, describe(op), e.Epoch, e.Index)
	}
	return true
}

// readIndices maps each tag workload w's ok reads show to its index.
func readIndices(ops []history.Op, w string) map[string]uint64 {
	indices := map[string]uint64{}
	for _, r := range pick(ops, w, history.KindRead, history.Ok) {
		for _, e := range r.Log {
			if _, tag, ok := model.ParseValue(e.Value); ok {
				indices[tag] = e.Index
			}
		}
	}
	return indices
}

// checkTrimCount adds a problem when more distinct entries of workload w
// are known at or below the final read's trim index, acked or shown by
// any read, than the log says it trimmed: some of them were never in it,
// though their index says they would have been trimmed.
func checkTrimCount(p *problems, w string, ops []history.Op, final history.Op) {
	through := final.TrimmedThrough
	if through == 0 {
		return
	}
	below := map[uint64]bool{}
	for _, op := range ops {
		if op.Workload != w || op.Outcome != history.Ok {
			continue
		}
		if op.Kind == history.KindIncr && op.Index != 0 && op.Index <= through {
			below[op.Index] = true
		}
		for _, e := range op.Log {
			if e.Index <= through {
				below[e.Index] = true
			}
		}
	}
	if n := uint64(len(below)); n > final.Trimmed {
		p.add("%s: the final read %s says the log trimmed %d entries through index %d, but %d distinct entries at or below it were acked or read: at least %d of them were lost",
			w, describe(final), final.Trimmed, through, n, n-final.Trimmed)
	}
}

// finalRead is workload w's last ok read by invocation (then completion).
func finalRead(ops []history.Op, w string) (history.Op, bool) {
	var last history.Op
	found := false
	for _, op := range pick(ops, w, history.KindRead, history.Ok) {
		if !found || op.Invoke > last.Invoke || (op.Invoke == last.Invoke && op.Complete > last.Complete) {
			last, found = op, true
		}
	}
	return last, found
}
