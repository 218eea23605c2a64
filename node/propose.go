package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/internal/wait"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/peer"
)

// proposer is the write side: it commits commands through Raft, locally
// when this node leads and otherwise by forwarding them to the leader.
type proposer struct {
	rep     *replica
	call    *peer.Client
	timeout time.Duration // bounds one write (Config.ForwardTimeout)
	metrics *metrics
	log     *slog.Logger
}

// apply commits cmd. It retries only where the command was certainly not
// applied (no leader known, leader refused before Raft, the leader could
// not be dialled), so a retry never applies a command twice.
func (p *proposer) apply(ctx context.Context, cmd fsm.Command) (uint64, json.RawMessage, error) {
	b, err := fsm.Encode(cmd)
	if err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	for {
		idx, val, err := p.applyOnce(ctx, b)
		if err == nil || !errors.Is(err, api.ErrNoLeader) {
			return idx, val, err
		}
		if !wait.Sleep(ctx, 50*time.Millisecond) {
			return 0, nil, err
		}
	}
}

// applyLogged applies a command and logs a failure: the loop that
// issued it tries again on its next round.
func (p *proposer) applyLogged(ctx context.Context, cmd fsm.Command) {
	if _, _, err := p.apply(ctx, cmd); err != nil {
		p.log.Warn("command failed", "type", cmd.Type(), "err", err)
	}
}

func (p *proposer) applyOnce(ctx context.Context, b []byte) (uint64, json.RawMessage, error) {
	if p.rep.isLeader() {
		return p.applyLocal(b)
	}
	leader := p.rep.dir.peerAddrOf(p.rep.leaderName())
	if leader == "" {
		return 0, nil, fmt.Errorf("%w: the cluster has no leader yet; retry shortly", api.ErrNoLeader)
	}
	ans, err := p.call.Apply(ctx, leader, peer.ApplyRequest{Command: b})
	if err != nil {
		return 0, nil, err
	}
	return ans.Index, ans.Value, nil
}

// applyLeader applies a command only if this node leads (no forwarding).
func (p *proposer) applyLeader(cmd fsm.Command) error {
	b, err := fsm.Encode(cmd)
	if err != nil {
		return err
	}
	_, _, err = p.applyLocal(b)
	return err
}

// applyLocal applies an encoded command on this node's Raft, which must
// lead.
func (p *proposer) applyLocal(b []byte) (uint64, json.RawMessage, error) {
	start := time.Now()
	f := p.rep.raft.Apply(b, p.timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return 0, nil, fmt.Errorf("%w: %v", api.ErrNoLeader, err)
		}
		return 0, nil, fmt.Errorf("%w: raft: %v (the outcome is unknown)", api.ErrUnavailable, err)
	}
	p.metrics.applied(time.Since(start))
	resp, ok := f.Response().(fsm.Response)
	if !ok {
		return f.Index(), nil, nil
	}
	if resp.Err != nil {
		return resp.Index, nil, resp.Err
	}
	val, err := json.Marshal(resp.Value)
	return f.Index(), val, err
}
