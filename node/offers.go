package node

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/runtime"
	"github.com/lifeboat/lifeboat/transfer"
)

// offers is the receiving side's policy for the transfer servers: which
// checkpoints a peer may push here (accept), which lazy checkpoint's
// memory a peer may read from here (pages), and what a received lazy
// final checkpoint starts (received). Lazy (post-copy) moves: the new
// holder restores from a final checkpoint without memory and fetches the
// memory from the old holder's frozen process, through the page relay of
// the transfer link (see runtime.LazyCheckpointer).
type offers struct {
	name string
	rep  *replica
	sup  *runtime.Supervisor // set by Node.startRuntime, before the transfer servers start
}

// offerWait bounds how long an offer waits for the replica to show its
// Prepare.
const offerWait = 3 * time.Second

// pagesWait bounds how long the old holder's replica may lag the commit of
// the lazy checkpoint whose memory the new holder asks for.
const pagesWait = 5 * time.Second

// accept: a peer may push a checkpoint only if it holds the workload and
// Raft has prepared exactly that checkpoint (seq and digest). The replica
// may lag the Prepare by a moment, so it waits for it, briefly.
func (o *offers) accept(ctx context.Context, peer string, m *transfer.Manifest, digest string) error {
	ctx, cancel := context.WithTimeout(ctx, offerWait)
	defer cancel()
	for {
		v := o.rep.view()
		changed := v.Notify()
		err := offerMatches(v, peer, m, digest)
		if err == nil {
			o.predial(v, peer, m.Workload, m.Seq, digest)
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return err
		}
	}
}

func offerMatches(v *fsm.Machine, peer string, m *transfer.Manifest, digest string) error {
	w, ok := v.Workload(m.Workload)
	if ok && slices.ContainsFunc(w.Checkpoints, func(c fsm.CheckpointRecord) bool { return c.Seq == m.Seq && c.Digest == digest }) {
		return nil // committed: what Raft recorded, from any peer (a fetch)
	}
	switch {
	case !ok:
		return fmt.Errorf("workload %s is unknown here", m.Workload)
	case w.Assignment.Holder != peer:
		return fmt.Errorf("%s does not hold workload %s (%q does)", peer, m.Workload, w.Assignment.Holder)
	case w.Pending == nil || w.Pending.Seq != m.Seq:
		return fmt.Errorf("checkpoint #%d of %s is not prepared in Raft", m.Seq, m.Workload)
	case w.Pending.Digest != digest:
		return fmt.Errorf("checkpoint #%d of %s was prepared with another manifest digest", m.Seq, m.Workload)
	}
	return nil
}

// pages is the page relay's policy: it connects peer to the page server
// of this node's lazy checkpoint seq of workload, when Raft committed that
// checkpoint from this node with peer among its holders — or, before the
// commit, prepared it from this node in a move to peer that is under way
// (the target restores it, stopped, before its grant) — and its dump
// still serves here.
func (o *offers) pages(ctx context.Context, peer, workload string, seq uint64) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, pagesWait)
	defer cancel()
	var why error
	err := o.rep.waitView(ctx, func(v *fsm.Machine) bool {
		why = lazyHolder(v, peer, workload, seq, o.name)
		return why == nil
	})
	if err != nil {
		return nil, why
	}
	addr, ok := o.sup.PageServer(workload, seq)
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

// received is told of every checkpoint the transfer server holds sealed
// after an offer: the final checkpoint of a lazy move to this node is
// restored at once and left stopped until the grant
// (runtime.Supervisor.PrestartLazy).
func (o *offers) received(peer, workload string, seq uint64, digest string) {
	if spec, rec, ok := o.lazyFinal(o.rep.view(), peer, workload, seq, digest); ok {
		o.sup.PrestartLazy(spec, rec)
	}
}

// predial is told of every offer accepted: for the final checkpoint of a
// lazy move to this node, the supervisor dials its page relay now, while
// the images come (runtime.Supervisor.PredialPages).
func (o *offers) predial(v *fsm.Machine, peer, workload string, seq uint64, digest string) {
	if spec, rec, ok := o.lazyFinal(v, peer, workload, seq, digest); ok {
		o.sup.PredialPages(spec, rec)
	}
}

// lazyFinal reports whether checkpoint seq (digest) of workload from peer
// is the final checkpoint of a lazy move to this node: a lazy one that
// peer, the holder, prepared. It returns the workload's spec and the
// checkpoint's record.
func (o *offers) lazyFinal(v *fsm.Machine, peer, workload string, seq uint64, digest string) (fsm.WorkloadSpec, fsm.CheckpointRecord, bool) {
	w, ok := v.Workload(workload)
	if !ok || peer == o.name || w.Assignment.Holder != peer {
		return fsm.WorkloadSpec{}, fsm.CheckpointRecord{}, false
	}
	if p := w.Pending; p != nil && p.Seq == seq && p.Digest == digest && p.LazyFrom == peer {
		return w.Spec, *p, true
	}
	return fsm.WorkloadSpec{}, fsm.CheckpointRecord{}, false
}
