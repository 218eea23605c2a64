package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/peer"
	"github.com/lifeboat/lifeboat/node/runtime"
	"github.com/lifeboat/lifeboat/transfer"
)

// runtimeCluster is the supervisor's view of the cluster
// (runtime.Cluster): reports and checkpoint records go through Raft,
// reads come from this node's replica.
type runtimeCluster struct {
	name    string
	rep     *replica
	prop    *proposer
	commits *committer
	call    *peer.Client
	pager   pageOpener // set by Node.startTransfer
	now     func() time.Time
	log     *slog.Logger
}

var _ runtime.Cluster = (*runtimeCluster)(nil)

// pageOpener connects to the page server of a lazy checkpoint on a peer
// (transfer.Client).
type pageOpener interface {
	OpenPages(ctx context.Context, addr, peer, workload string, seq uint64) (io.ReadWriteCloser, error)
}

// Report records the workload's state under its epoch.
func (c *runtimeCluster) Report(ctx context.Context, id string, epoch uint64, st fsm.WorkloadState, msg string) error {
	_, _, err := c.prop.apply(ctx, fsm.WorkloadReport{Workload: id, Epoch: epoch, State: st, Message: msg, At: c.now()})
	return err
}

// NextSeq is the seq of the workload's next checkpoint. A member's mirror
// may not show this node's last Prepare yet, so the last seq prepared
// from here counts too.
func (c *runtimeCluster) NextSeq(id string) uint64 {
	next := uint64(1)
	if w, ok := c.rep.view().Workload(id); ok && w.NextSeq > next {
		next = w.NextSeq
	}
	return max(next, c.commits.lastPrepared(id)+1)
}

// Commit records a sealed local checkpoint through the two-phase commit:
// prepare, ship to the standbys, commit with those that verified it.
func (c *runtimeCluster) Commit(ctx context.Context, id string, epoch uint64, ck *transfer.Checkpoint) error {
	return c.commits.commit(ctx, id, epoch, ck)
}

// Committed lists the workload's committed checkpoints, oldest first.
func (c *runtimeCluster) Committed(id string) []fsm.CheckpointRecord {
	w, ok := c.rep.view().Workload(id)
	if !ok {
		return nil
	}
	return w.Checkpoints
}

// Fetch asks the nodes holding a verified copy of rec, one after the
// other, to send it here; the transfer server accepts a committed
// checkpoint whose digest Raft records from any peer.
func (c *runtimeCluster) Fetch(ctx context.Context, id string, rec fsm.CheckpointRecord) error {
	var errs []error
	for _, from := range rec.Standbys {
		if from == c.name {
			continue
		}
		addr := c.rep.dir.peerAddrOf(from)
		if addr == "" {
			errs = append(errs, fmt.Errorf("%s: not reachable", from))
			continue
		}
		if err := c.call.Send(ctx, addr, peer.SendRequest{Workload: id, Seq: rec.Seq, To: c.name}); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", from, err))
			continue
		}
		c.log.Info("checkpoint fetched", "workload", id, "seq", rec.Seq, "from", from)
		return nil
	}
	if len(errs) == 0 {
		return fmt.Errorf("no other node holds checkpoint #%d of %s", rec.Seq, id)
	}
	return errors.Join(errs...)
}

// Pages connects to the page server of lazy checkpoint seq of workload id
// on node from, through its transfer port.
func (c *runtimeCluster) Pages(ctx context.Context, from, id string, seq uint64) (io.ReadWriteCloser, error) {
	addr := c.rep.dir.addrOf(from, transferPort)
	if addr == "" {
		return nil, fmt.Errorf("%s, which serves the memory of %s#%d, is not in gossip", from, id, seq)
	}
	return c.pager.OpenPages(ctx, addr, from, id, seq)
}
