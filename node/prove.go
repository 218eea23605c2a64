package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/lifeboat/lifeboat/gossip"
)

// prover checks that a gossip member is a peer: that the host at the
// address it gossips holds a peer certificate of the cluster CA naming
// it. Gossip alone proves nothing (anyone with the gossip key, or none
// when a key leaks, can join the pool); the leader records a member in
// Raft only once it is proven, and autopilot makes only recorded members
// servers, so an unproven host is never in Raft, never leased, never
// placed work and never sent state (every peer endpoint needs the
// certificate too).
type prover struct {
	call interface {
		Prove(ctx context.Context, addr, name string) error
	}
	retry time.Duration // after a failed proof
	now   func() time.Time
	log   *slog.Logger
	queue chan proofReq

	mu   sync.Mutex // guards seen
	seen map[string]proof
}

type proofReq struct{ name, addr string }

// proof is what the prover knows of one member at one address.
type proof struct {
	addr string
	ok   bool
	busy bool      // queued or being checked
	at   time.Time // of the last failed check
}

// proofTimeout bounds one check: a host that swallows packets must not
// hold up the others for long.
const proofTimeout = 2 * time.Second

func newProver(call interface {
	Prove(ctx context.Context, addr, name string) error
}, now func() time.Time, log *slog.Logger) *prover {
	return &prover{call: call, retry: 5 * time.Second, now: now, log: log, queue: make(chan proofReq, 64),
		seen: map[string]proof{}}
}

// proven reports whether member m has proven it is the peer it names, at
// the address it gossips now; if it has not, a check is queued (at most
// one at a time per member, and a failed one is retried after p.retry).
func (p *prover) proven(m gossip.Member) bool {
	addr := metaAddr(m, raftPort)
	if addr == "" {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, have := p.seen[m.Name]
	same := have && pr.addr == addr
	switch {
	case same && pr.ok:
		return true
	case same && (pr.busy || p.now().Sub(pr.at) < p.retry):
		return false
	}
	select {
	case p.queue <- proofReq{name: m.Name, addr: addr}:
		p.seen[m.Name] = proof{addr: addr, busy: true, at: pr.at}
	default: // full: asked again next round
	}
	return false
}

// loop runs the queued checks one at a time until ctx ends.
func (p *prover) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-p.queue:
			cctx, cancel := context.WithTimeout(ctx, proofTimeout)
			err := p.call.Prove(cctx, r.addr, r.name)
			cancel()
			p.done(r, err)
		}
	}
}

func (p *prover) done(r proofReq, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur := p.seen[r.name]; cur.addr != r.addr {
		return // the member moved meanwhile; its new address is asked for anew
	}
	if err != nil {
		p.log.Warn("gossip member not taken in: it did not prove a peer certificate of the cluster CA",
			"peer", r.name, "addr", r.addr, "err", err)
		p.seen[r.name] = proof{addr: r.addr, at: p.now()}
		return
	}
	p.log.Info("gossip member proved its certificate", "peer", r.name, "addr", r.addr)
	p.seen[r.name] = proof{addr: r.addr, ok: true}
}
