package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/transfer"
)

// committer is the holder's side of the two-phase commit of a sealed
// local checkpoint: Prepare in Raft (a pending record with the manifest's
// digest), ship it to the workload's standbys and to the nodes that must
// have it, each of which verifies it against that record before it acks
// (offers.go), then Commit listing this node and every node that acked.
type committer struct {
	name    string
	state   stateView // the replica
	peers   peerBook  // the directory
	prop    commander // the proposer
	sender  checkpointSender
	crash   crashPoints
	now     func() time.Time
	metrics *metrics
	log     *slog.Logger

	mu sync.Mutex // guards prepared
	// prepared is the last checkpoint seq this node prepared per workload.
	prepared map[string]uint64
}

// stateView is the replicated state as this node reads it now (replica).
type stateView interface{ view() *fsm.Machine }

// peerBook is gossip's view of the peers (directory); the caller must not
// modify the map.
type peerBook interface {
	members() map[string]gossip.Member
}

// commander commits commands through Raft (proposer); it may block for
// the forward timeout.
type commander interface {
	apply(ctx context.Context, cmd fsm.Command) (uint64, json.RawMessage, error)
}

// checkpointSender ships a sealed checkpoint to one peer and returns once
// the peer has verified and sealed it (transfer.Client).
type checkpointSender interface {
	Send(ctx context.Context, addr, peer string, ck *transfer.Checkpoint) (transfer.SendStats, error)
}

// errNoStandby means no standby verified a checkpoint that had standbys to
// go to: it is aborted rather than committed with no copy off this host.
var errNoStandby = errors.New("no standby verified the checkpoint")

// commit commits ck. It aborts instead when a node in must did not ack,
// or when there were standbys and none acked. A workload with no standby
// (a one-node cluster, or no eligible peer) commits with this node's copy
// alone, and says so in the log.
func (c *committer) commit(ctx context.Context, id string, epoch uint64, ck *transfer.Checkpoint, must ...string) error {
	return c.commitTo(ctx, id, epoch, ck, false, must)
}

// commitLazy commits a lazy final checkpoint for its new holder to alone:
// it holds no memory, so it is no copy for the standbys to keep. It is
// shipped while Raft prepares it.
func (c *committer) commitLazy(ctx context.Context, id string, epoch uint64, ck *transfer.Checkpoint, to string) error {
	return c.commitTo(ctx, id, epoch, ck, true, []string{to})
}

// lastPrepared is the last checkpoint seq this node prepared for id: a
// member's mirror may not show it yet.
func (c *committer) lastPrepared(id string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.prepared[id]
}

// commitTo is commit; a lazy checkpoint goes to must alone.
func (c *committer) commitTo(ctx context.Context, id string, epoch uint64, ck *transfer.Checkpoint, lazy bool, must []string) error {
	m := ck.Manifest
	prep := fsm.CheckpointPrepare{Workload: id, Epoch: epoch, Seq: m.Seq, Digest: ck.Digest, Bytes: m.Bytes(), At: c.now()}
	targets := c.targets(id, lazy, must)
	var early <-chan shipResult
	if lazy {
		// A lazy move's images go to the target while Raft prepares
		// them, on the move's critical path: the target takes the offer
		// only once its replica shows the Prepare (offers.accept), and
		// the dial overlaps the Prepare's commit.
		prep.LazyFrom = c.name
		shipCtx, cancelShip := context.WithCancel(ctx)
		defer cancelShip()
		early = c.shipAsync(shipCtx, targets, ck)
		if _, _, err := c.prop.apply(ctx, prep); err != nil {
			cancelShip()
			<-early
			return fmt.Errorf("prepare checkpoint #%d: %w", m.Seq, err)
		}
	} else if _, _, err := c.prop.apply(ctx, prep); err != nil {
		return fmt.Errorf("prepare checkpoint #%d: %w", m.Seq, err)
	}
	c.mu.Lock()
	c.prepared[id] = max(c.prepared[id], m.Seq)
	c.mu.Unlock()
	c.crash.at(crashPrepared)
	var r shipResult
	if early != nil {
		r = <-early
	} else {
		r.acked, r.errs = c.shipAll(ctx, targets, ck)
	}
	if err := c.decide(ctx, id, ck, targets, must, r); err != nil {
		return err
	}
	c.crash.at(crashCommitted)
	c.metrics.checkpointBytes.Add(float64(m.Bytes()))
	return nil
}

// targets lists the nodes a checkpoint goes to: must, and the standbys
// unless it is lazy; never this node.
func (c *committer) targets(id string, lazy bool, must []string) []string {
	targets := must
	if w, ok := c.state.view().Workload(id); ok && !lazy {
		targets = append(slices.Clone(must), w.Assignment.Standbys...)
	}
	return slices.DeleteFunc(slices.Compact(sortedCopy(targets)), func(s string) bool { return s == c.name })
}

