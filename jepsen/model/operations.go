package model

import (
	"fmt"

	"github.com/anishathalye/porcupine"
	"github.com/lifeboat/lifeboat/jepsen/history"
)

// operations turns workload's ops into porcupine operations, and counts
// the unknown incrs it drops because no read shows them.
func operations(ops []history.Op, workload string) ([]porcupine.Operation, int, error) {
	var mine []history.Op
	for _, op := range ops {
		if op.Workload == workload && modelled(op) {
			mine = append(mine, op)
		}
	}
	seen := observed(mine)
	end := endOf(mine)
	clients := clientIndex(mine)
	var out []porcupine.Operation
	dropped := 0
	for _, op := range mine {
		po, keep, err := operation(op, seen, end)
		if err != nil {
			return nil, 0, err
		}
		if !keep {
			dropped++
			continue
		}
		po.ClientId = clients[op.Client]
		out = append(out, po)
	}
	return out, dropped, nil
}

// modelled reports whether op is part of the model: ok or unknown incrs
// and ok reads.
func modelled(op history.Op) bool {
	switch op.Kind {
	case history.KindIncr:
		return op.Outcome == history.Ok || op.Outcome == history.Unknown
	case history.KindRead:
		return op.Outcome == history.Ok
	}
	return false
}

// observed maps each tag any read shows to the entry it was first seen
// as.
func observed(ops []history.Op) map[string]entry {
	seen := map[string]entry{}
	for _, op := range ops {
		if op.Kind != history.KindRead {
			continue
		}
		for _, e := range op.Log {
			m := entryOf(e)
			if _, ok := seen[m.tag]; !ok {
				seen[m.tag] = m
			}
		}
	}
	return seen
}

// operation is op as a porcupine operation; keep is false for an unknown
// incr that no read shows.
func operation(op history.Op, seen map[string]entry, end int64) (porcupine.Operation, bool, error) {
	meta := opMeta{id: op.ID, host: op.Host, epoch: op.Epoch, status: op.Outcome}
	po := porcupine.Operation{Call: int64(op.Invoke), Return: int64(op.Complete), Metadata: meta}
	if op.Kind == history.KindRead {
		po.Input, po.Output = readIn{}, readOut{trimmed: op.Trimmed, through: op.TrimmedThrough, log: logOf(op.Log)}
		return po, true, nil
	}
	if op.Tag == "" {
		return po, false, fmt.Errorf("incr op %d: %w", op.ID, ErrUntagged)
	}
	e := entry{tag: op.Tag}
	if op.Outcome == history.Ok {
		e.count, e.hasCount, e.index = op.Value, true, op.Index
		if s, ok := seen[op.Tag]; ok && e.index == 0 {
			// Unrecorded: the index a read shows is the only one a
			// linearization can give it, and knowing it early keeps
			// the search from trying every order of concurrent appends.
			e.index = s.index
		}
	} else {
		s, ok := seen[op.Tag]
		if !ok {
			return po, false, nil
		}
		// The append happened, as the read shows: its count and index
		// are the read's, whichever linearization is chosen.
		e = s
		po.Return = end
	}
	po.Input = appendIn{e}
	return po, true, nil
}

// entryOf is a results-log entry as the model sees it. A value not of the
// form COUNT@TAG gets a tag no client can send.
func entryOf(e history.Entry) entry {
	count, tag, ok := ParseValue(e.Value)
	if !ok {
		return entry{tag: "\x00" + e.Value, index: e.Index}
	}
	return entry{tag: tag, count: count, hasCount: true, index: e.Index}
}

func logOf(es []history.Entry) []entry {
	s := make([]entry, len(es))
	for i, e := range es {
		s[i] = entryOf(e)
	}
	return s
}

// endOf is a time after every op: when unknown ops complete.
func endOf(ops []history.Op) int64 {
	var end int64
	for _, op := range ops {
		end = max(end, int64(op.Invoke), int64(op.Complete))
	}
	return end + 1
}

// clientIndex numbers clients from zero, as the visualization needs.
func clientIndex(ops []history.Op) map[int]int {
	idx := map[int]int{}
	for _, op := range ops {
		if _, ok := idx[op.Client]; !ok {
			idx[op.Client] = len(idx)
		}
	}
	return idx
}
