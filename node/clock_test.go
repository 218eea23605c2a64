package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/peer"
)

// TestWallClockStepsDoNotMoveLeases: leases and fences are measured on
// the boot-time clock, so stepping a node's wall clock (as NTP or the
// Jepsen clock-jump nemesis does) neither makes the leader call live
// nodes lost nor keeps a cut-off holder running past its lease.
func TestWallClockStepsDoNotMoveLeases(t *testing.T) {
	tc := newTestClusterWith(t, 0, func(c *Config) { c.Unsafe.ClockControl = true },
		peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"})
	ctx := context.Background()
	port, standby := startCounter(t, tc)
	before, _ := tc.node("b1").Workload(ctx, "counter")
	leader := tc.status("b1").Leader
	if leader == "" {
		t.Fatal("no leader")
	}

	// The leader's wall clock leaps an hour ahead: every lease it recorded
	// looks an hour stale on that clock, yet none lapsed.
	tc.node(leader).testClock.offset.Store(int64(time.Hour))
	for range 4 * int(tc.cfgs[leader].LeaseTTL/(100*time.Millisecond)) {
		time.Sleep(100 * time.Millisecond)
		for _, rec := range tc.node(leader).rep.machine.Nodes() {
			if rec.State == fsm.NodeLost {
				t.Fatalf("%s marked lost after the leader's clock stepped forward", rec.Name)
			}
		}
	}
	if w, _ := tc.node("b1").Workload(ctx, "counter"); w.Epoch != before.Epoch || w.Holder != "a1" {
		t.Fatalf("the workload moved after a clock step: %+v, was epoch %d on a1", w, before.Epoch)
	}
	tc.node(leader).testClock.offset.Store(0)

	// The holder's wall clock falls an hour behind and it is cut off: on
	// that clock its lease would last an hour more, yet it freezes the
	// workload before the leader re-grants it.
	tc.node("a1").testClock.offset.Store(int64(-time.Hour))
	tc.isolate("a1")
	regrant := waitRegranted(t, tc, standby).Phases[0].At
	fenced := tc.node("a1").fence.since().Add(time.Hour) // back on the true wall clock
	if tc.node("a1").fence.since().IsZero() || !fenced.Before(regrant) {
		t.Fatalf("a1 fenced at %v (true time), re-granted at %v: the fence must come first", fenced, regrant)
	}
	t.Logf("with its wall clock an hour behind, a1 froze its workload %v before the re-grant", regrant.Sub(fenced).Round(time.Millisecond))
	tc.net.Heal()
	eventually(t, 30*time.Second, "running on the standby", func() error {
		w, _ := tc.node("b1").Workload(ctx, "counter")
		if w.Holder != standby || w.State != string(fsm.WorkloadRunning) || w.Epoch <= before.Epoch {
			return fmt.Errorf("%+v", w)
		}
		_, err := getCount(port)
		return err
	})
}

func TestServeClockRejectsBadOffsets(t *testing.T) {
	n := &Node{testClock: &jumpClock{}, now: time.Now}
	n.log = slog.New(slog.DiscardHandler)
	h := peer.NewHandler(peerHandler{n}, peer.Options{Name: "t", UnsafeClockControl: true})
	for body, want := range map[string]int{
		`{"offset":"-30s"}`:  http.StatusOK,
		`{"offset":"0s"}`:    http.StatusOK,
		`{"offset":"soon"}`:  http.StatusBadRequest,
		`{"offset":"9999h"}`: http.StatusBadRequest,
		`not json`:           http.StatusBadRequest,
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/v1/internal/clock", strings.NewReader(body))
		h.ServeHTTP(rec, req.WithContext(peer.WithCaller(req.Context(), "jepsen")))
		if rec.Code != want {
			t.Errorf("%s: status %d, want %d (%s)", body, rec.Code, want, rec.Body)
		}
	}
	n.testClock.offset.Store(int64(-time.Minute))
	if got := time.Since(n.testClock.Now()); got < 59*time.Second || got > 61*time.Second {
		t.Fatalf("a clock one minute behind reads %v behind", got)
	}
}

// TestBootAfterDoomDeadlineIsAlive: a host doomed by a notice whose
// deadline passed, and which boots again (the cloud stopped it and it was
// restarted with its disk), is alive again.
func TestBootAfterDoomDeadlineIsAlive(t *testing.T) {
	tc := newTestCluster(t, 0, peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"})
	ctx := context.Background()
	eventually(t, 20*time.Second, "formed", func() error { return shape(tc.status("a1"), 3, 3, 0) })
	deadline := time.Now().Add(300 * time.Millisecond)
	if _, _, err := tc.node("a1").prop.apply(ctx, fsm.NodeStateChange{Node: "c1", State: fsm.NodeDoomed, Deadline: deadline, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	state := func(name string) fsm.NodeState {
		rec, _ := tc.node("a1").rep.view().Node(name)
		return rec.State
	}
	time.Sleep(time.Until(deadline))
	if got := state("c1"); got != fsm.NodeDoomed {
		t.Fatalf("c1 is %s before its restart, want doomed: only a boot after the deadline ends the doom", got)
	}
	tc.kill("c1")
	tc.start("c1")
	eventually(t, 20*time.Second, "c1 alive again", func() error {
		if got := state("c1"); got != fsm.NodeAlive {
			return fmt.Errorf("c1 is %s", got)
		}
		return nil
	})
}
