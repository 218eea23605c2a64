package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
)

// applyAnswer is what /v1/internal/apply returns.
type applyAnswer struct {
	Index uint64          `json:"index"`
	Value json.RawMessage `json:"value,omitempty"`
}

// apply commits cmd through Raft: locally when this node leads, otherwise
// by forwarding it to the leader. It retries only where the command was
// certainly not applied (no leader known, leader refused before Raft, the
// leader could not be dialled), so a retry never applies a command twice.
func (n *Node) apply(ctx context.Context, cmd fsm.Command) (uint64, json.RawMessage, error) {
	b, err := fsm.Encode(cmd)
	if err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ForwardTimeout)
	defer cancel()
	for {
		idx, val, err := n.applyOnce(ctx, b)
		if err == nil || !errors.Is(err, api.ErrNoLeader) {
			return idx, val, err
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return 0, nil, err
		}
	}
}

func (n *Node) applyOnce(ctx context.Context, b []byte) (uint64, json.RawMessage, error) {
	if n.isLeader() {
		return n.applyLocal(b)
	}
	leader := n.httpAddrOf(n.leaderName())
	if leader == "" {
		return 0, nil, fmt.Errorf("%w: the cluster has no leader yet; retry shortly", api.ErrNoLeader)
	}
	var ans applyAnswer
	if err := n.peerCall(ctx, leader, "/v1/internal/apply", b, &ans); err != nil {
		return 0, nil, err
	}
	return ans.Index, ans.Value, nil
}

// applyLocal applies on this node's Raft, which must lead.
func (n *Node) applyLocal(b []byte) (uint64, json.RawMessage, error) {
	start := time.Now()
	f := n.raft.Apply(b, n.cfg.ForwardTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return 0, nil, fmt.Errorf("%w: %v", api.ErrNoLeader, err)
		}
		return 0, nil, fmt.Errorf("%w: raft: %v (the outcome is unknown)", api.ErrUnavailable, err)
	}
	n.metrics.applied(time.Since(start))
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

// peerHTTPClient is the client for calls between peers.
func (n *Node) peerHTTPClient() *http.Client {
	if n.cfg.Net != nil {
		return &http.Client{Transport: n.cfg.Net.roundTripper(n.addr)}
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr}
}

// peerCall posts body to another peer's internal endpoint and decodes the
// JSON answer into out. A dial failure wraps api.ErrNoLeader (nothing was
// sent); other failures wrap api.ErrUnavailable (outcome unknown).
func (n *Node) peerCall(ctx context.Context, hostport, path string, body []byte, out any) error {
	c := &api.Client{Base: "http://" + hostport, Token: n.cfg.APIToken, HTTP: n.peers}
	err := c.Do(ctx, http.MethodPost, path, body, "application/octet-stream", out)
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" || isNoRoute(err) {
		return fmt.Errorf("%w: %v", api.ErrNoLeader, err)
	}
	return err
}

func isNoRoute(err error) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte("memnet: no route"))
}

// registerInternal adds the endpoints peers call on each other.
func (n *Node) registerInternal(s *api.Server) {
	s.Handle("POST /v1/internal/apply", n.serveApply)
	s.Handle("POST /v1/internal/lease", n.serveLease)
	s.Handle("POST /v1/internal/mirror", n.serveMirror)
	s.Handle("POST /v1/internal/checkpoint", n.serveCheckpoint)
	s.Handle("POST /v1/internal/restart", n.serveRestart)
	s.Handle("POST /v1/internal/migrate", n.serveMigrate)
	s.Handle("POST /v1/internal/send", n.serveSend)
	s.Handle("POST /v1/internal/results", n.serveResults)
	if n.cfg.UnsafeClockControl {
		s.Handle("POST /v1/internal/clock", n.serveClock)
	}
}

func (n *Node) serveApply(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, api.MaxBody))
	if err != nil {
		api.WriteError(w, fmt.Errorf("%w: %v", api.ErrBadRequest, err))
		return
	}
	if !n.isLeader() {
		api.WriteError(w, fmt.Errorf("%w: %s does not lead", api.ErrNoLeader, n.cfg.Name))
		return
	}
	idx, val, err := n.applyLocal(b)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	writeJSON(w, applyAnswer{Index: idx, Value: val})
}

func (n *Node) serveLease(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 256))
	if err != nil || len(b) == 0 {
		api.WriteError(w, fmt.Errorf("%w: the body must be the node name", api.ErrBadRequest))
		return
	}
	if !n.isLeader() {
		api.WriteError(w, fmt.Errorf("%w: %s does not lead", api.ErrNoLeader, n.cfg.Name))
		return
	}
	if err := n.leases.renew(r.Context(), string(b)); err != nil {
		api.WriteError(w, fmt.Errorf("%w: %v", api.ErrNoLeader, err))
		return
	}
	writeJSON(w, leaseAnswer{Renewed: string(b), Index: n.machine.Index()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
