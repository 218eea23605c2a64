package node

import (
	"sync/atomic"
	"time"
)

// Clocks. A node reads two: the wall clock (Config.Now) for the times it
// records in Raft, shows in the API and compares with the clouds'
// deadlines, and the boot-time clock (Config.Mono, internal/monotime) for
// everything that keeps the fence safe: its own lease, the leader's view
// of every node's lease, the delay before a lost holder's workloads move.
// A step of the wall clock (NTP, an operator, the Jepsen clock-jump
// nemesis) can then make a node misjudge a deadline but never run a
// workload twice.

// jumpClock is the wall clock a test can step (Config.Unsafe.ClockControl,
// POST /v1/internal/clock): the real time plus an offset, stripped of
// Go's monotonic reading so that comparisons really use the stepped wall
// time, as a real clock step would make them.
type jumpClock struct{ offset atomic.Int64 }

func (c *jumpClock) Now() time.Time {
	return time.Now().Add(time.Duration(c.offset.Load())).Round(0)
}
