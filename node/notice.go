package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/internal/wait"
	"github.com/lifeboat/lifeboat/node/cloud"
	"github.com/lifeboat/lifeboat/node/runtime"
)

// NoticeWatcher is what a peer needs of its cloud's termination watcher
// (cloud.NewWatcher).
type NoticeWatcher interface {
	Watch(ctx context.Context, out chan<- cloud.Notice) error
	Ack(ctx context.Context, n cloud.Notice) error
}

// notices turns this host's cloud notices into the cluster's.
type notices struct {
	w       NoticeWatcher
	host    fsm.Hazard // this host: node, cloud, region, zone, instance type
	rep     *replica
	prop    *proposer
	fence   *fence
	members *membership
	sup     *runtime.Supervisor // set by Node.startRuntime, before any loop runs
	now     func() time.Time
	metrics *metrics
	log     *slog.Logger
}

// loop turns the cloud's notices into the cluster's: a doomed host
// gossips it at once and records it in Raft (the leader then evacuates
// it); a rebalance recommendation checkpoints every workload here now, so
// that the standbys hold a fresh copy before a notice comes. Once a
// doomed host holds nothing, the notice is acknowledged (Azure's
// StartRequests).
func (ns *notices) loop(ctx context.Context) {
	w := ns.w
	if w == nil {
		return
	}
	notices := make(chan cloud.Notice, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Watch(ctx, notices); err != nil && ctx.Err() == nil {
			ns.log.Error("the termination watcher stopped", "err", err)
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
			ns.on(ctx, no)
			if no.Doomed() && no.ID != "" {
				unacked = append(unacked, no)
			}
		case <-tick.C:
			if len(unacked) > 0 && ns.holdsNothing() {
				for _, no := range unacked {
					if err := w.Ack(ctx, no); err != nil {
						ns.log.Warn("acknowledging the notice failed", "id", no.ID, "err", err)
						continue
					}
					ns.log.Info("notice acknowledged: the host is empty", "id", no.ID)
				}
				unacked = nil
			}
		}
	}
}

// on acts on one notice.
func (ns *notices) on(ctx context.Context, no cloud.Notice) {
	deadline := no.Deadline
	if deadline.IsZero() {
		deadline = ns.now().Add(30 * time.Second)
	}
	ns.log.Warn("termination notice", "cloud", no.Cloud, "kind", no.Kind, "deadline", deadline, "reason", no.Reason)
	ns.metrics.notices.WithLabelValues(no.Kind).Inc()
	hz := ns.host
	hz.Kind, hz.At = no.Kind, no.SeenAt
	if !no.Doomed() {
		ns.prop.applyLogged(ctx, fsm.HazardRecord{Hazard: hz})
		ns.precopy(ctx)
		return
	}
	ns.fence.doom(deadline) // gossiped at once, before Raft hears of it
	ns.members.push()
	for attempt := 0; ctx.Err() == nil && attempt < 20; attempt++ {
		_, _, err := ns.prop.apply(ctx, fsm.NodeStateChange{Node: hz.Node, State: fsm.NodeDoomed, Deadline: deadline, At: ns.now()})
		if err == nil {
			break
		}
		ns.log.Warn("recording the notice failed; retrying", "err", err)
		wait.Sleep(ctx, 100*time.Millisecond)
	}
	ns.prop.applyLogged(ctx, fsm.HazardRecord{Hazard: hz})
}

// precopy checkpoints every workload this node holds, now.
func (ns *notices) precopy(ctx context.Context) {
	for _, w := range ns.rep.view().Workloads() {
		if w.Assignment.Holder != ns.host.Node || w.Spec.Checkpoint.Mode == fsm.ModeNone {
			continue
		}
		if _, err := ns.sup.Checkpoint(ctx, w.Spec.ID); err != nil {
			ns.log.Warn("pre-copy checkpoint failed", "workload", w.Spec.ID, "err", err)
		}
	}
}

// holdsNothing reports whether the replica grants this node no workload.
func (ns *notices) holdsNothing() bool {
	for _, w := range ns.rep.view().Workloads() {
		if w.Assignment.Holder == ns.host.Node {
			return false
		}
	}
	return true
}
