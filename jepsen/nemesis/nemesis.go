// Package nemesis injects the faults of a Jepsen run into a
// jepsen/cluster: network faults as nftables rules inside the hosts'
// namespaces (dropping on input, so that senders see no error, as when a
// cable is cut), process faults as signals, and cloud faults as notices
// on the hosts' metadata emulators. Traffic between the harness (the
// switch's root end) and the hosts is never cut: clients and emulators
// keep reaching every host. Delay comes from a userspace TCP proxy (no
// netem here), clock jumps from the agents' test clock
// (--unsafe-clock-control).
package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/lifeboat/lifeboat/jepsen/cluster"
)

// Nemesis injects one kind of fault. The schedule (Run) calls Inject from
// its one goroutine; Inject may block while it sets the fault up (bounded
// by ctx) and returns once the fault is in effect.
type Nemesis interface {
	// Kind names the fault in the history ("partition-halves", …).
	Kind() string
	// Inject puts the fault in place on c, choosing hosts with r.
	Inject(ctx context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error)
}

// Classes of nemeses: with Schedule.Mixed, two faults overlap only when
// their classes differ.
const (
	ClassNet     = "net"
	ClassProcess = "process"
	ClassNotice  = "notice"
)

// Classed is implemented by nemeses that name their class; others count
// as their own Kind.
type Classed interface{ Class() string }

// Errors callers branch on.
var (
	// ErrUnsupported: the fault cannot be made on this machine; the
	// schedule drops the nemesis.
	ErrUnsupported = errors.New("nemesis: not available here")
	// ErrTooFewHosts: the cluster is too small for the fault.
	ErrTooFewHosts = errors.New("nemesis: too few hosts")
	// ErrNoTarget: no host fits (none running, no leader known, …).
	ErrNoTarget = errors.New("nemesis: no host to act on")
)

// Link is a directed link: From's packets to To.
type Link struct{ From, To string }

func (l Link) String() string { return l.From + "->" + l.To }

// Fault is one injected fault, until Heal undoes it.
type Fault struct {
	Kind   string
	Detail string   // for the history: what was done to whom
	Hosts  []string // the hosts it acts on
	// Links are, for network faults, the directed links whose packets
	// are dropped (for flaky, dropped with probability Percent %).
	Links []Link

	heal   func(ctx context.Context) error
	mu     sync.Mutex // guards healed
	healed bool
}

// Heal undoes the fault. It is safe to call again, also after an error
// (it retries what failed); after a success it does nothing.
func (f *Fault) Heal(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.healed || f.heal == nil {
		return nil
	}
	if err := f.heal(ctx); err != nil {
		return fmt.Errorf("nemesis: healing %s (%s): %w", f.Kind, f.Detail, err)
	}
	f.healed = true
	return nil
}

// Healed reports whether Heal succeeded.
func (f *Fault) Healed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.healed
}

// HealAll heals every fault, also when some fail, and returns the errors.
func HealAll(ctx context.Context, faults []*Fault) error {
	var errs []error
	for _, f := range faults {
		if f != nil {
			errs = append(errs, f.Heal(ctx))
		}
	}
	return errors.Join(errs...)
}

// running lists the hosts whose agent runs and is not paused.
func running(c *cluster.Cluster) []*cluster.Host {
	var out []*cluster.Host
	for _, h := range c.Hosts {
		if h.Running() && !h.Paused() {
			out = append(out, h)
		}
	}
	return out
}

// pick is a random host of hosts, nil if there is none.
func pick(r *rand.Rand, hosts []*cluster.Host) *cluster.Host {
	if len(hosts) == 0 {
		return nil
	}
	return hosts[r.IntN(len(hosts))]
}

// shuffled is a random permutation of c's hosts.
func shuffled(c *cluster.Cluster, r *rand.Rand) []*cluster.Host {
	hs := append([]*cluster.Host(nil), c.Hosts...)
	r.Shuffle(len(hs), func(i, j int) { hs[i], hs[j] = hs[j], hs[i] })
	return hs
}

func names(hs []*cluster.Host) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name
	}
	return out
}
