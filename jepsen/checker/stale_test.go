package checker

import (
	"testing"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

func TestStaleRejected(t *testing.T) {
	good := read(0, 100, 110, ent(10, 1, "1@a"), ent(11, 1, "2@b"), ent(14, 2, "3@c"))
	for _, tc := range []struct {
		name     string
		ops      []history.Op
		pass     bool
		want     []string
		rejected int
	}{
		{"fenced", []history.Op{good, stale(1, history.Fail, 409, "stale-1"), stale(2, history.Fail, 503, "stale-2"),
			stale(3, history.Unknown, 0, "stale-3")}, true, nil, 1},
		{"no stale attempts", []history.Op{good}, true, nil, 0},
		{"accepted", []history.Op{good, stale(1, history.Ok, 200, "stale-1")}, false, []string{"stale op 1", "was accepted"}, 0},
		{"got in though unknown", []history.Op{read(0, 100, 110, ent(10, 2, "1@a"), ent(11, 2, "stale-1")),
			stale(1, history.Unknown, 0, "stale-1")}, false, []string{"got in", "index 11"}, 0},
		{"older epoch after newer", []history.Op{read(0, 100, 110, ent(10, 2, "1@a"), ent(11, 1, "2@b"))}, false,
			[]string{"under epoch 1 at index 11 after epoch 2 at index 10"}, 0},
		{"index goes back", []history.Op{read(0, 100, 110, ent(11, 1, "1@a"), ent(10, 1, "2@b"))}, false,
			[]string{"index 10 after 11"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := StaleRejected(tc.ops, wls)
			expect(t, v, tc.pass, tc.want...)
			figure(t, v, "rejected_409", tc.rejected)
		})
	}
}
