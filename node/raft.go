package node

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	raftboltdb "github.com/hashicorp/raft-boltdb"
	"github.com/lifeboat/lifeboat/gossip"

	"github.com/lifeboat/lifeboat/fsm"
)

// raftFSM adapts the pure fsm.Machine to raft.FSM.
type raftFSM struct{ m *fsm.Machine }

var _ raft.FSM = raftFSM{}

// Apply is called by Raft's FSM goroutine for every committed command.
func (f raftFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	return f.m.Apply(l.Index, l.Data)
}

// Snapshot captures the state; the bytes are immutable afterwards.
func (f raftFSM) Snapshot() (raft.FSMSnapshot, error) {
	b, err := f.m.Snapshot()
	return snapshotBytes(b), err
}

// Restore replaces the state with a snapshot.
func (f raftFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.m.Restore(rc)
}

type snapshotBytes []byte

func (s snapshotBytes) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return fmt.Errorf("writing snapshot: %w", err)
	}
	return sink.Close()
}

func (s snapshotBytes) Release() {}

func (n *Node) raftConfig() *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(n.cfg.Name)
	c.HeartbeatTimeout = n.cfg.RaftHeartbeat
	c.ElectionTimeout = n.cfg.RaftElection
	c.LeaderLeaseTimeout = n.cfg.RaftLeaderLease
	c.CommitTimeout = n.cfg.RaftCommitTimeout
	c.BatchApplyCh = true
	c.MaxAppendEntries = 256
	c.SnapshotThreshold = 4096
	c.Logger = hclogFor(n.log.With("part", "raft"))
	c.NoLegacyTelemetry = true
	return c
}

// startRaft opens the stores in the data dir (or the in-memory twin) and
// starts Raft. It never bootstraps: bootstrapLoop decides that.
func (n *Node) startRaft() error {
	logs, stable, snaps, trans, err := n.raftParts()
	if err != nil {
		return err
	}
	n.hadState, err = raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return fmt.Errorf("data-dir: reading raft state: %w", err)
	}
	r, err := raft.NewRaft(n.raftConfig(), raftFSM{n.machine}, logs, stable, snaps, trans)
	if err != nil {
		return fmt.Errorf("starting raft: %w", err)
	}
	n.raft = r
	return nil
}

func (n *Node) raftAddr() string { return net.JoinHostPort(n.addr, strconv.Itoa(n.cfg.RaftPort)) }

func (n *Node) raftParts() (raft.LogStore, raft.StableStore, raft.SnapshotStore, raft.Transport, error) {
	if n.cfg.Net != nil {
		st := n.cfg.Net.stores(n.cfg.Name)
		return st.logs, st.logs, st.snaps, n.cfg.Net.raftTransport(n.raftAddr()), nil
	}
	dir := filepath.Join(n.cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("data-dir: %w", err)
	}
	bolt, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("data-dir: opening the raft store: %w", err)
	}
	n.closers = append(n.closers, bolt)
	logs, err := raft.NewLogCache(512, bolt)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	hl := hclogFor(n.log.With("part", "raft"))
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hl)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("data-dir: snapshot store: %w", err)
	}
	adv, err := net.ResolveTCPAddr("tcp", n.raftAddr())
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("advertise: %w", err)
	}
	bind := net.JoinHostPort(n.cfg.BindAddr, strconv.Itoa(n.cfg.RaftPort))
	layer, err := newTLSStreamLayer(bind, adv, n.cfg.TLS, n.log.With("part", "raft"))
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("raft-port: %w", err)
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 3, Timeout: 5 * time.Second, Logger: hl,
	})
	n.closers = append(n.closers, trans)
	return logs, bolt, snaps, trans, nil
}

// servers returns the latest Raft configuration this node knows: its own
// replica's when it is in Raft, otherwise the mirror's.
func (n *Node) servers() []raft.Server {
	if s, ok := n.localServers(); ok && n.inConfig(s) {
		return s
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]raft.Server(nil), n.mirrorServers...)
}

func (n *Node) localServers() ([]raft.Server, bool) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, false
	}
	return f.Configuration().Servers, true
}

func (n *Node) inConfig(servers []raft.Server) bool {
	for _, s := range servers {
		if string(s.ID) == n.cfg.Name {
			return true
		}
	}
	return false
}

// inRaft reports whether this node is in its own latest configuration and
// so keeps a live replica — unless it is orphaned.
func (n *Node) inRaft() bool {
	s, ok := n.localServers()
	return ok && n.inConfig(s) && !n.orphaned()
}

// orphanAfter is how long a node in Raft may know no leader while gossip
// shows another peer leading before it takes itself for removed.
const orphanAfter = 5 * time.Second

// orphaned reports that this node was taken out of Raft without learning
// it: autopilot removed it while it was stopped or cut off, and its own
// copy of the configuration still lists it, so it campaigns in vain (the
// others have a leader and ignore it) and knows no leader. Once Raft has
// known no leader for orphanAfter while gossip shows another live peer
// leading, the node acts as a member — reads from the mirror, forwards to
// the gossiped leader, renews its lease there — until a leader takes it
// back into Raft.
func (n *Node) orphaned() bool {
	if n.raft.State() == raft.Leader {
		return false
	}
	_, id := n.raft.LeaderWithID()
	now := n.now()
	n.mu.Lock()
	if id != "" {
		n.noLeaderSince = time.Time{}
		n.mu.Unlock()
		return false
	}
	if n.noLeaderSince.IsZero() {
		n.noLeaderSince = now
	}
	since := n.noLeaderSince
	n.mu.Unlock()
	if now.Sub(since) < orphanAfter || n.gossip == nil {
		return false
	}
	for _, m := range n.gossip.Members() {
		if m.Meta.Leader && m.State == gossip.MemberAlive && m.Name != n.cfg.Name {
			return true
		}
	}
	return false
}

// isLeader reports whether this node leads now.
func (n *Node) isLeader() bool { return n.raft.State() == raft.Leader }

// view is the replica reads come from: this node's Raft replica while it
// is in Raft, otherwise the mirror of the leader's state — except before
// the mirror's first fetch, when a node that just left Raft (autopilot
// demoted it) still has its last Raft replica, stale but far better than
// the empty mirror.
func (n *Node) view() *fsm.Machine {
	if n.inRaft() {
		return n.machine
	}
	n.mu.Lock()
	synced := n.mirrorIndex > 0
	n.mu.Unlock()
	if !synced && n.raft.AppliedIndex() > 0 {
		return n.machine
	}
	return n.mirror
}

// hclogFor routes hashicorp's hclog output into slog.
func hclogFor(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name: "raft", Level: hclog.Info, Output: &slogWriter{log: l}, DisableTime: true,
	})
}

// slogWriter turns hclog's text lines into slog records.
type slogWriter struct{ log *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(strings.NewReader(string(p)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "[ERROR]"):
			w.log.Error(strings.TrimSpace(line))
		case strings.Contains(line, "[WARN]"):
			w.log.Warn(strings.TrimSpace(line))
		default:
			w.log.Debug(strings.TrimSpace(line))
		}
	}
	return len(p), nil
}
