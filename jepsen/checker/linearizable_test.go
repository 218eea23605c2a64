package checker

import (
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
