package checker

import (
	"github.com/lifeboat/lifeboat/jepsen/history"
	"github.com/lifeboat/lifeboat/jepsen/model"
)

// NoLostAcks checks that every acknowledged incr survived: its
// "COUNT@TAG" is in the workload's final read (its last ok read by
// invocation, which the runner performs after healing and stopping
// traffic), with the count it answered and, if it reported one, its
// epoch. Incrs that completed after the final read was invoked are not
// checked (figure "late"). A workload with acked incrs and no ok read
// fails. Figures: acked, found, lost, late.
func NoLostAcks(ops []history.Op, workloads []string) Verdict {
	var p problems
	acked, found, late := 0, 0, 0
	for _, w := range workloads {
		incrs := pick(ops, w, history.KindIncr, history.Ok)
		final, ok := finalRead(ops, w)
		if !ok {
			if len(incrs) > 0 {
				p.add("%s: %d acked incrs and no ok read to find them in", w, len(incrs))
				acked += len(incrs)
			}
			continue
		}
		log := map[string]history.Entry{}
		for _, e := range final.Log {
			if _, tag, ok := model.ParseValue(e.Value); ok {
				log[tag] = e
			}
		}
		for _, op := range incrs {
			if op.Complete > final.Invoke {
				late++
				continue
			}
			acked++
			if findAck(&p, w, op, log, final) {
				found++
			}
		}
	}
	return p.verdict(NameNoLostAcks, map[string]any{"acked": acked, "found": found, "lost": acked - found, "late": late})
}

// findAck reports whether acked op is in the final read's log, adding a
// problem if not or if the log has it with another count or epoch.
func findAck(p *problems, w string, op history.Op, log map[string]history.Entry, final history.Op) bool {
	if op.Tag == "" {
		p.add("%s: acked %s has no tag", w, describe(op))
		return false
	}
	e, ok := log[op.Tag]
	switch {
	case !ok:
		p.add("%s: acked %s (%s) is not in the final read %s", w, describe(op), model.IncrValue(op), describe(final))
		return false
	case e.Value != model.IncrValue(op):
		p.add("%s: acked %s answered %d but the log has %q at index %d", w, describe(op), op.Value, e.Value, e.Index)
	case op.Epoch != 0 && e.Epoch != op.Epoch:
		p.add("%s: acked %s is in the log under epoch %d at index %d", w, describe(op), e.Epoch, e.Index)
	}
	return true
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
