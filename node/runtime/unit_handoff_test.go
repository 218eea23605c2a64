package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/transfer"
)

// TestHandoff: a handoff takes a final checkpoint holding every change
// (the process stops), gives it to the handoff function and ends the unit;
// when the function fails after committing, the workload starts again here
// from that final checkpoint, and when it fails before, from the previous.
func TestHandoff(t *testing.T) {
	fc := newFakeCluster()
	s := newTestSupervisor(t, fc)
	port := freePort(t)
	s.Sync([]Desired{{Spec: counterSpec(fsm.ModeApp, port), Epoch: 3}})
	fc.waitReport(t, "running: started")
	hit(t, port, "/")
	hit(t, port, "/") // 2

	// Fails before committing: back here from nothing committed, fresh.
	boom := errors.New("target refused")
	if _, err := s.Handoff(context.Background(), "counter", false, moverFunc(func(ctx context.Context, w Workload, c *transfer.Checkpoint, _ bool) error {
		if c == nil || c.Manifest.Seq != 1 {
			t.Errorf("handoff got checkpoint %+v", c)
		}
		return boom
	})); !errors.Is(err, boom) {
		t.Fatalf("failed handoff: %v", err)
	}
	if got := hit(t, port, "/"); got != 1 {
		t.Fatalf("after a handoff failed before commit GET / = %d, want 1 (nothing was committed)", got)
	}
	hit(t, port, "/") // 2

	// Fails after committing: back here from the final checkpoint.
	if _, err := s.Handoff(context.Background(), "counter", false, moverFunc(func(ctx context.Context, w Workload, c *transfer.Checkpoint, _ bool) error {
		if err := fc.Commit(ctx, w.Spec.ID, w.Epoch, c); err != nil {
			return err
		}
		return boom
	})); !errors.Is(err, boom) {
		t.Fatalf("failed handoff: %v", err)
	}
	if got := hit(t, port, "/"); got != 3 {
		t.Fatalf("after a handoff failed after commit GET / = %d, want 3 (2 in the final checkpoint + 1)", got)
	}

	// Succeeds: the unit ends, the process is gone, the checkpoint holds 3.
	var handed *transfer.Checkpoint
	res, err := s.Handoff(context.Background(), "counter", false, moverFunc(func(ctx context.Context, w Workload, c *transfer.Checkpoint, _ bool) error {
		handed = c
		return fc.Commit(ctx, w.Spec.ID, w.Epoch, c)
	}))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, port)
	if res.Seq != handed.Manifest.Seq || res.Digest != handed.Digest {
		t.Fatalf("result %+v for checkpoint #%d", res, handed.Manifest.Seq)
	}
	b, err := os.ReadFile(filepath.Join(handed.FilesDir(), "state.json"))
	if err != nil || !strings.Contains(string(b), `"count":3`) {
		t.Fatalf("final checkpoint holds %q (%v), want 3", b, err)
	}
	if _, err := s.Checkpoint(context.Background(), "counter"); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("checkpoint after the handoff: %v, want ErrNotRunning", err)
	}
}

// moverFunc is a Mover made of a function.
type moverFunc func(ctx context.Context, w Workload, c *transfer.Checkpoint, lazy bool) error

func (f moverFunc) Move(ctx context.Context, w Workload, c *transfer.Checkpoint, lazy bool) error {
	return f(ctx, w, c, lazy)
}
