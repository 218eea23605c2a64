package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/transfer"
)

// startTransfer starts the checkpoint transfer: servers on the transfer
// port — QUIC on UDP, and the same protocol over mutual TLS on TCP — that
// receive into the supervisor's store (an offer must match the checkpoint
// Raft prepared), and the client that ships this node's checkpoints over
// the network Config.TransferNetwork names. With the in-memory network the
// servers still run on real sockets, on a free port of the bind address.
func (n *Node) startTransfer() error {
	port := n.cfg.TransferPort
	if n.cfg.Net != nil {
		port = 0
	}
	log := n.log.With("part", "transfer")
	quic, err := n.transferServer(transfer.NetworkQUIC, port, log)
	if err != nil {
		return err
	}
	n.xfer = quic
	port = n.transferPort() // the same number on TCP
	if n.xferTCP, err = n.transferServer(transfer.NetworkTCP, port, log); err != nil {
		return err
	}
	cc := transfer.DefaultClientConfig()
	cc.Network = n.cfg.TransferNetwork
	cc.Conns = 2 // quic-go is CPU-bound: a second connection spreads it over more cores
	cc.TLS = func(peer string) *tls.Config { return n.cfg.TLS.ClientTLS(transfer.ALPN, peer) }
	cc.Logger = log
	cl, err := transfer.NewClient(cc)
	if err != nil {
		return err
	}
	n.sender = cl
	// The page relay of lazy moves always runs over TLS on TCP, which
	// listens beside QUIC: quic-go is CPU-bound here, and a 64 MiB
	// counter's memory moved in 0.8-0.9 s over TCP against 1.1 s over
	// QUIC (one run each).
	cc.Network = transfer.NetworkTCP
	if n.pager, err = transfer.NewClient(cc); err != nil {
		return err
	}
	return nil
}

