package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeboat/lifeboat/internal/monotime"

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

// scriptedLease is a lease whose end and catch-up a test sets.
type scriptedLease struct {
	mu     sync.Mutex
	until  monotime.Instant
	caught bool
}

func (l *scriptedLease) validUntil() monotime.Instant {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}
func (l *scriptedLease) caughtUp() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.caught }
func (l *scriptedLease) set(until monotime.Instant, caught bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.until, l.caught = until, caught
}

// recordingFreezer records what the fence did, in order.
type recordingFreezer struct {
	mu  sync.Mutex
	ops []string
}

func (r *recordingFreezer) add(op string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
}
func (r *recordingFreezer) Fence(on bool) {
	if on {
		r.add("fence")
	} else {
		r.add("unfence")
	}
}
func (r *recordingFreezer) Freeze() []string { r.add("freeze"); return nil }
func (r *recordingFreezer) Thaw() []string   { r.add("thaw"); return nil }
func (r *recordingFreezer) PIDs() []int      { return nil }
func (r *recordingFreezer) took() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ops
	r.ops = nil
	return out
}

type syncRecorder struct{ n int }

func (s *syncRecorder) syncTo(*fsm.Machine) { s.n++ }

type noopLogger struct{}

func (noopLogger) applyLogged(context.Context, fsm.Command) {}

type machineView struct{ m *fsm.Machine }

func (v machineView) view() *fsm.Machine { return v.m }

// TestFenceFreezesAndThaws: the fence lets nothing run before the first
// renewal; once the lease holds and the replica has caught up it drops
// what is no longer granted here (syncTo) and then thaws; when the lease
// runs out it freezes; a renewal whose replica has not caught up yet
// keeps the workloads frozen.
func TestFenceFreezesAndThaws(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		mono := func() monotime.Instant { return monotime.Instant(time.Since(start) + time.Hour) }
		lease, sup, sync := &scriptedLease{}, &recordingFreezer{}, &syncRecorder{}
		f := &fence{name: "a1", now: time.Now, mono: mono, leases: lease, rep: machineView{fsm.New()},
			prop: noopLogger{}, sync: sync, sup: sup, metrics: newMetrics(&Node{}), log: slog.New(slog.DiscardHandler)}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); f.loop(ctx) }()
		step := func(d time.Duration) { time.Sleep(d); synctest.Wait() }

		step(200 * time.Millisecond)
		if ops := sup.took(); len(ops) != 0 || !f.since().IsZero() {
			t.Fatalf("before any renewal the fence did %v", ops)
		}
		lease.set(mono().Add(time.Second), false) // renewed, replica behind
		step(200 * time.Millisecond)
		if ops := sup.took(); len(ops) != 0 {
			t.Fatalf("a renewal the replica has not caught up with thawed: %v", ops)
		}
		lease.set(mono().Add(time.Second), true)
		step(100 * time.Millisecond)
		if ops := sup.took(); len(ops) != 2 || ops[0] != "thaw" || ops[1] != "unfence" || sync.n != 1 {
			t.Fatalf("caught up: %v after %d syncs, want one sync, then thaw, unfence", ops, sync.n)
		}
		step(time.Second) // the lease runs out
		if ops := sup.took(); len(ops) != 2 || ops[0] != "fence" || ops[1] != "freeze" || f.since().IsZero() {
			t.Fatalf("lease ran out: %v (fenced since %v), want fence, freeze", ops, f.since())
		}
		step(time.Second)
		if ops := sup.took(); len(ops) != 0 {
			t.Fatalf("a fenced node kept acting: %v", ops)
		}
		cancel()
		<-done
	})
}

// TestFenceHeldEndsStaleDoomOnce: held looks for a stale doom once, and
// only after the fence let the workloads run.
func TestFenceHeldEndsStaleDoomOnce(t *testing.T) {
	f := &fence{name: "a1", now: time.Now, rep: machineView{fsm.New()}, prop: noopLogger{}, log: slog.New(slog.DiscardHandler)}
	f.held(context.Background())
	if f.doomChecked {
		t.Fatal("held looked for a stale doom before the lease ever held")
	}
	f.heldOnce = true
	f.held(context.Background())
	if !f.doomChecked {
		t.Fatal("held did not look once the lease held")
	}
	f.doom(time.Now().Add(time.Minute))
	if !f.doomed() || f.noticeDeadline().IsZero() {
		t.Fatal("a host with a notice does not say it is doomed")
	}
}
