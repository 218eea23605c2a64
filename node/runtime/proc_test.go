package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// TestFrozenWorkloadIsKilledNotThawed: a workload a fence froze and that is
// then no longer granted here (another node may run it by now) must not
// run one more instruction: it is killed while stopped, so its SIGTERM
// handler never runs. A workload that is not frozen still stops
// gracefully, handler and all.
func TestFrozenWorkloadIsKilledNotThawed(t *testing.T) {
	for _, frozen := range []bool{false, true} {
		t.Run(fmt.Sprintf("frozen=%v", frozen), func(t *testing.T) {
			s := newTestSupervisor(t, newFakeCluster())
			dir := t.TempDir()
			marker, started := filepath.Join(dir, "term"), filepath.Join(dir, "started")
			script := fmt.Sprintf(`trap 'echo ran > %s; exit 0' TERM; echo > %s; while :; do sleep 0.02; done`, marker, started)
			spec := fsm.WorkloadSpec{ID: "trap", Command: []string{"/bin/sh", "-c", script}, Checkpoint: fsm.CheckpointPolicy{Mode: fsm.ModeNone}}
			s.Sync([]Desired{{Spec: spec, Epoch: 1}})
			deadline := time.Now().Add(10 * time.Second)
			for _, err := os.Stat(started); err != nil || s.PID("trap") == 0; _, err = os.Stat(started) {
				if time.Now().After(deadline) {
					t.Fatal("the workload did not start")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if frozen {
				if ids := s.Freeze(); len(ids) != 1 {
					t.Fatalf("froze %v, want [trap]", ids)
				}
			}
			s.Sync(nil)
			s.Close() // waits for the unit, so the process is gone and reaped
			_, err := os.Stat(marker)
			if ran := err == nil; ran == frozen {
				t.Fatalf("frozen %v: the SIGTERM handler ran %v, want %v", frozen, ran, !frozen)
			}
		})
	}
}
