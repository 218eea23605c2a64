package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/lifeboat/lifeboat/jepsen/cluster"
)

// PartitionHalves splits the hosts at random into two halves (the smaller
// one has n/2) and drops all traffic between them, both ways.
type PartitionHalves struct{}

func (PartitionHalves) Kind() string  { return "partition-halves" }
func (PartitionHalves) Class() string { return ClassNet }

func (n PartitionHalves) Inject(_ context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	if len(c.Hosts) < 2 {
		return nil, fmt.Errorf("%w: %s needs 2", ErrTooFewHosts, n.Kind())
	}
	hs := names(shuffled(c, r))
	a, b := hs[:len(hs)/2], hs[len(hs)/2:]
	detail := fmt.Sprintf("{%s} | {%s}", strings.Join(a, ","), strings.Join(b, ","))
	return dropFault(c, n.Kind(), detail, halvesPlan(a, b), "")
}

// halvesPlan cuts every link between a and b, both ways.
func halvesPlan(a, b []string) drops {
	d := drops{}
	for _, x := range a {
		d[x] = append(d[x], b...)
	}
	for _, y := range b {
		d[y] = append(d[y], a...)
	}
	return d
}

// IsolateLeader cuts the Raft leader (as most hosts name it) off from
// every other host, both ways.
type IsolateLeader struct{}

func (IsolateLeader) Kind() string  { return "isolate-leader" }
func (IsolateLeader) Class() string { return ClassNet }

func (n IsolateLeader) Inject(ctx context.Context, c *cluster.Cluster, _ *rand.Rand) (*Fault, error) {
	h, err := c.Leader(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNoTarget, n.Kind(), err)
	}
	return isolate(c, n.Kind(), "leader", h)
}

// IsolateHolder cuts the holder of one of the workloads (a random one
// each time) off from every other host, both ways.
func IsolateHolder(workloads ...string) Nemesis { return isolateHolder{workloads} }

type isolateHolder struct{ workloads []string }

func (isolateHolder) Kind() string  { return "isolate-holder" }
func (isolateHolder) Class() string { return ClassNet }

func (n isolateHolder) Inject(ctx context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	w, h, err := holderOf(ctx, c, r, n.Kind(), n.workloads)
	if err != nil {
		return nil, err
	}
	return isolate(c, n.Kind(), "holder of "+w, h)
}

// holderOf picks one of workloads at random and finds its holder.
func holderOf(ctx context.Context, c *cluster.Cluster, r *rand.Rand, kind string, workloads []string) (string, *cluster.Host, error) {
	if len(workloads) == 0 {
		return "", nil, fmt.Errorf("%w: %s: no workload named", ErrNoTarget, kind)
	}
	w := workloads[r.IntN(len(workloads))]
	h, err := c.Holder(ctx, w)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %s: %w", ErrNoTarget, kind, err)
	}
	return w, h, nil
}

func isolate(c *cluster.Cluster, kind, role string, h *cluster.Host) (*Fault, error) {
	var others []string
	for _, o := range c.Hosts {
		if o != h {
			others = append(others, o.Name)
		}
	}
	if len(others) == 0 {
		return nil, fmt.Errorf("%w: %s needs 2", ErrTooFewHosts, kind)
	}
	detail := fmt.Sprintf("%s (%s) | {%s}", h.Name, role, strings.Join(others, ","))
	return dropFault(c, kind, detail, halvesPlan([]string{h.Name}, others), "")
}

// OneWay drops A's packets to B and nothing else, for a random pair: B→A
// still arrives. (TCP connections either way fail, as their handshakes
// need both directions; gossip's UDP from B to A gets through.)
type OneWay struct{}

func (OneWay) Kind() string  { return "one-way" }
func (OneWay) Class() string { return ClassNet }

func (n OneWay) Inject(_ context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	if len(c.Hosts) < 2 {
		return nil, fmt.Errorf("%w: %s needs 2", ErrTooFewHosts, n.Kind())
	}
	hs := shuffled(c, r)
	a, b := hs[0].Name, hs[1].Name
	return dropFault(c, n.Kind(), a+" -> "+b+" dropped", drops{b: {a}}, "")
}

// Ring arranges the hosts in a random ring in which each reaches only its
// two neighbours: with five hosts every host sees a majority (itself and
// two), but no two majorities are the same. It needs 4 hosts (with 3,
// everyone is everyone's neighbour).
type Ring struct{}

func (Ring) Kind() string  { return "ring" }
func (Ring) Class() string { return ClassNet }

func (n Ring) Inject(_ context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	if len(c.Hosts) < 4 {
		return nil, fmt.Errorf("%w: %s needs 4, the cluster has %d", ErrTooFewHosts, n.Kind(), len(c.Hosts))
	}
	order := names(shuffled(c, r))
	return dropFault(c, n.Kind(), "ring "+strings.Join(order, "-")+"-"+order[0], ringPlan(order), "")
}

// ringPlan: host i drops what comes from every host but i-1 and i+1.
func ringPlan(order []string) drops {
	n := len(order)
	d := drops{}
	for i, x := range order {
		for j, y := range order {
			if j == i || j == (i+1)%n || j == (i+n-1)%n {
				continue
			}
			d[x] = append(d[x], y)
		}
	}
	return d
}

// Flaky drops Percent % (default 25) of the packets, at random, on every
// link among a random subset of 2 or more hosts, both ways.
type Flaky struct{ Percent int }

func (Flaky) Kind() string  { return "flaky" }
func (Flaky) Class() string { return ClassNet }

func (n Flaky) Inject(_ context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	if len(c.Hosts) < 2 {
		return nil, fmt.Errorf("%w: %s needs 2", ErrTooFewHosts, n.Kind())
	}
	p := n.Percent
	if p <= 0 || p >= 100 {
		p = 25
	}
	k := 2 + r.IntN(len(c.Hosts)-1) // 2..n
	subset := names(shuffled(c, r)[:k])
	d := drops{}
	for _, x := range subset {
		for _, y := range subset {
			if x != y {
				d[x] = append(d[x], y)
			}
		}
	}
	detail := fmt.Sprintf("%d%% loss among {%s}", p, strings.Join(subset, ","))
	return dropFault(c, n.Kind(), detail, d, fmt.Sprintf("numgen random mod 100 < %d", p))
}
