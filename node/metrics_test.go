package node

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestMetricsInPrometheusFormat: /metrics on the leader shows the node's
// own series in the Prometheus text format.
func TestMetricsInPrometheusFormat(t *testing.T) {
	tc := newTestCluster(t, 0, peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"})
	eventually(t, 20*time.Second, "formed", func() error { return shape(tc.status("a1"), 3, 3, 0) })
	leader := tc.node(tc.status("a1").Leader)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	leader.metrics.instrument(leader.api).ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"# TYPE lifeboat_raft_leader gauge", "lifeboat_raft_leader 1",
		"lifeboat_gossip_members_alive 3", "lifeboat_lease_renewals_total{result=\"ok\"}",
		"lifeboat_autopilot_actions_total{action=\"promote\"}", "go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q", ct)
	}
}
