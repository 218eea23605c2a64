package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/internal/wait"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/peer"
)

// A member is not in Raft, yet its admin API answers everything and its
// ingress routes from its own copy of the state. It keeps that copy with a
// blocking query to the leader, as Consul's clients do: "give me the state
// once it is newer than index N, or after W". The copy is a separate
// fsm.Machine from the Raft replica, so a member later added to Raft never
// applies the log on top of mirrored state.

// mirror is a member's copy of the leader's state.
type mirror struct {
	machine *fsm.Machine
	log     *slog.Logger

	mu      sync.Mutex // guards the fields below: the last answer restored
	at      uint64
	servers []raft.Server
	leads   string
}

func newMirror(log *slog.Logger) *mirror { return &mirror{machine: fsm.New(), log: log} }

// index is the leader's index of the state last restored; 0 before the
// first fetch.
func (m *mirror) index() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.at
}

// config is the Raft configuration the leader last reported.
func (m *mirror) config() []raft.Server {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]raft.Server(nil), m.servers...)
}

// leader is the leader that last answered.
func (m *mirror) leader() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leads
}

// follow keeps the copy while this node is not in Raft.
func (m *mirror) follow(ctx context.Context, rep *replica, call *peer.Client) {
	for ctx.Err() == nil {
		if rep.inRaft() {
			wait.Sleep(ctx, 500*time.Millisecond)
			continue
		}
		if err := m.fetch(ctx, rep, call); err != nil {
			m.log.Debug("mirror", "err", err)
			wait.Sleep(ctx, 250*time.Millisecond)
		}
	}
}

// fetch asks the leader once for a state newer than the copy's.
func (m *mirror) fetch(ctx context.Context, rep *replica, call *peer.Client) error {
	leader := rep.dir.peerAddrOf(rep.leaderName())
	if leader == "" {
		return api.ErrNoLeader
	}
	cctx, cancel := context.WithTimeout(ctx, peer.MaxMirrorWait+2*time.Second)
	defer cancel()
	ans, err := call.Mirror(cctx, leader, peer.MirrorRequest{After: m.index(), WaitMS: (5 * time.Second).Milliseconds()})
	if err != nil {
		return err
	}
	return m.restore(ans)
}

// restore replaces the copy with a leader's answer.
func (m *mirror) restore(ans peer.MirrorAnswer) error {
	if err := m.machine.Restore(bytes.NewReader(ans.State)); err != nil {
		return fmt.Errorf("restoring the mirror: %w", err)
	}
	servers := make([]raft.Server, 0, len(ans.Servers))
	for _, s := range ans.Servers {
		sf := raft.Nonvoter
		if s.Voter {
			sf = raft.Voter
		}
		servers = append(servers, raft.Server{ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Address), Suffrage: sf})
	}
	m.mu.Lock()
	m.at, m.servers, m.leads = ans.Index, servers, ans.Leader
	m.mu.Unlock()
	return nil
}
