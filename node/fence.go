package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/internal/monotime"
	"github.com/lifeboat/lifeboat/node/runtime"
)

// Fencing and silent loss. A holder's own view of its lease ends at
// leases.validUntil: the send time of its last acknowledged renewal plus
// TTL·(1−ρ). The leader marks the node lost once the lease it recorded
// (renewal time + TTL) lapses, and re-grants the node's workloads only
// TTL·ρ + lock-delay after that (recover.go). So an isolated holder has
// frozen its workloads (fence.loop) before any other node may start them.

// fenceInterval is how often a node checks its own lease.
const fenceInterval = 50 * time.Millisecond

// fence is the holder's side of fencing and doom: it freezes this node's
// workloads when its own lease runs out and thaws them once a renewal
// succeeds again, and it remembers the termination notice this host got.
type fence struct {
	name      string
	disabled  bool      // Config.Unsafe.NoFencing
	startedAt time.Time // when this agent started (wall clock)
	now       func() time.Time
	mono      func() monotime.Instant
	leases    ownLease
	rep       stateView
	prop      interface {
		applyLogged(context.Context, fsm.Command)
	}
	sync    interface{ syncTo(*fsm.Machine) }
	sup     freezer // set by Node.startRuntime, before any loop runs
	metrics *metrics
	log     *slog.Logger

	mu sync.Mutex // guards the fields below
	// fencedAt is when loop froze the workloads; zero when not fenced.
	fencedAt time.Time
	// heldOnce: loop let the workloads run at least once since start.
	heldOnce bool
	// doomChecked: held looked for a stale doom once.
	doomChecked bool
	// doomedUntil is the deadline of the termination notice this node got;
	// zero without one.
	doomedUntil time.Time
}

// ownLease is this node's own view of its lease (leases).
type ownLease interface {
	// validUntil is when the lease ends on the boot-time clock; zero
	// when it never renewed.
	validUntil() monotime.Instant
	// caughtUp reports whether the replica has applied what the leader
	// had at the last renewal.
	caughtUp() bool
}

// freezer is what the fence does to the workloads (runtime.Supervisor).
// Every method is safe to call from any goroutine.
type freezer interface {
	Fence(on bool)
	Freeze() []string
	Thaw() []string
	PIDs() []int
}

var _ freezer = (*runtime.Supervisor)(nil)

// loop freezes this node's workloads when its lease runs out and thaws
// them once a renewal succeeds again; by then the replica says whether
// they are still granted here, and the supervisor stops those that are
// not.
func (f *fence) loop(ctx context.Context) {
	t := time.NewTicker(fenceInterval)
	defer t.Stop()
	// A node starts fenced (Node.startRuntime): its replica on disk may be
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
		valid := f.leases.validUntil()
		expired := valid.IsZero() || f.mono().After(valid)
		switch {
		case expired && !fenced:
			fenced = true
			f.freeze()
		case !expired && fenced && !f.leases.caughtUp():
			// Renewed, but the replica may not show yet a re-grant the
			// leader made meanwhile: stay frozen until it has caught up.
		case !expired && fenced:
			fenced = false
			f.thaw()
		}
	}
}

func (f *fence) freeze() {
	f.mu.Lock()
	f.fencedAt = f.now()
	f.mu.Unlock()
	f.sup.Fence(true)
	f.log.Warn("lease ran out: workloads frozen", "frozen", f.sup.Freeze())
	f.metrics.fences.Inc()
}

func (f *fence) thaw() {
	f.mu.Lock()
	f.fencedAt, f.heldOnce = time.Time{}, true
	f.mu.Unlock()
	// Drop what is no longer granted here first, under the supervisor's
	// lock: Thaw then never touches it, and it dies frozen.
	f.sync.syncTo(f.rep.view())
	if thawed := f.sup.Thaw(); len(thawed) > 0 {
		f.log.Warn("lease renewed: workloads thawed", "thawed", thawed)
	} else {
		f.log.Info("lease held: workloads may run")
	}
	f.sup.Fence(false)
}

// since is when this node froze its workloads for want of a lease; zero
// while it is not fenced.
func (f *fence) since() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fencedAt
}

// held is called after every acknowledged lease renewal. The first time
// the fence has let the workloads run (the replica had caught up to a
// renewal), it ends a stale doom.
func (f *fence) held(ctx context.Context) {
	f.mu.Lock()
	check := !f.doomChecked && (f.heldOnce || f.disabled)
	if check {
		f.doomChecked = true
	}
	f.mu.Unlock()
	if check {
		f.endStaleDoom(ctx)
	}
}

// endStaleDoom returns this node to alive when the cluster still calls it
// doomed by a notice whose deadline passed before this agent started: the
// cloud took the host back and it booted again (a stopped GCP or Azure
// spot VM restarted with its disk). A notice still standing is seen again
// by the watcher, which dooms the host anew.
func (f *fence) endStaleDoom(ctx context.Context) {
	rec, ok := f.rep.view().Node(f.name)
	if !ok || rec.State != fsm.NodeDoomed || rec.Deadline.IsZero() || !rec.Deadline.Before(f.startedAt) {
		return
	}
	f.log.Info("booted after the deadline of the notice that doomed this host: alive again", "deadline", rec.Deadline)
	f.prop.applyLogged(ctx, fsm.NodeStateChange{Node: f.name, State: fsm.NodeAlive, At: f.now()})
}

// doom records this host's termination notice, to be gossiped before Raft
// hears of it.
func (f *fence) doom(deadline time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.doomedUntil = deadline
}

// noticeDeadline is the deadline of this host's own notice; zero without.
func (f *fence) noticeDeadline() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.doomedUntil
}

// doomed reports whether this host got a termination notice (its own
// watcher's, or the cluster's record of one).
func (f *fence) doomed() bool {
	if !f.noticeDeadline().IsZero() {
		return true
	}
	rec, ok := f.rep.view().Node(f.name)
	return ok && rec.State == fsm.NodeDoomed
}
