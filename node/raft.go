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
	c.HeartbeatTimeout = n.cfg.Raft.Heartbeat
	c.ElectionTimeout = n.cfg.Raft.Election
	c.LeaderLeaseTimeout = n.cfg.Raft.LeaderLease
	c.CommitTimeout = n.cfg.Raft.CommitTimeout
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
	r, err := raft.NewRaft(n.raftConfig(), raftFSM{n.rep.machine}, logs, stable, snaps, trans)
	if err != nil {
		return fmt.Errorf("starting raft: %w", err)
	}
	n.raft, n.rep.raft = r, r
	return nil
}

func (n *Node) raftAddr() string { return net.JoinHostPort(n.addr, strconv.Itoa(n.cfg.RaftPort)) }

func (n *Node) raftParts() (raft.LogStore, raft.StableStore, raft.SnapshotStore, raft.Transport, error) {
	if n.cfg.Net != nil {
		logs, stable, snaps := n.cfg.Net.RaftStores(n.cfg.Name)
		return logs, stable, snaps, n.cfg.Net.RaftTransport(n.raftAddr()), nil
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
	layer, peerLn, err := newTLSStreamLayer(bind, adv, n.cfg.TLS, n.log.With("part", "raft"))
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("raft-port: %w", err)
	}
	n.peerLn = peerLn
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 3, Timeout: 5 * time.Second, Logger: hl,
	})
	n.closers = append(n.closers, trans)
	return logs, bolt, snaps, trans, nil
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
