package checker

import (
	"testing"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

func TestSingleServer(t *testing.T) {
	t.Run("handover", func(t *testing.T) {
		ops := []history.Op{
			incr(0, 0, 10, "h1", 1, 1, "a", 10), probe(1, 5, 15, "h1", 1, 1),
			// Concurrent with the new holder's first answer: no order between them.
			probe(2, 20, 40, "h1", 1, 1), probe(3, 30, 35, "h2", 2, 1),
			incr(4, 50, 60, "h2", 2, 2, "b", 12),
		}
		v := SingleServer(ops, wls)
		expect(t, v, true)
		figure(t, v, "ops", 5)
		figure(t, v, "pairs", 0)
	})
	t.Run("old holder serves after the new one", func(t *testing.T) {
		ops := []history.Op{
			probe(0, 0, 10, "h2", 2, 1),
			incr(1, 20, 30, "h2", 2, 2, "b", 12),
			probe(2, 25, 26, "h1", 1, 1), // after op 0 completed: 15ms overlap
			incr(3, 40, 50, "h1", 1, 2, "c", 13),
			probe(4, 60, 70, "h3", 3, 3),
		}
		v := SingleServer(ops, wls)
		expect(t, v, false, "op 2 (probe on h1, epoch 1", "after op 0 (probe on h2, epoch 2")
		// op 2 after op 0; op 3 after ops 0 and 1.
		figure(t, v, "pairs", 3)
		figure(t, v, "worst_overlap", ms(30))
	})
	t.Run("other workloads and unreported epochs", func(t *testing.T) {
		other := probe(0, 0, 10, "h2", 5, 1)
		other.Workload = "w2"
		ops := []history.Op{other, probe(1, 20, 30, "h1", 0, 1), probe(2, 20, 30, "h1", 1, 1)}
		expect(t, SingleServer(ops, wls), true)
	})
}
