package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// TestWorkloadEnvPerEpoch: a workload's environment carries what
// WorkloadEnv gives for its own id and epoch, beside the common Env.
func TestWorkloadEnvPerEpoch(t *testing.T) {
	s := &Supervisor{cfg: Config{DataDir: t.TempDir(), Env: []string{"LIFEBOAT_API=x"},
		WorkloadEnv: func(id string, epoch uint64) []string {
			return []string{fmt.Sprintf("LIFEBOAT_TOKEN=%s-%d", id, epoch)}
		}}}
	w := s.workload(fsm.WorkloadSpec{ID: "w"}, 7)
	if !slices.Equal(w.Env, []string{"LIFEBOAT_API=x", "LIFEBOAT_TOKEN=w-7"}) {
		t.Fatalf("env %v", w.Env)
	}
	if w2 := s.workload(fsm.WorkloadSpec{ID: "v"}, 8); !slices.Equal(w2.Env, []string{"LIFEBOAT_API=x", "LIFEBOAT_TOKEN=v-8"}) || len(s.cfg.Env) != 1 {
		t.Fatalf("env %v; common env %v", w2.Env, s.cfg.Env)
	}
}
