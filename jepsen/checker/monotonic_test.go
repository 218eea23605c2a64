package checker

import (
	"testing"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

func TestMonotonic(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []history.Op
		pass bool
		want []string
	}{
		{"counts rise", []history.Op{
			incr(0, 0, 10, "h1", 1, 1, "a", 10), incr(1, 20, 30, "h1", 1, 2, "b", 11),
			probe(2, 35, 36, "h1", 1, 2), incr(3, 40, 50, "h2", 2, 3, "c", 13), probe(4, 60, 61, "h2", 2, 3),
		}, true, nil},
		{"concurrent incrs in either order", []history.Op{
			incr(0, 0, 30, "h1", 1, 2, "a", 11), incr(1, 5, 20, "h1", 1, 1, "b", 10), incr(2, 40, 50, "h1", 1, 3, "c", 12),
		}, true, nil},
		{"frozen old holder shows an older count", []history.Op{
			incr(0, 0, 10, "h1", 1, 1, "a", 10), incr(1, 20, 30, "h2", 2, 2, "b", 12),
			probe(2, 40, 41, "h1", 1, 1),
		}, true, nil},
		{"count goes back after a move", []history.Op{
			incr(0, 0, 10, "h1", 1, 5, "a", 10), incr(1, 20, 30, "h2", 2, 3, "b", 12),
		}, false, []string{"op 1 (incr on h2, epoch 2", "answered 3 after op 0"}},
		{"count repeats", []history.Op{
			incr(0, 0, 10, "h1", 1, 5, "a", 10), incr(1, 20, 30, "h1", 1, 5, "b", 11),
		}, false, []string{"answered 5 after"}},
		{"probe behind", []history.Op{
			incr(0, 0, 10, "h1", 1, 5, "a", 10), probe(1, 20, 21, "h2", 2, 4),
		}, false, []string{"probe op 1", "showed 4 after op 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, Monotonic(tc.ops, wls), tc.pass, tc.want...)
		})
	}
}
