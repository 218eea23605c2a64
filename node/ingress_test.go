package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// TestIngressCutoverLosesNoRequest: clients of another peer's ingress
// keep counting while the counter moves between holders: every request
// answers 200, the counts answered are exactly 1..N (nothing lost,
// nothing counted twice), and the upstream saw the holder's epoch.
func TestIngressCutoverLosesNoRequest(t *testing.T) {
	tc := newTestCluster(t, 0, peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"})
	ctx := context.Background()
	bin := buildCounter(t)
	port, listen := freePort(t), freePort(t)
	eventually(t, 20*time.Second, "formed", func() error { return shape(tc.status("a1"), 3, 3, 0) })
	spec := fsm.WorkloadSpec{ID: "counter", Command: []string{bin, "--port", strconv.Itoa(port)},
		Checkpoint: fsm.CheckpointPolicy{Mode: fsm.ModeApp, Interval: fsm.Duration(time.Hour)},
		Service:    &fsm.Service{Port: port, Listen: listen, SLO: fsm.Duration(5 * time.Second)},
		Resources:  fsm.Resources{MemoryMiB: 16}, Placement: fsm.Constraints{Prefer: []string{"a1"}}}
	if _, err := tc.node("b1").Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	var standby string
	eventually(t, 20*time.Second, "running on a1 with a standby", func() error {
		w, _ := tc.node("c1").Workload(ctx, "counter")
		if w.State != string(fsm.WorkloadRunning) || w.Holder != "a1" || len(w.Standbys) != 1 {
			return fmt.Errorf("%+v", w)
		}
		standby = w.Standbys[0]
		return nil
	})
	front := "http://" + tc.cfgs["c1"].BindAddr + ":" + strconv.Itoa(listen) + "/"
	type answer struct {
		at    time.Time
		count int
		err   error
	}
	var mu sync.Mutex
	var answers []answer
	get := func(c *http.Client) answer {
		resp, err := c.Get(front)
		if err != nil {
			return answer{at: time.Now(), err: err}
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return answer{at: time.Now(), err: fmt.Errorf("%d %s", resp.StatusCode, b)}
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		return answer{at: time.Now(), count: n, err: err}
	}
	eventually(t, 10*time.Second, "the ingress answers", func() error {
		a := get(http.DefaultClient)
		if a.err == nil {
			mu.Lock()
			answers = append(answers, a)
			mu.Unlock()
		}
		return a.err
	})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for i := 0; i < 2000; i++ { // bounded
				select {
				case <-stop:
					return
				default:
				}
				a := get(c)
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	moved := time.Now()
	if _, err := tc.node("b1").Migrate(ctx, "counter", standby); err != nil {
		close(stop)
		wg.Wait()
		t.Fatal(err)
	}
	t.Logf("moved to %s in %v", standby, time.Since(moved).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	var counts []int
	var stall time.Duration
	slices.SortFunc(answers, func(a, b answer) int { return a.at.Compare(b.at) })
	for i, a := range answers {
		if a.err != nil {
			t.Errorf("a request failed: %v", a.err)
			continue
		}
		counts = append(counts, a.count)
		if i > 0 {
			stall = max(stall, a.at.Sub(answers[i-1].at))
		}
	}
	slices.Sort(counts)
	for i, c := range counts {
		if c != i+1 {
			t.Fatalf("counts answered %v...: want exactly 1..%d (a count lost or given twice at %d)", counts[:min(len(counts), i+3)], len(counts), i)
		}
	}
	w, _ := tc.node("c1").Workload(ctx, "counter")
	if w.Holder != standby {
		t.Fatalf("holder %s, want %s", w.Holder, standby)
	}
	t.Logf("%d requests through c1's ingress, none failed, counts 1..%d; longest gap between answers %v",
		len(counts), len(counts), stall.Round(time.Millisecond))
}

// TestDoomedHostDrainsItsIngress: the moment a host knows of its notice,
// /readyz fails and its ingress drains (GOAWAY, idle connections closed),
// before Raft has recorded anything.
func TestDoomedHostDrainsItsIngress(t *testing.T) {
	tc := newTestCluster(t, 0, peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"})
	eventually(t, 20*time.Second, "formed", func() error { return shape(tc.status("a1"), 3, 3, 0) })
	n := tc.node("c1")
	eventually(t, 10*time.Second, "c1 ready", n.Ready)
	if n.ingress.Draining() {
		t.Fatal("a healthy host's ingress drains")
	}
	n.mu.Lock()
	n.fence.doom(time.Now().Add(2 * time.Minute)) // what notices.on does first
	n.mu.Unlock()
	if err := n.Ready(); err == nil {
		t.Fatal("/readyz still passes on a host that knows of its notice")
	}
	eventually(t, 2*time.Second, "c1's ingress draining", func() error {
		if !n.ingress.Draining() {
			return fmt.Errorf("not draining")
		}
		return nil
	})
	if tc.node("a1").ingress.Draining() {
		t.Fatal("another host's ingress drains too")
	}
}
