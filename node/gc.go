package node

import (
	"context"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// Checkpoint garbage collection: every node keeps, per workload, the
// committed checkpoints it is listed as holding (at most
// fsm.KeepCheckpoints) and the pending one; everything else in its store
// goes once it is older than Config.CheckpointGCGrace, which covers a
// checkpoint sealed a moment before its Prepare reaches Raft.
const gcInterval = 5 * time.Second

func (n *Node) gcLoop(ctx context.Context) {
	t := time.NewTicker(gcInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.collectCheckpoints(n.cfg.CheckpointGCGrace)
		}
	}
}

// collectCheckpoints removes the checkpoints this node need not keep that
// are older than grace.
func (n *Node) collectCheckpoints(grace time.Duration) {
	if n.sup == nil || !n.replicaReady() {
		return // a replica that knows nothing yet must not decide what to delete
	}
	store := n.sup.Store()
	entries, err := os.ReadDir(store.Root())
	if err != nil {
		n.log.Warn("checkpoint gc: reading the store", "err", err)
		return
	}
	v := n.view()
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
		for _, c := range list {
			seq := c.Manifest.Seq
			if known && n.keepCheckpoint(w, seq) {
				continue
			}
			if fi, err := os.Stat(c.Dir); err != nil || n.now().Sub(fi.ModTime()) < grace {
				continue
			}
			if err := store.Remove(id, seq); err != nil {
				n.log.Warn("checkpoint gc", "workload", id, "seq", seq, "err", err)
				continue
			}
			n.log.Info("checkpoint removed", "workload", id, "seq", seq, "known", known)
		}
	}
}

// keepCheckpoint reports whether this node keeps checkpoint seq of w: the
// pending one, and a committed one while this node holds or stands by for
// the workload or the record lists it as holding a copy.
func (n *Node) keepCheckpoint(w fsm.Workload, seq uint64) bool {
	me := n.cfg.Name
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

// replicaReady reports whether this node's replica has caught up with
// anything at all: its own Raft state or the leader's mirror.
func (n *Node) replicaReady() bool {
	if n.inRaft() {
		return n.raft.AppliedIndex() > 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mirrorIndex > 0
}
