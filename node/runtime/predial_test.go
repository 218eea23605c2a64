package runtime

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// fakePageConn is a page relay connection that records its closing.
type fakePageConn struct {
	io.ReadWriter
	closed atomic.Bool
}

func (c *fakePageConn) Close() error {
	c.closed.Store(true)
	return nil
}

// predialRig is a supervisor whose cluster hands out fakePageConns.
type predialRig struct {
	s     *Supervisor
	c     *fakeCluster
	conns chan *fakePageConn // each one dialed
	spec  fsm.WorkloadSpec
	rec   fsm.CheckpointRecord
}

func newPredialRig(t *testing.T, ttl time.Duration) predialRig {
	t.Helper()
	cfg := DefaultConfig(t.TempDir())
	cfg.Store = testStore(t, cfg.DataDir)
	cfg.PrestartTTL = ttl
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	r := predialRig{c: newFakeCluster(), conns: make(chan *fakePageConn, 8)}
	r.c.pages = func() (io.ReadWriteCloser, error) {
		c := &fakePageConn{}
		r.conns <- c
		return c, nil
	}
	s, err := New(cfg, r.c, &fakeLazy{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r.s, r.spec = s, counterSpec(fsm.ModeCRIU, 1)
	r.rec = fsm.CheckpointRecord{Seq: 5, Digest: "d", LazyFrom: "old-holder"}
	return r
}

func (r predialRig) dialed(t *testing.T) *fakePageConn {
	t.Helper()
	select {
	case c := <-r.conns:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no page relay was dialed")
		return nil
	}
}

// TestPredialTakenByTheRestore: the page relay dialed when the offer is
// accepted is the one the restore gets, without a dial of its own, and
// it is not closed after the TTL; a second restore dials.
func TestPredialTakenByTheRestore(t *testing.T) {
	r := newPredialRig(t, 100*time.Millisecond)
	r.s.PredialPages(r.spec, r.rec)
	ahead := r.dialed(t)
	got, err := r.s.pagesOf(r.spec.ID, r.rec)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != ahead || r.c.pageDials() != 1 {
		t.Fatalf("the restore got %p after %d dials, want the relay dialed ahead (%p) and no other dial", got, r.c.pageDials(), ahead)
	}
	time.Sleep(300 * time.Millisecond)
	if ahead.closed.Load() {
		t.Fatal("the relay a restore took was closed at the TTL")
	}
	if _, err := r.s.pagesOf(r.spec.ID, r.rec)(context.Background()); err != nil || r.c.pageDials() != 2 {
		t.Fatalf("a second restore: %v after %d dials, want a dial of its own", err, r.c.pageDials())
	}
}

// TestPredialClosedUnused: a relay dialed ahead is closed when no restore
// takes it within the TTL, or when a dial for another checkpoint of the
// workload replaces it; a restore then dials its own.
func TestPredialClosedUnused(t *testing.T) {
	closedSoon := func(t *testing.T, c *fakePageConn, why string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !c.closed.Load() {
			if time.Now().After(deadline) {
				t.Fatal(why)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Run("ttl", func(t *testing.T) {
		r := newPredialRig(t, 100*time.Millisecond)
		r.s.PredialPages(r.spec, r.rec)
		closedSoon(t, r.dialed(t), "a relay no restore took stayed open past the TTL")
		if _, err := r.s.pagesOf(r.spec.ID, r.rec)(context.Background()); err != nil || r.c.pageDials() != 2 {
			t.Fatalf("a restore after the TTL: %v after %d dials, want a dial of its own", err, r.c.pageDials())
		}
	})
	t.Run("replaced", func(t *testing.T) {
		r := newPredialRig(t, time.Minute)
		r.s.PredialPages(r.spec, r.rec)
		first := r.dialed(t)
		next := r.rec
		next.Seq = 6
		r.s.PredialPages(r.spec, next)
		second := r.dialed(t)
		closedSoon(t, first, "the relay of checkpoint 5 stayed open once 6's was dialed")
		if got, err := r.s.pagesOf(r.spec.ID, next)(context.Background()); err != nil || got != second {
			t.Fatalf("the restore of checkpoint 6 got %p (%v), want %p", got, err, second)
		}
	})
}