// transferServer starts one transfer server on network.
func (n *Node) transferServer(network string, port int, log *slog.Logger) (*transfer.Server, error) {
	sc := transfer.DefaultServerConfig()
	sc.Network = network
	sc.Addr = net.JoinHostPort(n.cfg.BindAddr, strconv.Itoa(port))
	sc.TLS = n.cfg.TLS.ServerTLS(transfer.ALPN)
	sc.Store = n.sup.Store()
	sc.Logger = log
	sc.Accept = func(peer string, m *transfer.Manifest, digest string) error {
		return n.acceptOffer(n.runCtx, peer, m, digest)
	}
	sc.Pages = func(peer, workload string, seq uint64) (net.Conn, error) {
		return n.pagesFor(n.runCtx, peer, workload, seq)
	}
	sc.Received = n.lazyReceived
	srv, err := transfer.NewServer(sc)
	if err != nil {
		return nil, fmt.Errorf("transfer-port (%s): %w", network, err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("transfer-port (%s): %w", network, err)
	}
	return srv, nil
}

// transferPort is the port the transfer servers listen on.
func (n *Node) transferPort() int {
	if n.xfer != nil {
		if a, ok := n.xfer.Addr().(*net.UDPAddr); ok {
			return a.Port
		}
	}
	return n.cfg.TransferPort
}

// checkpointSender ships a sealed checkpoint to one peer and returns once
// the peer has verified and sealed it (transfer.Client).
type checkpointSender interface {
	Send(ctx context.Context, addr, peer string, ck *transfer.Checkpoint) (transfer.SendStats, error)
}

// pageOpener connects to the page server of a lazy checkpoint on a peer
// (transfer.Client).
type pageOpener interface {
	OpenPages(ctx context.Context, addr, peer, workload string, seq uint64) (io.ReadWriteCloser, error)
}

// errNoStandby means no standby verified a checkpoint that had standbys to
// go to: it is aborted rather than committed with no copy off this host.
var errNoStandby = errors.New("no standby verified the checkpoint")

// commitCheckpoint is the two-phase commit of a sealed local checkpoint:
// Prepare in Raft (a pending record with the manifest's digest), ship it to
// the workload's standbys and to the nodes in must, each of which verifies
// it against that record before it acks, then Commit listing this node and
// every node that acked. It aborts instead when a node in must did not ack,
// or when there were standbys and none acked. A workload with no standby
// (a one-node cluster, or no eligible peer) commits with this node's copy
// alone, and says so in the log.
func (n *Node) commitCheckpoint(ctx context.Context, id string, epoch uint64, ck *transfer.Checkpoint, must ...string) error {
	return n.commitTo(ctx, id, epoch, ck, false, must)
}

// commitLazy commits a lazy final checkpoint for its new holder to alone:
// it holds no memory, so it is no copy for the standbys to keep. It is
// shipped while Raft prepares it.
func (n *Node) commitLazy(ctx context.Context, id string, epoch uint64, ck *transfer.Checkpoint, to string) error {
	return n.commitTo(ctx, id, epoch, ck, true, []string{to})
}

// commitTo is commitCheckpoint; a lazy checkpoint goes to must alone.
func (n *Node) commitTo(ctx context.Context, id string, epoch uint64, ck *transfer.Checkpoint, lazy bool, must []string) error {
	m := ck.Manifest
	prep := fsm.CheckpointPrepare{Workload: id, Epoch: epoch, Seq: m.Seq, Digest: ck.Digest, Bytes: m.Bytes(), At: n.now()}
	targets := must
	if w, ok := n.view().Workload(id); ok && !lazy {
		targets = append(slices.Clone(must), w.Assignment.Standbys...)
	}
	targets = slices.DeleteFunc(slices.Compact(sortedCopy(targets)), func(s string) bool { return s == n.cfg.Name })
	var early chan shipResult
	shipCtx, cancelShip := context.WithCancel(ctx)
	defer cancelShip()
	if lazy {
		// A lazy move's images go to the target while Raft prepares
		// them, on the move's critical path: the target takes the offer
		// only once its replica shows the Prepare (acceptOffer), and the
		// dial overlaps the Prepare's commit.
		prep.LazyFrom = n.cfg.Name
		early = make(chan shipResult, 1)
		go func() {
			acked, errs := n.shipAll(shipCtx, targets, ck)
			early <- shipResult{acked, errs}
		}()
	}
	if _, _, err := n.apply(ctx, prep); err != nil {
		if early != nil {
			cancelShip()
			<-early
		}
		return fmt.Errorf("prepare checkpoint #%d: %w", m.Seq, err)
	}
	n.mu.Lock()
	n.prepared[id] = max(n.prepared[id], m.Seq)
	n.mu.Unlock()
	n.crashPoint(crashPrepared)
	var acked []string
	var errs []error
	if early != nil {
		r := <-early
		acked, errs = r.acked, r.errs
	} else {
		acked, errs = n.shipAll(ctx, targets, ck)
	}
	missing := slices.DeleteFunc(slices.Clone(must), func(s string) bool { return slices.Contains(acked, s) })
	var fail error
	switch {
	case len(missing) > 0:
		fail = fmt.Errorf("checkpoint #%d did not reach %v: %w", m.Seq, missing, errors.Join(errs...))
	case len(targets) > 0 && len(acked) == 0:
		fail = fmt.Errorf("checkpoint #%d: %w: %w", m.Seq, errNoStandby, errors.Join(errs...))
	}
	if fail != nil {
		abort := fsm.CheckpointAbort{Workload: id, Seq: m.Seq, Reason: fail.Error()}
		if _, _, err := n.apply(context.WithoutCancel(ctx), abort); err != nil {
			n.log.Warn("checkpoint abort not recorded", "workload", id, "seq", m.Seq, "err", err)
		}
		return fail
	}
	if len(targets) == 0 {
		n.log.Warn("checkpoint committed with no standby: its only copy is on this host", "workload", id, "seq", m.Seq)
	} else if len(errs) > 0 {
		n.log.Warn("checkpoint missed some standbys", "workload", id, "seq", m.Seq, "acked", acked, "err", errors.Join(errs...))
	}
	n.crashPoint(crashShipped)
	holders := append([]string{n.cfg.Name}, acked...)
	commit := fsm.CheckpointCommit{Workload: id, Seq: m.Seq, Digest: ck.Digest, Standbys: holders, At: n.now()}
	if _, _, err := n.apply(ctx, commit); err != nil {
		return fmt.Errorf("commit checkpoint #%d: %w", m.Seq, err)
	}
	n.crashPoint(crashCommitted)
	n.metrics.checkpointBytes.Add(float64(m.Bytes()))
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

// shipAll sends ck to every target in parallel and returns those that
// acked, sorted, and the errors of the others.
func (n *Node) shipAll(ctx context.Context, targets []string, ck *transfer.Checkpoint) ([]string, []error) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		acked []string
		errs  []error
	)
	members := n.members()
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := n.ship(ctx, members[t], t, ck)
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
func (n *Node) ship(ctx context.Context, m gossip.Member, name string, ck *transfer.Checkpoint) error {
	if m.Name == "" || m.State != gossip.MemberAlive || m.Meta.Addr == "" || m.Meta.TransferPort == 0 {
		return fmt.Errorf("%s is not alive in gossip", name)
	}
	addr := net.JoinHostPort(m.Meta.Addr, strconv.Itoa(int(m.Meta.TransferPort)))
	begin := time.Now()
	st, err := n.sender.Send(ctx, addr, name, ck)
	if err != nil {
		n.metrics.transfers.WithLabelValues("failed").Inc()
		return err
	}
	n.metrics.transfers.WithLabelValues("ok").Inc()
	n.metrics.transferBytes.Add(float64(st.BytesSent))
	n.log.Info("checkpoint shipped", "workload", ck.Manifest.Workload, "seq", ck.Manifest.Seq, "to", name,
		"bytes", st.Bytes, "sent", st.BytesSent, "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

// acceptOffer is the transfer server's policy: a peer may push a
// checkpoint only if it holds the workload and Raft has prepared exactly
// that checkpoint (seq and digest). The replica may lag the Prepare by a
// moment, so it waits for it, briefly.
func (n *Node) acceptOffer(ctx context.Context, peer string, m *transfer.Manifest, digest string) error {
	ctx, cancel := context.WithTimeout(ctx, offerWait)
	defer cancel()
	for {
		v := n.view()
		changed := v.Notify()
		err := offerMatches(v, peer, m, digest)
		if err == nil {
			n.predialLazy(v, peer, m.Workload, m.Seq, digest)
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return err
		}
	}
}

// offerWait bounds how long an offer waits for the replica to show its
// Prepare.
const offerWait = 3 * time.Second

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
