// Package model is the sequential specification a Jepsen run's history is
// checked against with porcupine: one workload's fenced results log, an
// append-only sequence of "COUNT@TAG" values. Incrs append; reads return
// the log after its trim point.
//
// The server keeps only the newest entries of a log (fsm.MaxResults of
// them, fsm.MaxResultBytes of values) and says, with every read, how many
// it trimmed and through which Raft index. The model keeps the whole log;
// a read must show exactly the entries after the trim point, and the
// entries before it must fit: each at or below the trim index, and no
// more of them than the server trimmed. So a long run is checked in full
// except for what no read ever showed: the counts and order of entries
// trimmed before any read saw them.
package model

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"
)

// entry is one value of the modelled log. A zero index or a false
// hasCount means "not known yet": an append of unknown outcome that no
// read has shown. Reads fill them in (see step).
type entry struct {
	tag      string
	count    int64
	hasCount bool
	index    uint64
}

// logState is the modelled log, as a persistent list: appending shares
// the older entries, so a step costs O(1) instead of a copy of the log.
// nil is the empty log. Steps never modify a logState.
type logState = *node

// node is the last entry of a log and the log before it.
type node struct {
	prev    *node
	e       entry
	n       int    // entries up to and including this one
	h       uint64 // hash of those entries, in order
	lastIdx uint64 // the greatest known index among them
}

func length(s logState) int {
	if s == nil {
		return 0
	}
	return s.n
}

// push returns s with e appended.
func push(s logState, e entry) logState {
	nd := &node{prev: s, e: e, n: 1, h: e.hash(), lastIdx: e.index}
	if s != nil {
		nd.n = s.n + 1
		nd.h = s.h*1099511628211 ^ e.hash()
		nd.lastIdx = max(s.lastIdx, e.index)
	}
	return nd
}

// entries returns s's entries, oldest first.
func entries(s logState) []entry {
	out := make([]entry, length(s))
	for nd := s; nd != nil; nd = nd.prev {
		out[nd.n-1] = nd.e
	}
	return out
}

// build is the log of es.
func build(es []entry) logState {
	var s logState
	for _, e := range es {
		s = push(s, e)
	}
	return s
}

func (e entry) hash() uint64 {
	h := fnv.New64a()
	h.Write([]byte(e.tag))
	var b [17]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(e.count))
	binary.LittleEndian.PutUint64(b[8:], e.index)
	if e.hasCount {
		b[16] = 1
	}
	h.Write(b[:])
	return h.Sum64()
}

// appendIn is the input of an incr: it appends e.
type appendIn struct{ e entry }

// readIn is the input of a read; its output is a readOut.
type readIn struct{}

// readOut is what a read returned: the entries kept and the trim point
// before them (how many entries were trimmed, and the Raft index of the
// newest of them).
type readOut struct {
	trimmed, through uint64
	log              []entry
}

// opMeta names the history op behind a porcupine operation.
type opMeta struct {
	id     int
	host   string
	epoch  uint64
	status string
}

// ResultsLog is the porcupine model of one workload's results log.
func ResultsLog() porcupine.Model {
	return porcupine.Model{
		Init:                      func() any { return logState(nil) },
		Step:                      step,
		Equal:                     equal,
		Hash:                      hash,
		DescribeOperation:         describeOp,
		DescribeState:             func(s any) string { return describeLog(entries(s.(logState))) },
		DescribeOperationMetadata: describeMeta,
	}
}

func step(state, input, output any) (bool, any) {
	s := state.(logState)
	switch in := input.(type) {
	case appendIn:
		return appendStep(s, in.e)
	case readIn:
		return readStep(s, output.(readOut))
	}
	return false, s
}

// appendStep appends e. A known Raft index must exceed every known index
// already in the log, since the log is ordered by index: this prunes
// wrong orders of concurrent appends at once instead of at the next read.
func appendStep(s logState, e entry) (bool, any) {
	if e.index != 0 && s != nil && s.lastIdx >= e.index {
		return false, s
	}
	return true, push(s, e)
}

// readStep accepts a read that shows exactly the modelled log after its
// trim point. The modelled entries before the kept ones are those the
// server trimmed: none may have an index above the trim index, and there
// may be no more of them than the server trimmed (fewer is fine: appends
// of unknown outcome that no read showed are not modelled). Counts and
// indices the model does not know yet are taken from the read: the append
// chose them, and nothing observed them before.
func readStep(s logState, got readOut) (bool, any) {
	cut := length(s) - len(got.log) // the modelled entries trimmed
	if cut < 0 || uint64(cut) > got.trimmed {
		return false, s
	}
	es := entries(s)
	for _, e := range es[:cut] {
		if e.index > got.through {
			return false, s
		}
	}
	refine := false
	for i, e := range es[cut:] {
		g := got.log[i]
		if g.index <= got.through || e.tag != g.tag || (e.hasCount && (!g.hasCount || e.count != g.count)) ||
			(e.index != 0 && e.index != g.index) {
			return false, s
		}
		refine = refine || e != g
	}
	if !refine {
		return true, s
	}
	return true, build(append(es[:cut:cut], got.log...))
}

func equal(a, b any) bool {
	x, y := a.(logState), b.(logState)
	for x != y {
		if x == nil || y == nil || x.n != y.n || x.h != y.h || x.e != y.e {
			return false
		}
		x, y = x.prev, y.prev
	}
	return true
}

func hash(state any) uint64 {
	if s := state.(logState); s != nil {
		return s.h
	}
	return 0
}

func describeOp(input, output any) string {
	switch in := input.(type) {
	case appendIn:
		return "append(" + describeEntry(in.e) + ")"
	case readIn:
		out := output.(readOut)
		if out.trimmed == 0 {
			return "read() → " + describeLog(out.log)
		}
		return fmt.Sprintf("read() → %d trimmed through #%d, then %s", out.trimmed, out.through, describeLog(out.log))
	}
	return fmt.Sprintf("%v → %v", input, output)
}

// describeLog shows a log's length and its last few values.
func describeLog(s []entry) string {
	const tail = 4
	var b strings.Builder
	fmt.Fprintf(&b, "%d: [", len(s))
	start := max(0, len(s)-tail)
	if start > 0 {
		b.WriteString("… ")
	}
	for i, e := range s[start:] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(describeEntry(e))
	}
	b.WriteString("]")
	return b.String()
}

func describeEntry(e entry) string {
	c := "?"
	if e.hasCount {
		c = strconv.FormatInt(e.count, 10)
	}
	if e.index == 0 {
		return c + "@" + e.tag
	}
	return fmt.Sprintf("%s@%s #%d", c, e.tag, e.index)
}

func describeMeta(info any) string {
	m, ok := info.(opMeta)
	if !ok {
		return fmt.Sprint(info)
	}
	return fmt.Sprintf("op %d %s on %s epoch %d", m.id, m.status, m.host, m.epoch)
}
