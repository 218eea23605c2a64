package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/cluster"
)

// Pause stops a random host's agent (SIGSTOP; its workloads keep running)
// and continues it (SIGCONT) on heal, but not before Hold has passed since
// the pause: set Hold above the agents' lease TTL so that the lease lapses
// while the agent is frozen.
type Pause struct{ Hold time.Duration }

func (Pause) Kind() string  { return "pause" }
func (Pause) Class() string { return ClassProcess }

func (n Pause) Inject(_ context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	h := pick(r, running(c))
	if h == nil {
		return nil, fmt.Errorf("%w: %s: no running agent", ErrNoTarget, n.Kind())
	}
	if err := h.Pause(); err != nil {
		return nil, err
	}
	until := time.Now().Add(n.Hold)
	heal := func(ctx context.Context) error {
		select {
		case <-time.After(time.Until(until)):
		case <-ctx.Done():
		}
		if !h.Running() {
			return nil // killed meanwhile: nothing to continue
		}
		return h.Resume()
	}
	return &Fault{Kind: n.Kind(), Detail: fmt.Sprintf("agent of %s stopped (at least %v)", h.Name, n.Hold),
		Hosts: []string{h.Name}, heal: heal}, nil
}

// KillRestart kills a random host with everything it runs (SIGKILL to
// every process in its namespace) and restarts its agent on heal, with
// the same data dir.
type KillRestart struct{}

func (KillRestart) Kind() string  { return "kill-restart" }
func (KillRestart) Class() string { return ClassProcess }

func (n KillRestart) Inject(_ context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	return killHost(c, n.Kind(), pick(r, running(c)))
}

// NoticeLost is a host that vanishes without the notice its cloud should
// have given: killed like KillRestart, restarted on heal. With Workload
// set it is the workload's holder, otherwise a random host.
type NoticeLost struct{ Workload string }

func (NoticeLost) Kind() string  { return "notice-lost" }
func (NoticeLost) Class() string { return ClassProcess }

func (n NoticeLost) Inject(ctx context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	h := pick(r, running(c))
	if n.Workload != "" {
		var err error
		if h, err = c.Holder(ctx, n.Workload); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrNoTarget, n.Kind(), err)
		}
	}
	return killHost(c, n.Kind(), h)
}

func killHost(c *cluster.Cluster, kind string, h *cluster.Host) (*Fault, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: %s: no running agent", ErrNoTarget, kind)
	}
	if err := h.Kill(); err != nil {
		return nil, err
	}
	heal := func(ctx context.Context) error {
		if h.Running() {
			return nil
		}
		return h.Restart(ctx)
	}
	return &Fault{Kind: kind, Detail: h.Name + " killed with its workloads", Hosts: []string{h.Name}, heal: heal}, nil
}
