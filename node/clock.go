package node

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/lifeboat/lifeboat/node/api"
)

// Clocks. A node reads two: the wall clock (Config.Now) for the times it
// records in Raft, shows in the API and compares with the clouds'
// deadlines, and the boot-time clock (Config.Mono, internal/monotime) for
// everything that keeps the fence safe: its own lease, the leader's view
// of every node's lease, the delay before a lost holder's workloads move.
// A step of the wall clock (NTP, an operator, the Jepsen clock-jump
// nemesis) can then make a node misjudge a deadline but never run a
// workload twice.

// jumpClock is the wall clock a test can step (Config.UnsafeClockControl,
// POST /v1/internal/clock): the real time plus an offset, stripped of
// Go's monotonic reading so that comparisons really use the stepped wall
// time, as a real clock step would make them.
type jumpClock struct{ offset atomic.Int64 }

func (c *jumpClock) Now() time.Time {
	return time.Now().Add(time.Duration(c.offset.Load())).Round(0)
}

// clockRequest sets the test clock's offset from the real time.
type clockRequest struct {
	// Offset such as "-30s"; "0s" puts the clock right.
	Offset string `json:"offset"`
}

// clockAnswer is the test clock after the change.
type clockAnswer struct {
	Offset string    `json:"offset"`
	Now    time.Time `json:"now"`
}

// maxClockJump bounds a test's clock offset: far enough for any lease,
// near enough that recorded times stay readable.
const maxClockJump = 24 * time.Hour

// clock steps the test clock (registered only with
// Config.UnsafeClockControl).
func (h peerHandler) clock(w http.ResponseWriter, r *http.Request) {
	n := h.n
	var req clockRequest
	if err := decodeJSON(r, 1024, "clock", &req); err != nil {
		api.WriteError(w, err)
		return
	}
	d, err := time.ParseDuration(req.Offset)
	if err != nil || d > maxClockJump || d < -maxClockJump {
		api.WriteError(w, fmt.Errorf("%w: clock: offset %q must be a duration within ±%v", api.ErrBadRequest, req.Offset, maxClockJump))
		return
	}
	old := time.Duration(n.testClock.offset.Swap(int64(d)))
	n.log.Warn("test clock stepped", "from_offset", old, "to_offset", d)
	writeJSON(w, clockAnswer{Offset: d.String(), Now: n.now()})
}
