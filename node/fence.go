package node

import (
	"context"
	"time"
)

// Fencing and silent loss. A holder's own view of its lease ends at
// LeaseValidUntil: the send time of its last acknowledged renewal plus
// TTL·(1−ρ). The leader marks the node lost once the lease it recorded
// (renewal time + TTL) lapses, and re-grants the node's workloads only
// TTL·ρ + lock-delay after that. So an isolated holder has frozen its
// workloads (fenceLoop) before any other node may start them.

// fenceInterval is how often a node checks its own lease.
const fenceInterval = 50 * time.Millisecond

// fenceLoop freezes this node's workloads when its lease runs out and
// thaws them once a renewal succeeds again; by then the replica says
// whether they are still granted here, and the supervisor stops those
// that are not.
func (n *Node) fenceLoop(ctx context.Context) {
	t := time.NewTicker(fenceInterval)
	defer t.Stop()
	// A node starts fenced (startRuntime): its replica on disk may be
	// stale — a restarted holder whose workloads were re-granted while it
	// was down must not start them again from it — so nothing runs before
	// the first renewal and a replica caught up to it.
	fenced := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		valid := n.leaseValidUntil()
		expired := valid.IsZero() || n.mono().After(valid)
		switch {
		case expired && !fenced:
			fenced = true
			n.mu.Lock()
			n.fencedAt = n.now()
			n.mu.Unlock()
			n.sup.Fence(true)
			n.log.Warn("lease ran out: workloads frozen", "frozen", n.sup.Freeze())
			n.metrics.fences.Inc()
		case !expired && fenced && !n.leaseCaughtUp():
			// Renewed, but the replica may not show yet a re-grant the
			// leader made meanwhile: stay frozen until it has caught up.
		case !expired && fenced:
			fenced = false
			n.mu.Lock()
			n.fencedAt, n.heldOnce = time.Time{}, true
			n.mu.Unlock()
			// Drop what is no longer granted here first, under the
			// supervisor's lock: Thaw then never touches it, and it dies
			// frozen.
			n.syncTo(n.view())
			if thawed := n.sup.Thaw(); len(thawed) > 0 {
				n.log.Warn("lease renewed: workloads thawed", "thawed", thawed)
			} else {
				n.log.Info("lease held: workloads may run")
			}
			n.sup.Fence(false)
		}
	}
}

// FencedSince is when this node froze its workloads for want of a lease;
// zero while it is not fenced.
func (n *Node) FencedSince() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fencedAt
}
