package node

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/internal/monotime"
	"github.com/lifeboat/lifeboat/internal/wait"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/peer"
)

// leases keeps both ends of the node leases, on the boot-time clock that
// no wall-clock step moves (clock.go):
//   - on the leader, when it applied each node's last renewal during this
//     leadership, and so when each lease ends;
//   - on every node, the send time of its own last acknowledged renewal,
//     which starts its own view of its lease, never later than the
//     leader's.
//
// Its loops renew this node's lease (renewLoop) and, on the leader, apply
// the gathered renewals (flushLoop).
type leases struct {
	name    string
	ttl     time.Duration
	drift   float64
	now     func() time.Time
	mono    func() monotime.Instant
	rep     *replica
	prop    *proposer
	call    *peer.Client
	batch   *leaseBatcher
	metrics *metrics
	log     *slog.Logger

	mu sync.Mutex // guards the fields below
	// leaderSince is when this node last became leader (zero: not leader).
	leaderSince monotime.Instant
	// seen is, on the leader, when it applied each node's last renewal
	// (this leadership only).
	seen map[string]monotime.Instant
	// sentAt is the send time of this node's last acknowledged renewal.
	sentAt monotime.Instant
	// index is the leader's applied index at that renewal.
	index uint64
}

// renewEvery is how often a node renews its lease.
func (l *leases) renewEvery() time.Duration { return l.ttl / 3 }

// leading records a change of leadership: a new leader's view of the
// leases starts empty, and every lease it sees runs from now.
func (l *leases) leading(is bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = map[string]monotime.Instant{}
	l.leaderSince = 0
	if is {
		l.leaderSince = l.mono()
	}
}

// ledFor is how long this node has led (zero when it does not lead).
func (l *leases) ledFor() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.leaderSince.IsZero() {
		return 0
	}
	return l.mono().Sub(l.leaderSince)
}

// end is when, on this leader's boot-time clock, node's lease ends: TTL
// after the last renewal this leader applied, or after it became leader
// — a renewal the previous leader applied ended no later than that — so a
// new leader first waits one TTL before it calls a node silent.
func (l *leases) end(node string) monotime.Instant {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.seen[node], l.leaderSince).Add(l.ttl)
}

// renewed records, on the leader, that renewals of nodes applied; at is
// when the batch was taken, before it went through Raft.
func (l *leases) renewed(nodes []string, at monotime.Instant) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.leaderSince.IsZero() {
		return
	}
	for _, name := range nodes {
		l.seen[name] = max(l.seen[name], at)
	}
}

// validUntil is when, on the boot-time clock, this node's own view of its
// lease ends: the send time of its last acknowledged renewal plus the TTL
// shortened by the drift bound. Zero when it never renewed.
func (l *leases) validUntil() monotime.Instant {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sentAt.IsZero() {
		return 0
	}
	return l.sentAt.Add(time.Duration(float64(l.ttl) * (1 - l.drift)))
}

// caughtUp reports whether this node's replica has applied what the
// leader had when it last renewed this node's lease: a fenced holder
// thaws only then, so that a re-grant made while it was cut off is seen
// (and its copy killed) before the copy could run again.
func (l *leases) caughtUp() bool {
	l.mu.Lock()
	idx := l.index
	l.mu.Unlock()
	return l.rep.view().Index() >= idx
}

// renewLoop renews this node's lease every TTL/3 through the leader and
// calls held after each acknowledged renewal.
func (l *leases) renewLoop(ctx context.Context, held func(context.Context)) {
	for first := true; first || wait.Sleep(ctx, l.renewEvery()); first = false {
		sent := l.mono()
		rctx, cancel := context.WithTimeout(ctx, l.renewEvery())
		index, err := l.renewOnce(rctx)
		cancel()
		if err != nil {
			l.log.Debug("lease renewal failed", "err", err)
			continue
		}
		l.mu.Lock()
		l.sentAt = sent
		l.index = max(l.index, index)
		l.mu.Unlock()
		held(ctx)
	}
}

// renewOnce renews the lease and returns the leader's applied index once
// the renewal is in: every grant the leader made before it is at or below.
func (l *leases) renewOnce(ctx context.Context) (uint64, error) {
	if l.rep.isLeader() {
		if err := l.batch.renew(ctx, l.name); err != nil {
			return 0, err
		}
		return l.rep.machine.Index(), nil
	}
	leader := l.rep.dir.peerAddrOf(l.rep.leaderName())
	if leader == "" {
		return 0, fmt.Errorf("renewing the lease: %w", api.ErrNoLeader)
	}
	ans, err := l.call.Lease(ctx, leader, peer.LeaseRequest{Node: l.name})
	return ans.Index, err
}

// flushLoop applies gathered renewals as one LeaseRenew entry.
func (l *leases) flushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			l.batch.fail(ctx.Err())
			return
		case <-l.batch.kick:
		}
		if !wait.Sleep(ctx, leaseBatchWindow) {
			l.batch.fail(ctx.Err())
			return
		}
		names, waiters := l.batch.take()
		if len(names) == 0 {
			continue
		}
		at := l.mono()
		err := l.prop.applyLeader(fsm.LeaseRenew{Nodes: names, At: l.now(), TTL: l.ttl})
		if err == nil {
			l.renewed(names, at)
		}
		l.metrics.leaseBatch(len(names), err)
		for _, w := range waiters {
			w <- err
		}
	}
}

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

// fail answers every waiting renewal with err.
func (b *leaseBatcher) fail(err error) {
	_, waiters := b.take()
	for _, w := range waiters {
		w <- err
	}
}
