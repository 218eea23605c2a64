package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/node/api"
)

// A member is not in Raft, yet its admin API answers everything and (in
// later parts) its ingress routes from its own copy of the state. It keeps
// that copy with a blocking query to the leader, as Consul's clients do:
// "give me the state once it is newer than index N, or after W".

// mirrorRequest asks for the state once it is newer than After.
type mirrorRequest struct {
	After  uint64 `json:"after"`
	WaitMS int64  `json:"wait_ms"`
}

// mirrorAnswer is the leader's state at Index.
type mirrorAnswer struct {
	Index   uint64          `json:"index"`
	Leader  string          `json:"leader"`
	Servers []mirrorServer  `json:"servers"`
	State   json.RawMessage `json:"state"`
}

type mirrorServer struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
}

// mirrorMaxWait bounds one blocking query.
const mirrorMaxWait = 10 * time.Second

func (n *Node) serveMirror(w http.ResponseWriter, r *http.Request) {
	var req mirrorRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1024)).Decode(&req); err != nil {
		api.WriteError(w, fmt.Errorf("%w: mirror request: %v", api.ErrBadRequest, err))
		return
	}
	wait := min(time.Duration(req.WaitMS)*time.Millisecond, mirrorMaxWait)
	deadline := time.Now().Add(wait)
	for n.raft.AppliedIndex() <= req.After && time.Now().Before(deadline) {
		if !sleep(r.Context(), 50*time.Millisecond) {
			return
		}
	}
	if !n.isLeader() {
		api.WriteError(w, fmt.Errorf("%w: %s does not lead", api.ErrNoLeader, n.cfg.Name))
		return
	}
	ans, err := n.mirrorState()
	if err != nil {
		api.WriteError(w, err)
		return
	}
	writeJSON(w, ans)
}

func (n *Node) mirrorState() (mirrorAnswer, error) {
	idx := n.raft.AppliedIndex()
	state, err := n.machine.Snapshot()
	if err != nil {
		return mirrorAnswer{}, err
	}
	ans := mirrorAnswer{Index: idx, Leader: n.cfg.Name, State: state}
	servers, _ := n.localServers()
	for _, s := range servers {
		ans.Servers = append(ans.Servers, mirrorServer{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return ans, nil
}

// mirrorLoop keeps a member's copy of the state while it is not in Raft.
func (n *Node) mirrorLoop(ctx context.Context) {
	for ctx.Err() == nil {
		if n.inRaft() {
			sleep(ctx, 500*time.Millisecond)
			continue
		}
		if err := n.mirrorOnce(ctx); err != nil {
			n.log.Debug("mirror", "err", err)
			sleep(ctx, 250*time.Millisecond)
		}
	}
}

func (n *Node) mirrorOnce(ctx context.Context) error {
	leader := n.httpAddrOf(n.leaderName())
	if leader == "" {
		return api.ErrNoLeader
	}
	n.mu.Lock()
	after := n.mirrorIndex
	n.mu.Unlock()
	body, _ := json.Marshal(mirrorRequest{After: after, WaitMS: (5 * time.Second).Milliseconds()})
	cctx, cancel := context.WithTimeout(ctx, mirrorMaxWait+2*time.Second)
	defer cancel()
	var ans mirrorAnswer
	if err := n.peerCall(cctx, leader, "/v1/internal/mirror", body, &ans); err != nil {
		return err
	}
	if err := n.mirror.Restore(bytes.NewReader(ans.State)); err != nil {
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
	n.mu.Lock()
	n.mirrorIndex, n.mirrorServers, n.mirrorLeader = ans.Index, servers, ans.Leader
	n.mu.Unlock()
	return nil
}
