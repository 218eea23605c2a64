package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/cluster"
)

// Crash2PC kills a workload's holder at one boundary of the two-phase
// commit or of a handoff, chosen at random: after Prepare, after the
// standbys verified (before Commit), after Commit, or after a move's grant
// (before the target runs). It writes the boundary into the holder's
// DATA_DIR/crash-at (the agents must run with --unsafe-crash-points),
// starts a checkpoint — or, for "granted", a move to another host — and
// when the agent has died there, kills the rest of the host with it. Heal
// restarts the agent. If the boundary is not reached within Wait, the
// fault is recorded as such and healed like the others.
type Crash2PC struct {
	Workloads []string
	Wait      time.Duration
}

// crashPoints mirrors node.CrashPoints (kept apart: the harness drives the
// binary, it does not link the node).
var crashPoints = []string{"prepared", "shipped", "committed", "granted"}

// KillAt2PC is Crash2PC over workloads, waiting up to 10 s.
func KillAt2PC(workloads ...string) Crash2PC {
	return Crash2PC{Workloads: slices.Clone(workloads), Wait: 10 * time.Second}
}

func (Crash2PC) Kind() string  { return "kill-at-2pc" }
func (Crash2PC) Class() string { return ClassProcess }

func (n Crash2PC) Inject(ctx context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	if len(n.Workloads) == 0 {
		return nil, fmt.Errorf("%w: %s: no workload named", ErrNoTarget, n.Kind())
	}
	id := n.Workloads[r.IntN(len(n.Workloads))]
	h, err := c.Holder(ctx, id)
	if err != nil || !h.Running() || h.Paused() {
		return nil, fmt.Errorf("%w: %s: holder of %s: %v", ErrNoTarget, n.Kind(), id, err)
	}
	point := crashPoints[r.IntN(len(crashPoints))]
	path := filepath.Join(h.Dir(), "data", "crash-at") // the agent's --data-dir
	if err := os.WriteFile(path, []byte(point), 0o644); err != nil {
		return nil, fmt.Errorf("%s: %w", n.Kind(), err)
	}
	go func() { // the answer does not matter: the agent dies under it
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.Wait)
		defer cancel()
		if point == "granted" {
			if to := otherRunning(c, h, r); to != "" {
				_, _ = h.Client().Migrate(actx, id, to)
			}
			return
		}
		_, _ = h.Client().Checkpoint(actx, id)
	}()
	deadline := time.Now().Add(n.Wait)
	for h.Running() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	detail := fmt.Sprintf("%s (holder of %s) killed after %s", h.Name, id, point)
	if h.Running() {
		_ = os.Remove(path)
		detail = fmt.Sprintf("%s (holder of %s) did not reach %s within %v", h.Name, id, point, n.Wait)
	} else if err := h.Kill(); err != nil { // the host dies with its agent
		return nil, err
	}
	heal := func(ctx context.Context) error {
		_ = os.Remove(path)
		if h.Running() {
			return nil
		}
		return h.Restart(ctx)
	}
	return &Fault{Kind: n.Kind(), Detail: detail, Hosts: []string{h.Name}, heal: heal}, nil
}

// otherRunning names a running host other than h.
func otherRunning(c *cluster.Cluster, h *cluster.Host, r *rand.Rand) string {
	var names []string
	for _, o := range running(c) {
		if o != h && !o.Paused() {
			names = append(names, o.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return names[r.IntN(len(names))]
}

// NoticeMidCheckpoint starts a checkpoint of a workload on its holder and
// gives the holder's host a preemption notice while it runs (0–300 ms
// later): the evacuation meets an in-flight two-phase commit.
type NoticeMidCheckpoint struct {
	Workloads []string
	Deadline  time.Duration
}

// NoticeInCheckpoint is NoticeMidCheckpoint over workloads.
func NoticeInCheckpoint(workloads ...string) NoticeMidCheckpoint {
	return NoticeMidCheckpoint{Workloads: slices.Clone(workloads)}
}

func (NoticeMidCheckpoint) Kind() string  { return "notice-mid-checkpoint" }
func (NoticeMidCheckpoint) Class() string { return ClassNotice }

func (n NoticeMidCheckpoint) Inject(ctx context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	if len(n.Workloads) == 0 {
		return nil, fmt.Errorf("%w: %s: no workload named", ErrNoTarget, n.Kind())
	}
	id := n.Workloads[r.IntN(len(n.Workloads))]
	h, err := c.Holder(ctx, id)
	if err != nil || !h.Running() {
		return nil, fmt.Errorf("%w: %s: holder of %s: %v", ErrNoTarget, n.Kind(), id, err)
	}
	go func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = h.Client().Checkpoint(cctx, id)
	}()
	time.Sleep(time.Duration(r.IntN(300)) * time.Millisecond)
	f, err := notices(ctx, c, n.Kind(), []*cluster.Host{h}, 1, n.Deadline)
	if err == nil {
		f.Detail = fmt.Sprintf("during a checkpoint of %s: %s", id, f.Detail)
	}
	return f, err
}
