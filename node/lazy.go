package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
)

// Lazy (post-copy) moves: the new holder restores from a final checkpoint
// without memory and fetches the memory from the old holder's frozen
// process, through the page relay of the transfer link (see
// runtime.LazyCheckpointer).

// pagesWait bounds how long the old holder's replica may lag the commit of
// the lazy checkpoint whose memory the new holder asks for.
const pagesWait = 5 * time.Second

// lazyMove reports whether a move of w to `to` takes a lazy final
// checkpoint: the spec asks for it, it is a move (a park has no new
// holder to fetch the memory), and the target can restore one.
func (n *Node) lazyMove(w fsm.Workload, to string, park bool) bool {
	if park || !w.Spec.Checkpoint.LazyPages || w.Spec.Checkpoint.Mode != fsm.ModeCRIU {
		return false
	}
	rec, ok := n.view().Node(to)
	return ok && slices.Contains(rec.Modes, fsm.CapLazyPages)
}

// pagesFor is the transfer server's page relay policy: it connects peer
// to the page server of this node's lazy checkpoint seq of workload, when
// Raft committed that checkpoint from this node with peer among its
// holders — or, before the commit, prepared it from this node in a move
// to peer that is under way (the target restores it, stopped, before its
// grant) — and its dump still serves here.
func (n *Node) pagesFor(ctx context.Context, peer, workload string, seq uint64) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, pagesWait)
	defer cancel()
	var why error
	err := n.waitView(ctx, func(v *fsm.Machine) bool {
		why = lazyHolder(v, peer, workload, seq, n.cfg.Name)
		return why == nil
	})
	if err != nil {
		return nil, why
	}
	addr, ok := n.sup.PageServer(workload, seq)
	if !ok {
		return nil, fmt.Errorf("%w: the dump of lazy checkpoint #%d of %s no longer serves its memory here", api.ErrConflict, seq, workload)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// lazyHolder checks that v records lazy checkpoint seq of workload as
// taken on self, with peer among its holders or as the target of the
// move under way that prepared it.
func lazyHolder(v *fsm.Machine, peer, workload string, seq uint64, self string) error {
	w, ok := v.Workload(workload)
	if !ok {
		return fmt.Errorf("%w: no workload %q", fsm.ErrNotFound, workload)
	}
	if p := w.Pending; p != nil && p.Seq == seq && p.LazyFrom == self && w.Assignment.Holder == self &&
		slices.ContainsFunc(v.Migrations(), func(m fsm.Migration) bool {
			return m.Workload == workload && m.From == self && m.To == peer && m.Underway()
		}) {
		return nil
	}
	for _, rec := range w.Checkpoints {
		switch {
		case rec.Seq != seq:
		case rec.LazyFrom != self:
			return fmt.Errorf("%w: checkpoint #%d of %s is not a lazy checkpoint of %s", api.ErrConflict, seq, workload, self)
		case !slices.Contains(rec.Standbys, peer):
			return fmt.Errorf("%w: %s does not hold lazy checkpoint #%d of %s", api.ErrConflict, peer, seq, workload)
		default:
			return nil
		}
	}
	return fmt.Errorf("%w: no committed checkpoint #%d of %s", fsm.ErrNotFound, seq, workload)
}

// lazyReceived is told of every checkpoint the transfer server holds
// sealed after an offer: the final checkpoint of a lazy move to this node
// is restored at once and left stopped until the grant
// (runtime.Supervisor.PrestartLazy).
func (n *Node) lazyReceived(peer, workload string, seq uint64, digest string) {
	if spec, rec, ok := n.lazyFinal(n.view(), peer, workload, seq, digest); ok {
		n.sup.PrestartLazy(spec, rec)
	}
}

// predialLazy is told of every offer accepted: for the final checkpoint
// of a lazy move to this node, the supervisor dials its page relay now,
// while the images come (runtime.Supervisor.PredialPages).
func (n *Node) predialLazy(v *fsm.Machine, peer, workload string, seq uint64, digest string) {
	if spec, rec, ok := n.lazyFinal(v, peer, workload, seq, digest); ok {
		n.sup.PredialPages(spec, rec)
	}
}

// lazyFinal reports whether checkpoint seq (digest) of workload from peer
// is the final checkpoint of a lazy move to this node: a lazy one that
// peer, the holder, prepared. It returns the workload's spec and the
// checkpoint's record.
func (n *Node) lazyFinal(v *fsm.Machine, peer, workload string, seq uint64, digest string) (fsm.WorkloadSpec, fsm.CheckpointRecord, bool) {
	w, ok := v.Workload(workload)
	if !ok || peer == n.cfg.Name || w.Assignment.Holder != peer {
		return fsm.WorkloadSpec{}, fsm.CheckpointRecord{}, false
	}
	if p := w.Pending; p != nil && p.Seq == seq && p.Digest == digest && p.LazyFrom == peer {
		return w.Spec, *p, true
	}
	return fsm.WorkloadSpec{}, fsm.CheckpointRecord{}, false
}

// Pages connects to the page server of lazy checkpoint seq of workload id
// on node from, through its transfer port.
func (c *runtimeCluster) Pages(ctx context.Context, from, id string, seq uint64) (io.ReadWriteCloser, error) {
	m, ok := c.n.members()[from]
	if !ok || m.Meta.Addr == "" || m.Meta.TransferPort == 0 {
		return nil, fmt.Errorf("%s, which serves the memory of %s#%d, is not in gossip", from, id, seq)
	}
	addr := net.JoinHostPort(m.Meta.Addr, strconv.Itoa(int(m.Meta.TransferPort)))
	return c.n.pager.OpenPages(ctx, addr, from, id, seq)
}