// decide commits a prepared checkpoint that the nodes in r acked, or
// aborts it when a node in must did not ack or no standby did.
func (c *committer) decide(ctx context.Context, id string, ck *transfer.Checkpoint, targets, must []string, r shipResult) error {
	seq := ck.Manifest.Seq
	missing := slices.DeleteFunc(slices.Clone(must), func(s string) bool { return slices.Contains(r.acked, s) })
	var fail error
	switch {
	case len(missing) > 0:
		fail = fmt.Errorf("checkpoint #%d did not reach %v: %w", seq, missing, errors.Join(r.errs...))
	case len(targets) > 0 && len(r.acked) == 0:
		fail = fmt.Errorf("checkpoint #%d: %w: %w", seq, errNoStandby, errors.Join(r.errs...))
	}
	if fail != nil {
		abort := fsm.CheckpointAbort{Workload: id, Seq: seq, Reason: fail.Error()}
		if _, _, err := c.prop.apply(context.WithoutCancel(ctx), abort); err != nil {
			c.log.Warn("checkpoint abort not recorded", "workload", id, "seq", seq, "err", err)
		}
		return fail
	}
	if len(targets) == 0 {
		c.log.Warn("checkpoint committed with no standby: its only copy is on this host", "workload", id, "seq", seq)
	} else if len(r.errs) > 0 {
		c.log.Warn("checkpoint missed some standbys", "workload", id, "seq", seq, "acked", r.acked, "err", errors.Join(r.errs...))
	}
	c.crash.at(crashShipped)
	holders := append([]string{c.name}, r.acked...)
	commit := fsm.CheckpointCommit{Workload: id, Seq: seq, Digest: ck.Digest, Standbys: holders, At: c.now()}
	if _, _, err := c.prop.apply(ctx, commit); err != nil {
		return fmt.Errorf("commit checkpoint #%d: %w", seq, err)
	}
	return nil
}

// shipResult is what shipAll returns.
type shipResult struct {
	acked []string
	errs  []error
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// shipAsync is shipAll in a goroutine; its one result comes on the
// channel, which the caller must read.
func (c *committer) shipAsync(ctx context.Context, targets []string, ck *transfer.Checkpoint) <-chan shipResult {
	out := make(chan shipResult, 1)
	go func() {
		acked, errs := c.shipAll(ctx, targets, ck)
		out <- shipResult{acked, errs}
	}()
	return out
}

// shipAll sends ck to every target in parallel and returns those that
// acked, sorted, and the errors of the others.
func (c *committer) shipAll(ctx context.Context, targets []string, ck *transfer.Checkpoint) ([]string, []error) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		acked []string
		errs  []error
	)
	members := c.peers.members()
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.ship(ctx, members[t], t, ck)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", t, err))
				return
			}
			acked = append(acked, t)
		}()
	}
	wg.Wait()
	slices.Sort(acked)
	return acked, errs
}

// ship sends ck to one peer, found in gossip.
func (c *committer) ship(ctx context.Context, m gossip.Member, name string, ck *transfer.Checkpoint) error {
	addr := metaAddr(m, transferPort)
	if m.Name == "" || m.State != gossip.MemberAlive || addr == "" {
		return fmt.Errorf("%s is not alive in gossip", name)
	}
	begin := time.Now()
	st, err := c.sender.Send(ctx, addr, name, ck)
	if err != nil {
		c.metrics.transfers.WithLabelValues("failed").Inc()
		return err
	}
	c.metrics.transfers.WithLabelValues("ok").Inc()
	c.metrics.transferBytes.Add(float64(st.BytesSent))
	c.log.Info("checkpoint shipped", "workload", ck.Manifest.Workload, "seq", ck.Manifest.Seq, "to", name,
		"bytes", st.Bytes, "sent", st.BytesSent, "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

// sendCommitted sends committed checkpoint seq of workload from store to
// node to (a fetch by a node that lacks it).
func (c *committer) sendCommitted(ctx context.Context, store *transfer.Store, workload string, seq uint64, to string) error {
	wl, ok := c.state.view().Workload(workload)
	if !ok {
		return fmt.Errorf("%w: no workload %q", fsm.ErrNotFound, workload)
	}
	i := slices.IndexFunc(wl.Checkpoints, func(r fsm.CheckpointRecord) bool { return r.Seq == seq })
	if i < 0 {
		return fmt.Errorf("%w: checkpoint #%d of %s is not committed", fsm.ErrNotFound, seq, workload)
	}
	ck, err := store.Get(workload, seq)
	if err != nil {
		return fmt.Errorf("%w: %v", fsm.ErrNotFound, err)
	}
	if ck.Digest != wl.Checkpoints[i].Digest {
		return fmt.Errorf("%w: checkpoint #%d of %s here has another digest than Raft records", api.ErrConflict, seq, workload)
	}
	return c.ship(ctx, c.peers.members()[to], to, ck)
}
