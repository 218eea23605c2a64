package checker

import (
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

func TestLinearizable(t *testing.T) {
	a := incr(0, 0, 10, "h1", 1, 1, "a", 10)
	b := incr(1, 20, 30, "h1", 1, 2, "b", 11)
	lostC := history.Op{ID: 2, Kind: history.KindIncr, Workload: wl, Invoke: ms(20), Complete: ms(30), Outcome: history.Unknown, Tag: "c"}
	for _, tc := range []struct {
		name string
		ops  []history.Op
		pass bool
		want []string
	}{
		{"good", []history.Op{a, b, read(3, 40, 50, ent(10, 1, "1@a"), ent(11, 1, "2@b"))}, true, nil},
		{"unknown incr appears", []history.Op{a, lostC, read(3, 40, 50, ent(10, 1, "1@a"), ent(11, 1, "2@c"))}, true, nil},
		{"unknown incr does not appear", []history.Op{a, lostC, read(3, 40, 50, ent(10, 1, "1@a"))}, true, nil},
		{"read misses an acked append", []history.Op{a, b, read(3, 40, 50, ent(10, 1, "1@a"))}, false,
			[]string{"w1: not linearizable", "misses acked op 1"}},
		{"read shows an append never invoked", []history.Op{a, read(3, 40, 50, ent(10, 1, "1@a"), ent(11, 1, "2@x"))}, false,
			[]string{"which no incr sent"}},
		{"untagged incr", []history.Op{incr(0, 0, 10, "h1", 1, 1, "", 10)}, false, []string{"cannot check"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Linearizable(tc.ops, wls, 10*time.Second)
			expect(t, v, tc.pass, tc.want...)
			if tc.pass && len(v.Results) != 1 {
				t.Fatalf("%d results; want 1", len(v.Results))
			}
		})
	}
}

// TestLinearizableTrimmed: reads of a trimmed log are checked, not
// refused: a history whose trimmed entries add up passes and says what was
// trimmed; one whose trim point hides a lost ack fails.
func TestLinearizableTrimmed(t *testing.T) {
	a := incr(0, 0, 10, "h1", 1, 1, "a", 10)
	b := incr(1, 20, 30, "h1", 1, 2, "b", 11)
	c := incr(2, 40, 50, "h1", 1, 3, "c", 12)
	for _, tc := range []struct {
		name string
		ops  []history.Op
		pass bool
		want []string
	}{
		{"trimmed entries add up", []history.Op{a, read(3, 31, 32, ent(10, 1, "1@a"), ent(11, 1, "2@b")), b, c,
			trim(read(4, 60, 70, ent(12, 1, "3@c")), 2, 11)}, true, nil},
		{"a lost ack under the trim point", []history.Op{a, b, c, trim(read(4, 60, 70, ent(12, 1, "3@c")), 1, 11)},
			false, []string{"w1: not linearizable"}},
		{"a lost ack above the trim point", []history.Op{a, b, c, trim(read(4, 60, 70, ent(12, 1, "3@c")), 1, 10)},
			false, []string{"w1: not linearizable", "misses acked op 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Linearizable(tc.ops, wls, 10*time.Second)
			expect(t, v, tc.pass, tc.want...)
			if tc.pass {
				figure(t, v, "trimmed", uint64(2))
				if len(v.Notes) != 1 || !strings.Contains(v.Notes[0], "trimmed of its 2 oldest entries, through index 11") {
					t.Fatalf("notes %q; want the trim point", v.Notes)
				}
			}
		})
	}
}
