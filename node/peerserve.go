package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/internal/wait"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/runtime"
)

// peerHandler serves the endpoints peers call on each other
// (/v1/internal/*). Each acts on this node only, never forwarding, so two
// peers that disagree about a holder or the leader cannot bounce a
// request between them.
type peerHandler struct{ n *Node }

// register adds the endpoints to s.
func (h peerHandler) register(s *api.Server) {
	s.Handle("POST /v1/internal/apply", h.leaderOnly(api.MaxBody, h.apply))
	s.Handle("POST /v1/internal/lease", h.leaderOnly(256, h.lease))
	s.Handle("POST /v1/internal/mirror", h.mirror)
	s.Handle("POST /v1/internal/checkpoint", h.checkpoint)
	s.Handle("POST /v1/internal/restart", h.restart)
	s.Handle("POST /v1/internal/migrate", h.migrate)
	s.Handle("POST /v1/internal/send", h.send)
	s.Handle("POST /v1/internal/results", h.leaderOnly(256, h.results))
	if h.n.cfg.UnsafeClockControl {
		s.Handle("POST /v1/internal/clock", h.clock)
	}
}

// leaderOnly reads a body of at most limit bytes and refuses the request
// when this node does not lead.
func (h peerHandler) leaderOnly(limit int64, serve func(http.ResponseWriter, *http.Request, []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, limit))
		if err != nil {
			api.WriteError(w, fmt.Errorf("%w: %v", api.ErrBadRequest, err))
			return
		}
		if !h.n.rep.isLeader() {
			api.WriteError(w, fmt.Errorf("%w: %s does not lead", api.ErrNoLeader, h.n.cfg.Name))
			return
		}
		serve(w, r, b)
	}
}

// decodeJSON decodes a body of at most limit bytes into v.
func decodeJSON(r *http.Request, limit int64, what string, v any) error {
	if err := json.NewDecoder(io.LimitReader(r.Body, limit)).Decode(v); err != nil {
		return fmt.Errorf("%w: %s request: %v", api.ErrBadRequest, what, err)
	}
	return nil
}

// reply writes v as JSON, or err.
func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		api.WriteError(w, err)
		return
	}
	writeJSON(w, v)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// applyAnswer is what /v1/internal/apply returns.
type applyAnswer struct {
	Index uint64          `json:"index"`
	Value json.RawMessage `json:"value,omitempty"`
}

func (h peerHandler) apply(w http.ResponseWriter, _ *http.Request, b []byte) {
	idx, val, err := h.n.prop.applyLocal(b)
	reply(w, applyAnswer{Index: idx, Value: val}, err)
}

func (h peerHandler) lease(w http.ResponseWriter, r *http.Request, b []byte) {
	if len(b) == 0 {
		api.WriteError(w, fmt.Errorf("%w: the body must be the node name", api.ErrBadRequest))
		return
	}
	if err := h.n.leases.batch.renew(r.Context(), string(b)); err != nil {
		api.WriteError(w, fmt.Errorf("%w: %v", api.ErrNoLeader, err))
		return
	}
	writeJSON(w, leaseAnswer{Renewed: string(b), Index: h.n.rep.machine.Index()})
}

func (h peerHandler) results(w http.ResponseWriter, _ *http.Request, id []byte) {
	res, err := h.n.resultsLocal(string(id))
	reply(w, res, err)
}

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

// mirror answers a member's blocking query: the state once the applied
// index passes After, or when the wait ends.
func (h peerHandler) mirror(w http.ResponseWriter, r *http.Request) {
	var req mirrorRequest
	if err := decodeJSON(r, 1024, "mirror", &req); err != nil {
		api.WriteError(w, err)
		return
	}
	rep := h.n.rep
	deadline := time.Now().Add(min(time.Duration(req.WaitMS)*time.Millisecond, mirrorMaxWait))
	for rep.raft.AppliedIndex() <= req.After && time.Now().Before(deadline) {
		if !wait.Sleep(r.Context(), 50*time.Millisecond) {
			return
		}
	}
	if !rep.isLeader() {
		api.WriteError(w, fmt.Errorf("%w: %s does not lead", api.ErrNoLeader, h.n.cfg.Name))
		return
	}
	ans, err := mirrorState(rep)
	reply(w, ans, err)
}

// mirrorState is the leader's state as a member's mirror takes it.
func mirrorState(rep *replica) (mirrorAnswer, error) {
	idx := rep.raft.AppliedIndex()
	state, err := rep.machine.Snapshot()
	if err != nil {
		return mirrorAnswer{}, err
	}
	ans := mirrorAnswer{Index: idx, Leader: rep.name, State: state}
	servers, _ := rep.localServers()
	for _, s := range servers {
		ans.Servers = append(ans.Servers, mirrorServer{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return ans, nil
}

func (h peerHandler) checkpoint(w http.ResponseWriter, r *http.Request) {
	id, err := io.ReadAll(io.LimitReader(r.Body, 256))
	if err != nil {
		api.WriteError(w, fmt.Errorf("%w: %v", api.ErrBadRequest, err))
		return
	}
	res, err := localSup(h.n.sup, func(sup *runtime.Supervisor) (runtime.Result, error) { return sup.Checkpoint(r.Context(), string(id)) })
	reply(w, res, err)
}

type restartRequest struct {
	ID             string `json:"id"`
	FromCheckpoint bool   `json:"from_checkpoint"`
}

func (h peerHandler) restart(w http.ResponseWriter, r *http.Request) {
	var req restartRequest
	if err := decodeJSON(r, 1024, "restart", &req); err != nil {
		api.WriteError(w, err)
		return
	}
	res, err := localSup(h.n.sup, func(sup *runtime.Supervisor) (runtime.Result, error) {
		return sup.Restart(r.Context(), req.ID, req.FromCheckpoint)
	})
	reply(w, res, err)
}

func (h peerHandler) migrate(w http.ResponseWriter, r *http.Request) {
	var req migrateRequest
	if err := decodeJSON(r, 1024, "migrate", &req); err != nil {
		api.WriteError(w, err)
		return
	}
	if req.Reason == "" {
		req.Reason = "manual"
	}
	res, err := h.n.moves.local(r.Context(), req)
	reply(w, res, err)
}

// sendRequest asks a node to send a committed checkpoint to another.
type sendRequest struct {
	Workload string `json:"workload"`
	Seq      uint64 `json:"seq"`
	To       string `json:"to"`
}

// send sends a committed checkpoint from this node's store to the node
// that asks for it.
func (h peerHandler) send(w http.ResponseWriter, r *http.Request) {
	var req sendRequest
	if err := decodeJSON(r, 1024, "send", &req); err != nil {
		api.WriteError(w, err)
		return
	}
	if err := h.n.commits.sendCommitted(r.Context(), h.n.store, req.Workload, req.Seq, req.To); err != nil {
		api.WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
