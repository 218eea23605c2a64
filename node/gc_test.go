package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/transfer"
)

// TestCheckpointGC: holder and standby keep the committed checkpoints
// (fsm.KeepCheckpoints) and collect older ones; once the workload is
// removed, they collect everything of it. The checkpoints travel over
// mutual TLS on TCP here (--transfer-network tcp).
func TestCheckpointGC(t *testing.T) {
	tc := newTestClusterWith(t, 0, func(c *Config) { c.TransferNetwork = transfer.NetworkTCP },
		peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"})
	ctx := context.Background()
	_, standby := startCounter(t, tc)
	for range 4 {
		if _, err := tc.node("a1").Checkpoint(ctx, "counter"); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func(node string) []uint64 {
		list, err := tc.node(node).store.List("counter")
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, c := range list {
			out = append(out, c.Manifest.Seq)
		}
		return out
	}
	for _, node := range []string{"a1", standby} {
		eventually(t, 5*time.Second, node+" keeps the committed", func() error { // its replica may lag a moment
			tc.node(node).gc.collect(0)
			if got := seqs(node); !slices.Equal(got, []uint64{3, 4}) {
				return fmt.Errorf("%s keeps %v after gc, want the committed [3 4]", node, got)
			}
			return nil
		})
	}
	if err := tc.node("a1").Remove(ctx, "counter"); err != nil {
		t.Fatal(err)
	}
	for _, node := range []string{"a1", standby} {
		eventually(t, 10*time.Second, node+" collects the removed workload", func() error {
			tc.node(node).gc.collect(0)
			if got := seqs(node); len(got) != 0 {
				return fmt.Errorf("%s keeps %v", node, got)
			}
			return nil
		})
	}
}
