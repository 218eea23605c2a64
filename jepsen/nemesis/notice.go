package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/cluster"
)

// DefaultNoticeDeadline is the time from a notice to the promised end:
// shorter than the clouds' (30 s to 2 min) so that runs see many, long
// enough for the harness's small workloads to move.
const DefaultNoticeDeadline = 10 * time.Second

// Notice gives a random host's emulator a preemption notice with the
// deadline Deadline (default DefaultNoticeDeadline) from now. Heal is
// what the cloud does: at the deadline it takes the host back (every
// process in its namespace killed, the notice gone from the metadata)
// and the host boots again with its disk, as a stopped spot VM that is
// restarted does; the agent then finds itself past its doom and alive.
type Notice struct{ Deadline time.Duration }

func (Notice) Kind() string  { return "notice" }
func (Notice) Class() string { return ClassNotice }

func (n Notice) Inject(ctx context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	return notices(ctx, c, n.Kind(), pickN(r, c, 1), 1, n.Deadline)
}

// NoticeDuplicate gives the same random host the notice twice, a second
// apart, as clouds that repeat themselves do.
type NoticeDuplicate struct{ Deadline time.Duration }

func (NoticeDuplicate) Kind() string  { return "notice-duplicate" }
func (NoticeDuplicate) Class() string { return ClassNotice }

func (n NoticeDuplicate) Inject(ctx context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	return notices(ctx, c, n.Kind(), pickN(r, c, 1), 2, n.Deadline)
}

// NoticeMany gives Count random hosts (default 2) the notice at once.
type NoticeMany struct {
	Count    int
	Deadline time.Duration
}

func (NoticeMany) Kind() string  { return "notice-many" }
func (NoticeMany) Class() string { return ClassNotice }

func (n NoticeMany) Inject(ctx context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	k := n.Count
	if k <= 0 {
		k = 2
	}
	hs := pickN(r, c, k)
	if len(hs) < k {
		return nil, fmt.Errorf("%w: %s needs %d running hosts, %d run", ErrTooFewHosts, n.Kind(), k, len(hs))
	}
	return notices(ctx, c, n.Kind(), hs, 1, n.Deadline)
}

// pickN is k distinct random running hosts (fewer if fewer run).
func pickN(r *rand.Rand, c *cluster.Cluster, k int) []*cluster.Host {
	hs := running(c)
	r.Shuffle(len(hs), func(i, j int) { hs[i], hs[j] = hs[j], hs[i] })
	return hs[:min(k, len(hs))]
}

// notices gives each host times preemption notices, one second apart,
// with deadline d (default DefaultNoticeDeadline) from the first.
func notices(ctx context.Context, _ *cluster.Cluster, kind string, hs []*cluster.Host, times int, d time.Duration) (*Fault, error) {
	if len(hs) == 0 {
		return nil, fmt.Errorf("%w: %s: no running host", ErrNoTarget, kind)
	}
	if d <= 0 {
		d = DefaultNoticeDeadline
	}
	deadline := time.Now().Add(d)
	back := deadline // when the cloud takes the hosts back
	if slices.ContainsFunc(hs, func(h *cluster.Host) bool { return h.Cloud == cluster.GCP }) {
		// GCP's metadata carries no deadline: a preempted VM always gets
		// 30 s, and the agents count on that.
		if gcp := time.Now().Add(gcpPreemptionNotice); gcp.After(back) {
			back = gcp
		}
	}
	f := &Fault{Kind: kind, Hosts: names(hs), heal: func(ctx context.Context) error {
		return takeBack(ctx, hs, back)
	}}
	for i := range times {
		if i > 0 {
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return nil, errors.Join(ctx.Err(), f.Heal(context.Background()))
			}
		}
		for _, h := range hs {
			if err := h.Emu.Notice(ctx, cluster.NoticePreempt, deadline); err != nil {
				return nil, errors.Join(err, f.Heal(context.Background()))
			}
		}
	}
	f.Detail = fmt.Sprintf("preempt notice x%d on %s, deadline %v", times, strings.Join(f.Hosts, ","), d)
	return f, nil
}

// gcpPreemptionNotice is the time GCP gives a preempted VM.
const gcpPreemptionNotice = 30 * time.Second

// takeBack is the end of a notice: at the deadline each host is killed
// (if it still runs) and its emulator reset, then it boots again.
func takeBack(ctx context.Context, hs []*cluster.Host, deadline time.Time) error {
	select {
	case <-time.After(time.Until(deadline)):
	case <-ctx.Done():
		return ctx.Err()
	}
	var errs []error
	for _, h := range hs {
		if h.Running() {
			errs = append(errs, h.Kill())
		}
		errs = append(errs, h.Emu.Reset(ctx))
		if !h.Running() {
			errs = append(errs, h.Restart(ctx))
		}
	}
	return errors.Join(errs...)
}
