package node

import (
	"context"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/cloud"
)

// NoticeWatcher is what a peer needs of its cloud's termination watcher
// (cloud.NewWatcher).
type NoticeWatcher interface {
	Watch(ctx context.Context, out chan<- cloud.Notice) error
	Ack(ctx context.Context, n cloud.Notice) error
}

// watchLoop turns the cloud's notices into the cluster's: a doomed host
// gossips it at once and records it in Raft (the leader then evacuates
// it); a rebalance recommendation checkpoints every workload here now, so
// that the standbys hold a fresh copy before a notice comes. Once a
// doomed host holds nothing, the notice is acknowledged (Azure's
// StartRequests).
func (n *Node) watchLoop(ctx context.Context) {
	w := n.cfg.Watcher
	if w == nil {
		return
	}
	notices := make(chan cloud.Notice, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Watch(ctx, notices); err != nil && ctx.Err() == nil {
			n.log.Error("the termination watcher stopped", "err", err)
		}
	}()
	defer func() { <-done }()
	var unacked []cloud.Notice
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case no := <-notices:
			n.onNotice(ctx, no)
			if no.Doomed() && no.ID != "" {
				unacked = append(unacked, no)
			}
		case <-tick.C:
			if len(unacked) > 0 && n.holdsNothing() {
				for _, no := range unacked {
					if err := w.Ack(ctx, no); err != nil {
						n.log.Warn("acknowledging the notice failed", "id", no.ID, "err", err)
						continue
					}
					n.log.Info("notice acknowledged: the host is empty", "id", no.ID)
				}
				unacked = nil
			}
		}
	}
}

// onNotice acts on one notice.
func (n *Node) onNotice(ctx context.Context, no cloud.Notice) {
	deadline := no.Deadline
	if deadline.IsZero() {
		deadline = n.now().Add(30 * time.Second)
	}
	n.log.Warn("termination notice", "cloud", no.Cloud, "kind", no.Kind, "deadline", deadline, "reason", no.Reason)
	n.metrics.notices.WithLabelValues(no.Kind).Inc()
	hz := fsm.Hazard{Node: n.cfg.Name, Cloud: n.cfg.Cloud, Region: n.cfg.Region, Zone: n.cfg.Zone,
		InstanceType: n.cfg.InstanceType, Kind: no.Kind, At: no.SeenAt}
	if !no.Doomed() {
		n.applyLogged(ctx, fsm.HazardRecord{Hazard: hz})
		n.precopy(ctx)
		return
	}
	n.mu.Lock()
	n.doomedUntil = deadline // gossiped with the next metadata round, before Raft hears of it
	n.mu.Unlock()
	n.pushMeta()
	for attempt := 0; ctx.Err() == nil && attempt < 20; attempt++ {
		_, _, err := n.apply(ctx, fsm.NodeStateChange{Node: n.cfg.Name, State: fsm.NodeDoomed, Deadline: deadline, At: n.now()})
		if err == nil {
			break
		}
		n.log.Warn("recording the notice failed; retrying", "err", err)
		sleep(ctx, 100*time.Millisecond)
	}
	n.applyLogged(ctx, fsm.HazardRecord{Hazard: hz})
}

// precopy checkpoints every workload this node holds, now.
func (n *Node) precopy(ctx context.Context) {
	for _, w := range n.view().Workloads() {
		if w.Assignment.Holder != n.cfg.Name || w.Spec.Checkpoint.Mode == fsm.ModeNone {
			continue
		}
		if _, err := n.sup.Checkpoint(ctx, w.Spec.ID); err != nil {
			n.log.Warn("pre-copy checkpoint failed", "workload", w.Spec.ID, "err", err)
		}
	}
}

// holdsNothing reports whether the replica grants this node no workload.
func (n *Node) holdsNothing() bool {
	for _, w := range n.view().Workloads() {
		if w.Assignment.Holder == n.cfg.Name {
			return false
		}
	}
	return true
}
