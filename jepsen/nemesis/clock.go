package nemesis

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/cluster"
)

// ClassClock is the class of clock faults: they may overlap a network or
// a process fault in mixed schedules, which is where a lease that trusts
// the wall clock would break.
const ClassClock = "clock"

// ClockJump steps the wall clock of one agent (the leader, a workload's
// holder or any host, at random) forward or back by Min to Max, through
// the agent's test clock (--unsafe-clock-control, POST
// /v1/internal/clock); Heal puts it right. A real step (NTP, an
// operator) moves the wall clock and not the boot-time clock, and so does
// this one: the agents' leases must not notice.
type ClockJump struct {
	Min, Max  time.Duration
	Workloads []string // holders to choose among; none: leader or any host
}

func (ClockJump) Kind() string  { return "clock-jump" }
func (ClockJump) Class() string { return ClassClock }

func (n ClockJump) Inject(ctx context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	if n.Min <= 0 || n.Max < n.Min {
		return nil, fmt.Errorf("nemesis: %s: want 0 < Min <= Max, have %v, %v", n.Kind(), n.Min, n.Max)
	}
	var h *cluster.Host
	role := "host"
	switch r.IntN(3) {
	case 0:
		role = "leader"
		h, _ = c.Leader(ctx)
	case 1:
		if len(n.Workloads) > 0 {
			w := n.Workloads[r.IntN(len(n.Workloads))]
			role = "holder of " + w
			h, _ = c.Holder(ctx, w)
		}
	}
	if h == nil {
		role, h = "host", pick(r, running(c))
	}
	if h == nil {
		return nil, fmt.Errorf("%w: %s: no running agent", ErrNoTarget, n.Kind())
	}
	d := n.Min + time.Duration(r.Int64N(int64(n.Max-n.Min)+1))
	if r.IntN(2) == 0 {
		d = -d
	}
	if err := setClock(ctx, h, d); err != nil {
		return nil, fmt.Errorf("nemesis: %s on %s: %w", n.Kind(), h.Name, err)
	}
	heal := func(ctx context.Context) error {
		if !h.Running() {
			return nil // killed meanwhile: it restarted (or will) with a true clock
		}
		return setClock(ctx, h, 0)
	}
	return &Fault{Kind: n.Kind(), Detail: fmt.Sprintf("%s (%s) wall clock %+v", h.Name, role, d),
		Hosts: []string{h.Name}, heal: heal}, nil
}

// clockTimeout bounds one clock request; a paused agent does not answer.
const clockTimeout = 3 * time.Second

// setClock sets the agent's test-clock offset.
func setClock(ctx context.Context, h *cluster.Host, offset time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, clockTimeout)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"offset": offset.String()})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.PeerAPI()+"/v1/internal/clock", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.PeerHTTP().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("setting the clock: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return nil
}
