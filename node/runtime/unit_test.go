package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lifeboat/lifeboat/fsm"
)

// TestNoneModeRestartsFreshWithBackoff: a stateless workload that crashes
// is started again, fresh, and reported each time.
func TestNoneModeRestartsFreshWithBackoff(t *testing.T) {
	fc := newFakeCluster()
	s := newTestSupervisor(t, fc)
	port := freePort(t)
	s.Sync([]Desired{{Spec: counterSpec(fsm.ModeNone, port), Epoch: 1}})
	fc.waitReport(t, "running: started")
	hit(t, port, "/")
	hit(t, port, "/")
	if _, err := s.Checkpoint(context.Background(), "counter"); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("checkpoint in none mode: %v, want ErrNoCheckpoint", err)
	}
	u, _ := s.unit("counter")
	killWorkload(t, u)
	fc.waitReport(t, "running: started")
	if got := hit(t, port, "/"); got != 1 {
		t.Fatalf("after a crash in none mode GET / = %d, want 1", got)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if !strings.Contains(strings.Join(fc.reports, "\n"), "failed: exited") {
		t.Fatalf("the crash was not reported: %q", fc.reports)
	}
}
