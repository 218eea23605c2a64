package checker

import (
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
