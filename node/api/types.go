// Package api is lifeboat's HTTP admin API: its JSON types, its handlers
// over a Backend that the node implements, bearer-token checks, error
// codes, and the client the CLI uses. Every peer serves it; writes that
// reach a peer that does not lead are forwarded by the Backend.
package api

import (
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// Status is GET /v1/status.
type Status struct {
	Node    string   `json:"node"`
	Leader  string   `json:"leader"`
	Members []Member `json:"members"`
}

// Member states as the API shows them.
const (
	StateAlive    = "alive"
	StateSuspect  = "suspect"
	StateDoomed   = "doomed"
	StateDraining = "draining"
	StateLost     = "lost"
	StateLeft     = "left"
)

// Roles as the API shows them.
const (
	RoleVoter  = "voter"
	RoleSpare  = "spare"
	RoleMember = "member"
)

// Member is one peer in GET /v1/status and GET /v1/members.
type Member struct {
	Name         string    `json:"name"`
	Cloud        string    `json:"cloud"`
	Region       string    `json:"region"`
	Zone         string    `json:"zone"`
	State        string    `json:"state"`
	Role         string    `json:"role"`
	Leader       bool      `json:"leader,omitempty"`
	Addr         string    `json:"addr,omitempty"`
	Gossip       string    `json:"gossip,omitempty"` // gossip's own view: alive|suspect|dead|left
	Lifecycle    string    `json:"lifecycle,omitempty"`
	InstanceType string    `json:"instance_type,omitempty"`
	Deadline     time.Time `json:"deadline,omitzero"`
	LeaseExpiry  time.Time `json:"lease_expiry,omitzero"`
}

// Checkpoint is the last committed checkpoint of a workload.
type Checkpoint struct {
	Seq         uint64    `json:"seq"`
	Epoch       uint64    `json:"epoch"`
	Bytes       int64     `json:"bytes"`
	CommittedAt time.Time `json:"committed_at"`
	// Standbys are the nodes holding a verified copy (the holder's own
	// included).
	Standbys []string `json:"standbys,omitempty"`
	// LazyFrom, on the lazy final checkpoint of a move (post-copy), names
	// the old holder that serves its memory.
	LazyFrom string `json:"lazy_from,omitempty"`
}

// Workload is one workload in GET /v1/workloads.
type Workload struct {
	ID         string           `json:"id"`
	Holder     string           `json:"holder"`
	Epoch      uint64           `json:"epoch"`
	State      string           `json:"state"`
	Message    string           `json:"message,omitempty"`
	Standbys   []string         `json:"standbys"`
	Checkpoint *Checkpoint      `json:"checkpoint,omitempty"`
	Spec       fsm.WorkloadSpec `json:"spec"`
	// PendingReason, on a pending workload, says why no node takes it
	// now, as the answering peer sees the cluster: "no node offers 2 TiB
	// of memory (largest: 21 GiB)". Empty while it is about to be placed.
	PendingReason string `json:"pending_reason,omitempty"`
}

// WorkloadFrom turns the replicated record into the API's view.
func WorkloadFrom(w fsm.Workload) Workload {
	v := Workload{
		ID: w.Spec.ID, Holder: w.Assignment.Holder, Epoch: w.Assignment.Epoch,
		State: string(w.Assignment.State), Message: w.Assignment.Message,
		Standbys: append([]string{}, w.Assignment.Standbys...), Spec: w.Spec,
	}
	if n := len(w.Checkpoints); n > 0 {
		c := w.Checkpoints[n-1]
		v.Checkpoint = &Checkpoint{Seq: c.Seq, Epoch: c.Epoch, Bytes: c.Bytes, CommittedAt: c.CommittedAt,
			Standbys: append([]string{}, c.Standbys...), LazyFrom: c.LazyFrom}
	}
	return v
}

// ErrorBody is every error answer: {"error":{"code":...,"message":...}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail names what went wrong: Code for programs, Message for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ActionResult answers POST /v1/workloads/{id}/checkpoint and /restart:
// the checkpoint taken, or the one a restart restored from (Seq 0: the
// workload started fresh).
type ActionResult struct {
	Workload string  `json:"workload"`
	Epoch    uint64  `json:"epoch"`
	Seq      uint64  `json:"seq"`
	Digest   string  `json:"digest,omitempty"`
	Bytes    int64   `json:"bytes,omitempty"`
	FreezeMS float64 `json:"freeze_ms,omitempty"`
	TookMS   float64 `json:"took_ms"`
	PID      int     `json:"pid,omitempty"`
	// Holder is the node that holds the workload after a migrate.
	Holder string `json:"holder,omitempty"`
}

// DrainResult answers POST /v1/nodes/{name}/drain and /undrain.
type DrainResult struct {
	Node  string `json:"node"`
	State string `json:"state"`
	// Workloads are those the node held when the request was applied:
	// a drain moves them away.
	Workloads []string `json:"workloads"`
}

// MigrateRequest is the body of POST /v1/workloads/{id}/migrate.
type MigrateRequest struct {
	To string `json:"to"`
}

// RestartRequest is the body of POST /v1/workloads/{id}/restart.
type RestartRequest struct {
	FromCheckpoint bool `json:"from_checkpoint"`
}
