package checker

import (
	"strings"
	"testing"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

func TestNoLostAcks(t *testing.T) {
	a := incr(0, 0, 10, "h1", 1, 1, "a", 10)
	b := incr(1, 20, 30, "h2", 2, 2, "b", 12)
	late := incr(2, 90, 110, "h2", 2, 3, "c", 13)
	for _, tc := range []struct {
		name  string
		ops   []history.Op
		pass  bool
		want  []string
		found int
	}{
		{"all found", []history.Op{a, b, read(3, 40, 50), late,
			read(4, 100, 120, ent(10, 1, "1@a"), ent(12, 2, "2@b"))}, true, nil, 2},
		{"lost", []history.Op{a, b, read(4, 100, 120, ent(10, 1, "1@a"))}, false,
			[]string{"acked op 1", "(2@b) is not in the final read op 4"}, 1},
		{"only an earlier read has it", []history.Op{a, read(3, 40, 50, ent(10, 1, "1@a")), read(4, 100, 120)}, false,
			[]string{"(1@a) is not in the final read op 4"}, 0},
		{"other count", []history.Op{a, read(4, 100, 120, ent(10, 1, "7@a"))}, false,
			[]string{"answered 1 but the log has \"7@a\""}, 1},
		{"other epoch", []history.Op{a, read(4, 100, 120, ent(10, 3, "1@a"))}, false,
			[]string{"under epoch 3"}, 1},
		{"no read", []history.Op{a}, false, []string{"no ok read"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := NoLostAcks(tc.ops, wls)
			expect(t, v, tc.pass, tc.want...)
			figure(t, v, "found", tc.found)
		})
	}
	v := NoLostAcks([]history.Op{a, b, late, read(4, 100, 120, ent(10, 1, "1@a"), ent(12, 2, "2@b"))}, wls)
	figure(t, v, "acked", 2)
	figure(t, v, "late", 1)
	figure(t, v, "lost", 0)
}

// trim gives read r the trim point: trimmed entries through index through.
func trim(r history.Op, trimmed, through uint64) history.Op {
	r.Trimmed, r.TrimmedThrough = trimmed, through
	return r
}

// TestNoLostAcksTrimmed: an ack whose entry the log provably trimmed (its
// index, from its ack or a read, is at or below the final read's trim
// index) is not lost, and the verdict says what was trimmed; an ack that
// cannot be shown trimmed is lost, and so is one hidden below the trim
// index when the trim count cannot cover it.
func TestNoLostAcksTrimmed(t *testing.T) {
	a := incr(0, 0, 10, "h1", 1, 1, "a", 10)
	b := incr(1, 20, 30, "h1", 1, 2, "b", 12)
	c := incr(2, 40, 50, "h1", 1, 3, "c", 13)
	unindexed := a
	unindexed.Index = 0
	b11 := b
	b11.Index = 11
	for _, tc := range []struct {
		name           string
		ops            []history.Op
		pass           bool
		want           []string
		found, trimmed int
	}{
		{"trimmed acks are not lost", []history.Op{a, b, c, trim(read(4, 100, 120, ent(13, 1, "3@c")), 2, 12)}, true, nil, 1, 2},
		{"an ack's index from an earlier read", []history.Op{unindexed, read(3, 35, 36, ent(10, 1, "1@a")), c,
			trim(read(4, 100, 120, ent(13, 1, "3@c")), 1, 10)}, true, nil, 1, 1},
		{"an ack with no index to show it trimmed", []history.Op{unindexed, c, trim(read(4, 100, 120, ent(13, 1, "3@c")), 1, 10)},
			false, []string{"(1@a) is not in the final read op 4", "neither its ack nor any read gave its index"}, 1, 0},
		{"an ack above the trim index", []history.Op{a, b, c, trim(read(4, 100, 120, ent(13, 1, "3@c")), 1, 10)},
			false, []string{"(2@b) is not in the final read op 4", "trimmed only through index 10, below its index 12"}, 1, 1},
		{"more acks below the trim index than it trimmed", []history.Op{a, b11, c, trim(read(4, 100, 120, ent(13, 1, "3@c")), 1, 11)},
			false, []string{"trimmed 1 entries through index 11, but 2 distinct entries", "at least 1 of them were lost"}, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := NoLostAcks(tc.ops, wls)
			expect(t, v, tc.pass, tc.want...)
			figure(t, v, "found", tc.found)
			figure(t, v, "trimmed", tc.trimmed)
			if len(v.Notes) != 1 || !strings.Contains(v.Notes[0], "trimmed of its") {
				t.Fatalf("notes %q; want the final read's trim point", v.Notes)
			}
		})
	}
}
