package node

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/transfer"
)

// Checkpoint garbage collection: every node keeps, per workload, the
// committed checkpoints it is listed as holding (at most
// fsm.KeepCheckpoints) and the pending one; everything else in its store
// goes once it is older than Config.CheckpointGCGrace, which covers a
// checkpoint sealed a moment before its Prepare reaches Raft.
const gcInterval = 5 * time.Second

// collector removes the checkpoints this node need not keep.
type collector struct {
	name  string
	grace time.Duration // Config.CheckpointGCGrace
	rep   *replica
	store *transfer.Store // set by Node.startRuntime, before any loop runs
	now   func() time.Time
	log   *slog.Logger
}

func (c *collector) loop(ctx context.Context) {
	t := time.NewTicker(gcInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.collect(c.grace)
		}
	}
}

// collectCheckpoints removes the checkpoints this node need not keep that
// are older than grace.
func (c *collector) collect(grace time.Duration) {
	if c.store == nil || !c.rep.ready() {
		return // a replica that knows nothing yet must not decide what to delete
	}
	store := c.store
	entries, err := os.ReadDir(store.Root())
	if err != nil {
		c.log.Warn("checkpoint gc: reading the store", "err", err)
		return
	}
	v := c.rep.view()
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		id := e.Name()
		list, err := store.List(id)
		if err != nil {
			continue
		}
		w, known := v.Workload(id)
		for _, ck := range list {
			seq := ck.Manifest.Seq
			if known && keepCheckpoint(w, seq, c.name) {
				continue
			}
			if fi, err := os.Stat(ck.Dir); err != nil || c.now().Sub(fi.ModTime()) < grace {
				continue
			}
			if err := store.Remove(id, seq); err != nil {
				c.log.Warn("checkpoint gc", "workload", id, "seq", seq, "err", err)
				continue
			}
			c.log.Info("checkpoint removed", "workload", id, "seq", seq, "known", known)
		}
	}
}

// keepCheckpoint reports whether node me keeps checkpoint seq of w: the
// pending one, and a committed one while me holds or stands by for the
// workload or the record lists it as holding a copy.
func keepCheckpoint(w fsm.Workload, seq uint64, me string) bool {
	if w.Pending != nil && w.Pending.Seq == seq {
		return true
	}
	a := w.Assignment
	involved := a.Holder == me || slices.Contains(a.Standbys, me)
	for _, rec := range w.Checkpoints {
		if rec.Seq == seq {
			return involved || slices.Contains(rec.Standbys, me)
		}
	}
	return false
}
