package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat/lifeboat/fsm"
)

// TestCorruptCheckpointIsRefused: a stored checkpoint whose bytes changed
// is never restored: the start fails with ErrRestore naming the damage,
// and the workload falls back to a fresh start.
func TestCorruptCheckpointIsRefused(t *testing.T) {
	fc := newFakeCluster()
	s := newTestSupervisor(t, fc)
	port := freePort(t)
	s.Sync([]Desired{{Spec: counterSpec(fsm.ModeApp, port), Epoch: 3}})
	fc.waitReport(t, "running: started")
	hit(t, port, "/")
	if _, err := s.Checkpoint(context.Background(), "counter"); err != nil {
		t.Fatal(err)
	}
	c, err := s.store.Latest("counter")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.FilesDir(), "state.json"), []byte(`{"count":999}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = s.Restart(context.Background(), "counter", true)
	if !errors.Is(err, ErrRestore) || !strings.Contains(err.Error(), "state.json") {
		t.Fatalf("restart from a corrupt checkpoint: %v, want ErrRestore naming state.json", err)
	}
	if got := hit(t, port, "/"); got != 1 {
		t.Fatalf("after refusing the corrupt checkpoint GET / = %d, want a fresh 1 (never 1000)", got)
	}
}
