package node

import (
	"context"
	"fmt"
	"github.com/lifeboat/lifeboat/internal/monotime"
	"slices"
	"sync"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
)

// leaseBatchWindow is how long the leader gathers renewals into one entry.
const leaseBatchWindow = 20 * time.Millisecond

// leaseBatcher gathers node lease renewals on the leader so that a
// thousand nodes cost a handful of Raft entries per TTL, not a thousand.
type leaseBatcher struct {
	mu      sync.Mutex // guards pending and waiters
	pending map[string]bool
	waiters []chan error
	kick    chan struct{}
}

func newLeaseBatcher() *leaseBatcher {
	return &leaseBatcher{pending: map[string]bool{}, kick: make(chan struct{}, 1)}
}

// renew queues a renewal for node and waits until its batch is applied.
func (b *leaseBatcher) renew(ctx context.Context, node string) error {
	done := make(chan error, 1)
	b.mu.Lock()
	b.pending[node] = true
	b.waiters = append(b.waiters, done)
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// take empties the batch.
func (b *leaseBatcher) take() ([]string, []chan error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, 0, len(b.pending))
	for name := range b.pending {
		names = append(names, name)
	}
	slices.Sort(names) // the entry must not depend on map order
	waiters := b.waiters
	b.pending, b.waiters = map[string]bool{}, nil
	return names, waiters
}

// leaseFlushLoop applies gathered renewals as one LeaseRenew entry.
func (n *Node) leaseFlushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			n.failWaiters(ctx.Err())
			return
		case <-n.leases.kick:
		}
		if !sleep(ctx, leaseBatchWindow) {
			n.failWaiters(ctx.Err())
			return
		}
		names, waiters := n.leases.take()
		if len(names) == 0 {
			continue
		}
		at := n.mono()
		err := n.applyLeader(fsm.LeaseRenew{Nodes: names, At: n.now(), TTL: n.cfg.LeaseTTL})
		if err == nil {
			n.leaseRenewed(names, at)
		}
		n.metrics.leaseBatch(len(names), err)
		for _, w := range waiters {
			w <- err
		}
	}
}

func (n *Node) failWaiters(err error) {
	_, waiters := n.leases.take()
	for _, w := range waiters {
		w <- err
	}
}

// applyLeader applies a command only if this node leads (no forwarding).
func (n *Node) applyLeader(cmd fsm.Command) error {
	b, err := fsm.Encode(cmd)
	if err != nil {
		return err
	}
	_, _, err = n.applyLocal(b)
	return err
}

// renewLoop renews this node's lease every TTL/3 through the leader. The
// send time of the last acknowledged renewal is kept: the node's own view
// of its lease starts then, which is never later than the leader's.
func (n *Node) renewLoop(ctx context.Context) {
	doomChecked := false
	for first := true; first || sleep(ctx, n.cfg.renewEvery()); first = false {
		sent := n.mono()
		rctx, cancel := context.WithTimeout(ctx, n.cfg.renewEvery())
		index, err := n.renewOnce(rctx)
		cancel()
		if err != nil {
			n.log.Debug("lease renewal failed", "err", err)
			continue
		}
		n.mu.Lock()
		n.leaseSentAt = sent
		n.leaseIndex = max(n.leaseIndex, index)
		n.mu.Unlock()
		if !doomChecked && n.leaseHeldOnce() {
			doomChecked = true
			n.endStaleDoom(ctx)
		}
	}
}

// leaseHeldOnce reports whether the fence let this node's workloads run
// at least once since it started: its replica had caught up to a renewal.
func (n *Node) leaseHeldOnce() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.heldOnce || n.cfg.UnsafeNoFencing
}

// endStaleDoom returns this node to alive when the cluster still calls it
// doomed by a notice whose deadline passed before this agent started: the
// cloud took the host back and it booted again (a stopped GCP or Azure
// spot VM restarted with its disk). A notice still standing is seen again
// by the watcher, which dooms the host anew.
func (n *Node) endStaleDoom(ctx context.Context) {
	rec, ok := n.view().Node(n.cfg.Name)
	if !ok || rec.State != fsm.NodeDoomed || rec.Deadline.IsZero() || !rec.Deadline.Before(n.startedAt) {
		return
	}
	n.log.Info("booted after the deadline of the notice that doomed this host: alive again", "deadline", rec.Deadline)
	n.applyLogged(ctx, fsm.NodeStateChange{Node: n.cfg.Name, State: fsm.NodeAlive, At: n.now()})
}

// renewOnce renews the lease and returns the leader's applied index once
// the renewal is in: every grant the leader made before it is at or below.
func (n *Node) renewOnce(ctx context.Context) (uint64, error) {
	if n.isLeader() {
		if err := n.leases.renew(ctx, n.cfg.Name); err != nil {
			return 0, err
		}
		return n.machine.Index(), nil
	}
	leader := n.httpAddrOf(n.leaderName())
	if leader == "" {
		return 0, fmt.Errorf("renewing the lease: %w", api.ErrNoLeader)
	}
	var ans leaseAnswer
	err := n.peerCall(ctx, leader, "/v1/internal/lease", []byte(n.cfg.Name), &ans)
	return ans.Index, err
}

// leaseAnswer is the leader's answer to a renewal.
type leaseAnswer struct {
	Renewed string `json:"renewed"`
	// Index is the leader's applied index after the renewal.
	Index uint64 `json:"index"`
}

// leaseCaughtUp reports whether this node's replica has applied what the
// leader had when it last renewed this node's lease: a fenced holder
// thaws only then, so that a re-grant made while it was cut off is seen
// (and its copy killed) before the copy could run again.
func (n *Node) leaseCaughtUp() bool {
	n.mu.Lock()
	idx := n.leaseIndex
	n.mu.Unlock()
	return n.view().Index() >= idx
}

// leaseValidUntil is when, on the boot-time clock, this node's own view
// of its lease ends: the send time of its last acknowledged renewal plus
// the TTL shortened by the drift bound. Zero when it never renewed.
func (n *Node) leaseValidUntil() monotime.Instant {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.leaseSentAt.IsZero() {
		return 0
	}
	return n.leaseSentAt.Add(time.Duration(float64(n.cfg.LeaseTTL) * (1 - n.cfg.DriftBound)))
}

// LeaseValidUntil is leaseValidUntil on the wall clock, for people and
// tests; zero when the node never renewed.
func (n *Node) LeaseValidUntil() time.Time {
	v := n.leaseValidUntil()
	if v.IsZero() {
		return time.Time{}
	}
	return v.Wall(n.mono(), n.now())
}
