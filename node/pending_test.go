package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
)

// TestPendingShowsWhy: a workload larger than any node stays pending,
// and every peer's API says why (GET /v1/workloads/{id} and the list),
// while a workload that fits is placed.
func TestPendingShowsWhy(t *testing.T) {
	tc := newTestCluster(t, 0, peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"})
	eventually(t, 20*time.Second, "formed", func() error { return shape(tc.status("a1"), 3, 3, 0) })
	ctx := context.Background()
	none := fsm.CheckpointPolicy{Mode: fsm.ModeNone}
	huge := fsm.WorkloadSpec{ID: "huge", Command: []string{"/bin/sleep", "600"}, Checkpoint: none,
		Resources: fsm.Resources{MemoryMiB: 2 << 20}}
	fits := fsm.WorkloadSpec{ID: "fits", Command: []string{"/bin/sleep", "600"}, Checkpoint: none,
		Resources: fsm.Resources{MemoryMiB: 64}}
	for _, s := range []fsm.WorkloadSpec{huge, fits} {
		if _, err := tc.node("b1").Submit(ctx, s); err != nil {
			t.Fatalf("submit %s: %v", s.ID, err)
		}
	}
	const want = "no node offers 2 TiB of memory (largest: 1 GiB)"
	eventually(t, 20*time.Second, "fits placed, huge pending with its reason on every peer", func() error {
		for _, name := range []string{"a1", "b1", "c1"} {
			ws := map[string]api.Workload{}
			if err := getJSON(tc.node(name), "/v1/workloads", &[]api.Workload{}, ws); err != nil {
				return err
			}
			var one api.Workload
			if err := getJSON(tc.node(name), "/v1/workloads/huge", &one, nil); err != nil {
				return err
			}
			if h := ws["huge"]; h.State != string(fsm.WorkloadPending) || h.PendingReason != want || one.PendingReason != want {
				return fmt.Errorf("%s: huge %s %q, alone %q; want pending %q", name, h.State, h.PendingReason, one.PendingReason, want)
			}
			if f := ws["fits"]; f.State == string(fsm.WorkloadPending) || f.PendingReason != "" {
				return fmt.Errorf("%s: fits %s %q, want placed without a reason", name, f.State, f.PendingReason)
			}
		}
		return nil
	})
}

// getJSON serves GET path from n's admin API in memory and decodes the
// answer into out; a list of workloads is also indexed into byID.
func getJSON(n *Node, path string, out any, byID map[string]api.Workload) error {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer "+n.cfg.APIToken)
	n.api.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		return err
	}
	if ws, ok := out.(*[]api.Workload); ok {
		for _, w := range *ws {
			byID[w.ID] = w
		}
	}
	return nil
}
