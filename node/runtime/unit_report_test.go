package runtime

import (
	"testing"

	"github.com/lifeboat/lifeboat/fsm"
)

// TestUnrecordedReportIsSentAgain: a running report the cluster missed
// (no leader at that moment) is sent again by RetryReports, so that the
// workload is not left recorded as restoring.
func TestUnrecordedReportIsSentAgain(t *testing.T) {
	fc := newFakeCluster()
	fc.failReports = 1
	s := newTestSupervisor(t, fc)
	port := freePort(t)
	s.Sync([]Desired{{Spec: counterSpec(fsm.ModeApp, port), Epoch: 4}})
	hit(t, port, "/value")
	fc.mu.Lock()
	missed := len(fc.reports) == 0 && fc.failReports == 0
	fc.mu.Unlock()
	if !missed {
		t.Fatalf("the first report was not the refused one: %q", fc.reports)
	}
	s.RetryReports()
	fc.waitReport(t, "running")
	s.RetryReports() // recorded: nothing more to send
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.reports) != 1 {
		t.Fatalf("reports %q, want the running one once", fc.reports)
	}
}
