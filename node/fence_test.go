package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// TestIsolatedHolderFencesBeforeRegrant: the holder is cut off from
// everyone. Its own lease timer runs out and it freezes the workload
// (SIGSTOP) before the leader re-grants the workload to the standby; a
// result sent under the old epoch is refused; once the link heals the old
// holder stops its copy and the new holder runs it from the last committed
// checkpoint, under a greater epoch.
func TestIsolatedHolderFencesBeforeRegrant(t *testing.T) {
	tc := newTestCluster(t, 0, peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"})
	ctx := context.Background()
	port, standby := startCounter(t, tc)
	getCount(port) // 2
	if _, err := tc.node("b1").Checkpoint(ctx, "counter"); err != nil {
		t.Fatal(err)
	}
	getCount(port) // 3: after the checkpoint, lost with the holder
	before, _ := tc.node("b1").Workload(ctx, "counter")
	if _, err := tc.node("b1").AppendResult(ctx, "counter", before.Epoch, "ok"); err != nil {
		t.Fatalf("a result under the current epoch: %v", err)
	}
	pid := tc.node("a1").sup.PID("counter")
	if pid == 0 {
		t.Fatal("a1 runs no counter")
	}

	tc.isolate("a1")
	regranted := waitRegranted(t, tc, standby)
	fenced := tc.node("a1").fence.since()
	if fenced.IsZero() || !fenced.Before(regranted.Phases[0].At) {
		t.Fatalf("a1 fenced at %v, the workload re-granted at %v: the fence must come first", fenced, regranted.Phases[0].At)
	}
	t.Logf("a1 froze its workload %v before the re-grant", regranted.Phases[0].At.Sub(fenced).Round(time.Millisecond))
	if st := procState(t, pid); st != "T" {
		t.Fatalf("the isolated holder's counter is in state %q, want T (stopped)", st)
	}
	if _, err := tc.node("b1").AppendResult(ctx, "counter", before.Epoch, "late"); !errors.Is(err, fsm.ErrStaleEpoch) {
		t.Fatalf("a late result under epoch %d: %v, want ErrStaleEpoch", before.Epoch, err)
	}

	tc.net.Heal()
	eventually(t, 30*time.Second, "running on the standby, the count continued", func() error {
		w, _ := tc.node("b1").Workload(ctx, "counter")
		if w.Holder != standby || w.State != string(fsm.WorkloadRunning) || w.Epoch <= before.Epoch {
			return fmt.Errorf("%+v", w)
		}
		if n, err := getCount(port); err != nil || n != 3 {
			return fmt.Errorf("GET / = %d, %v; want 3 (2 committed + 1)", n, err)
		}
		return nil
	})
	eventually(t, 10*time.Second, "a1 unfenced, without the counter", func() error {
		if !tc.node("a1").fence.since().IsZero() || tc.node("a1").sup.PID("counter") != 0 {
			return fmt.Errorf("fenced since %v, pid %d", tc.node("a1").fence.since(), tc.node("a1").sup.PID("counter"))
		}
		return nil
	})
}

// procState is the state letter of a process (R, S, T, Z …), "" if gone.
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// waitRegranted waits until the leader re-granted a lost holder's
// workload to standby, and returns that migration.
func waitRegranted(t *testing.T, tc *testCluster, standby string) fsm.Migration {
	t.Helper()
	var regranted fsm.Migration
	eventually(t, 20*time.Second, "re-granted to the standby", func() error {
		ms, _ := tc.node(standby).Migrations(context.Background())
		for _, m := range ms {
			if m.Reason == "lost" && m.To == standby {
				regranted = m
				return nil
			}
		}
		return fmt.Errorf("migrations %+v", ms)
	})
	return regranted
}
