package node

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
)

// TestResultsTrimmed: a node's appends carry the total bound, so a log
// filled past fsm.MaxResultBytes loses its oldest entries, and a read
// says how many and through which index. One peer, so that a megabyte of
// appends does not also cross a network.
func TestResultsTrimmed(t *testing.T) {
	tc := newTestClusterWith(t, 0, func(c *Config) { c.Voters, c.BootstrapExpect = 1, 1 }, peerSpec{"s1", "a"})
	n := tc.node("s1")
	ctx := context.Background()
	spec := fsm.WorkloadSpec{ID: "w1", Command: []string{"/bin/true"}, Checkpoint: fsm.CheckpointPolicy{Mode: fsm.ModeNone}}
	eventually(t, 20*time.Second, "submitted", func() error { _, err := n.Submit(ctx, spec); return err })
	var epoch uint64
	eventually(t, 10*time.Second, "granted", func() error {
		w, err := n.Workload(ctx, "w1")
		if epoch = w.Epoch; err != nil || epoch == 0 {
			return fmt.Errorf("%+v %v", w, err)
		}
		return nil
	})
	const appends = fsm.MaxResultBytes/api.MaxResult + 2 // 18: two over the bound
	var indices []uint64
	for i := range appends {
		r, err := n.AppendResult(ctx, "w1", epoch, strings.Repeat(string(rune('a'+i)), api.MaxResult))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		indices = append(indices, r.Index)
	}
	l, err := n.Results(ctx, "w1")
	if err != nil || l.Trimmed != 2 || l.TrimmedThrough != indices[1] || len(l.Results) != appends-2 || l.Results[0].Index != indices[2] {
		t.Fatalf("after %d appends of %d bytes: trimmed %d through %d, %d kept (%v); want 2 through index %d and %d kept from %d",
			appends, api.MaxResult, l.Trimmed, l.TrimmedThrough, len(l.Results), err, indices[1], appends-2, indices[2])
	}
}
