// Package fsm is lifeboat's replicated state machine: nodes and their
// leases, workloads with their assignments and fencing epochs, tombstones,
// the fenced results log, checkpoints, migrations and hazard records.
//
// It is pure: Apply takes the Raft index and an encoded command and changes
// the state deterministically. There is no clock, network, disk or
// randomness inside; time and ids are stamped by the proposer and travel in
// the command. The node package adapts Machine to raft.FSM.
package fsm

import (
	"encoding/json"
	"fmt"
	"time"
)

// NodeState is a node's state as the cluster records it.
type NodeState string

// Node states. Suspect is never stored: it comes from gossip only.
const (
	NodeAlive    NodeState = "alive"
	NodeDoomed   NodeState = "doomed"
	NodeDraining NodeState = "draining"
	NodeLost     NodeState = "lost"
	NodeLeft     NodeState = "left"
)

// Resources is an amount of memory and CPU, requested or offered.
type Resources struct {
	MemoryMiB int64 `json:"memory_mib,omitempty" yaml:"memory_mib,omitempty"`
	CPUMillis int64 `json:"cpu_millis,omitempty" yaml:"cpu_millis,omitempty"`
}

// Ports are the listeners a node advertises on its address.
type Ports struct {
	Gossip   int `json:"gossip"`
	Raft     int `json:"raft"`
	Transfer int `json:"transfer"`
	HTTP     int `json:"http"`
	Ingress  int `json:"ingress"`
}

// Node is one peer as the cluster records it.
type Node struct {
	Name         string    `json:"name"`
	Cloud        string    `json:"cloud,omitempty"`
	Region       string    `json:"region,omitempty"`
	Zone         string    `json:"zone,omitempty"`
	InstanceID   string    `json:"instance_id,omitempty"`
	InstanceType string    `json:"instance_type,omitempty"`
	Lifecycle    string    `json:"lifecycle,omitempty"` // spot | on-demand
	Capacity     Resources `json:"capacity"`
	Addr         string    `json:"addr"`
	Ports        Ports     `json:"ports"`
	// Modes lists the checkpoint modes this node can serve (criu, app, none).
	Modes []string  `json:"modes,omitempty"`
	State NodeState `json:"state"`
	// Deadline is when a doomed node is expected to vanish.
	Deadline time.Time `json:"deadline,omitzero"`
	// LeaseExpiry is the proposer-stamped end of the node's lease, on
	// the proposer's wall clock: for people. The leader decides a lease's
	// end on its own boot-time clock, which no wall-clock step moves.
	LeaseExpiry time.Time `json:"lease_expiry,omitzero"`
	// Renewals counts the node's applied lease renewals: a LeaseExpire
	// proposed before the latest of them is refused.
	Renewals uint64 `json:"renewals,omitempty"`
	// Drained reports whether an operator drained the node; a drained node
	// takes no new work until undrained.
	Drained   bool      `json:"drained,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Duration is a time.Duration that reads and writes as "30s" in JSON and
// YAML, and also accepts a number of nanoseconds in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "30s" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration: want a string like \"30s\": %w", err)
	}
	*d = Duration(n)
	return nil
}

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML reads "30s".
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return fmt.Errorf("duration: want a string like \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Checkpoint modes.
const (
	ModeCRIU = "criu"
	ModeApp  = "app"
	ModeNone = "none"
)

// CapLazyPages, in a node's Modes beside the checkpoint modes, says that
// the node can restore a lazy (post-copy) checkpoint: userfaultfd works
// and CRIU can use it.
const CapLazyPages = "lazy-pages"

// Priority classes, highest first.
const (
	PriorityCritical = "critical"
	PriorityHigh     = "high"
	PriorityNormal   = "normal"
	PriorityBatch    = "batch"
)

// CheckpointPolicy says how and how often a workload is checkpointed.
type CheckpointPolicy struct {
	Mode     string   `json:"mode" yaml:"mode"`
	Interval Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	// LazyPages makes a move's final checkpoint post-copy (criu mode
	// only): the new holder restores before the memory moves and fetches
	// it from the old holder's frozen process afterwards. The stall no
	// longer grows with memory, but until every page has moved the old
	// holder holds the only copy of the memory.
	LazyPages bool `json:"lazy_pages,omitempty" yaml:"lazy_pages,omitempty"`
}

// Service is how clients reach a workload through every peer's ingress.
type Service struct {
	Port     int      `json:"port" yaml:"port"`
	Listen   int      `json:"listen,omitempty" yaml:"listen,omitempty"`
	Protocol string   `json:"protocol,omitempty" yaml:"protocol,omitempty"` // http | tcp
	SLO      Duration `json:"slo,omitempty" yaml:"slo,omitempty"`
}

// Constraints narrow where a workload may be placed.
type Constraints struct {
	Prefer     []string `json:"prefer,omitempty" yaml:"prefer,omitempty"`
	AvoidZones []string `json:"avoid_zones,omitempty" yaml:"avoid_zones,omitempty"`
	Clouds     []string `json:"clouds,omitempty" yaml:"clouds,omitempty"`
}

// WorkloadSpec is what an operator submits.
type WorkloadSpec struct {
	ID         string            `json:"id" yaml:"id"`
	Command    []string          `json:"command" yaml:"command"`
	Env        map[string]string `json:"env,omitempty" yaml:"env,omitempty"`
	Checkpoint CheckpointPolicy  `json:"checkpoint" yaml:"checkpoint"`
	Priority   string            `json:"priority,omitempty" yaml:"priority,omitempty"`
	Resources  Resources         `json:"resources" yaml:"resources"`
	Service    *Service          `json:"service,omitempty" yaml:"service,omitempty"`
	Placement  Constraints       `json:"placement" yaml:"placement"`
	Standbys   int               `json:"standbys,omitempty" yaml:"standbys,omitempty"`
}

// WorkloadState is the state of a workload's current assignment.
type WorkloadState string

// Workload states.
const (
	WorkloadPending   WorkloadState = "pending"   // recorded, not yet granted
	WorkloadGranted   WorkloadState = "granted"   // granted to a holder, not yet running
	WorkloadRunning   WorkloadState = "running"   // the holder reports it runs
	WorkloadMigrating WorkloadState = "migrating" // an evacuation is moving it
	WorkloadFailed    WorkloadState = "failed"    // the holder reports it cannot run it
	WorkloadStopped   WorkloadState = "stopped"
)

// Assignment is who runs a workload under which fencing epoch.
type Assignment struct {
	Holder string `json:"holder,omitempty"`
	// Epoch is the Raft index of the grant that made Holder the holder.
	Epoch     uint64        `json:"epoch,omitempty"`
	Standbys  []string      `json:"standbys,omitempty"`
	State     WorkloadState `json:"state"`
	Message   string        `json:"message,omitempty"`
	GrantedAt time.Time     `json:"granted_at,omitzero"`
}

// CheckpointRecord is one checkpoint of a workload as Raft knows it.
type CheckpointRecord struct {
	Seq    uint64 `json:"seq"`
	Epoch  uint64 `json:"epoch"`
	Digest string `json:"digest"` // hex SHA-256 of the manifest
	Bytes  int64  `json:"bytes"`
	// Standbys lists the nodes holding a verified copy.
	Standbys []string `json:"standbys,omitempty"`
	// LazyFrom, on a lazy (post-copy) checkpoint, names the node whose
	// frozen process serves its memory: it can be restored only once,
	// right after the move, and never counts as a copy to fall back on.
	LazyFrom    string    `json:"lazy_from,omitempty"`
	PreparedAt  time.Time `json:"prepared_at,omitzero"`
	CommittedAt time.Time `json:"committed_at,omitzero"`
}

// Result is one entry of a workload's fenced results log.
type Result struct {
	Index uint64    `json:"index"` // Raft index of the append
	Epoch uint64    `json:"epoch"`
	Value string    `json:"value"`
	At    time.Time `json:"at,omitzero"`
}

// Workload is a spec with its assignment and checkpoints.
type Workload struct {
	Spec       WorkloadSpec `json:"spec"`
	Assignment Assignment   `json:"assignment"`
	// Checkpoints are the committed checkpoints, oldest first, at most
	// State.KeepCheckpoints of them.
	Checkpoints []CheckpointRecord `json:"checkpoints,omitempty"`
	// Pending is a prepared checkpoint not yet committed or aborted.
	Pending *CheckpointRecord `json:"pending,omitempty"`
	// NextSeq is the sequence number the next prepared checkpoint takes.
	NextSeq uint64 `json:"next_seq"`
	// Tombstones are the epochs of this workload that are over.
	Tombstones []uint64 `json:"tombstones,omitempty"`
	// Results is the fenced results log, oldest first: at most MaxResults
	// entries and, for appends that carry the bound, MaxResultBytes of
	// values (see ResultAppend.KeepBytes).
	Results []Result `json:"results,omitempty"`
	// ResultsTrimmed counts the entries ever trimmed from the front of
	// Results, and ResultsTrimmedThrough is the Raft index of the newest
	// of them (0: none): every entry at or below it is gone, every entry
	// above it is kept. A state restored from a snapshot written before
	// these fields existed counts from that snapshot on, so it may say
	// less was trimmed than was, never more.
	ResultsTrimmed        uint64    `json:"results_trimmed,omitempty"`
	ResultsTrimmedThrough uint64    `json:"results_trimmed_through,omitempty"`
	SubmittedAt           time.Time `json:"submitted_at,omitzero"`
}

// Migration phases.
const (
	PhasePlanned       = "planned"
	PhaseCheckpointing = "checkpointing"
	PhaseTransferring  = "transferring"
	PhaseRestoring     = "restoring"
	PhaseCutover       = "cutover"
	PhaseDone          = "done"
	PhaseFailed        = "failed"
	PhaseRolledBack    = "rolled-back"
)

// PhaseTime is when a migration entered a phase.
type PhaseTime struct {
	Phase string    `json:"phase"`
	At    time.Time `json:"at"`
}

// Migration is the record of one move of a workload.
type Migration struct {
	ID       string      `json:"id"`
	Workload string      `json:"workload"`
	From     string      `json:"from"`
	To       string      `json:"to"`
	Reason   string      `json:"reason"`
	Phase    string      `json:"phase"`
	Epoch    uint64      `json:"epoch,omitempty"` // the epoch granted to To
	Phases   []PhaseTime `json:"phases"`
	Error    string      `json:"error,omitempty"`
}

// Underway reports whether the move is between its begin and its end:
// checkpointing, transferring, restoring or at its cutover.
func (m Migration) Underway() bool {
	switch m.Phase {
	case PhaseCheckpointing, PhaseTransferring, PhaseRestoring, PhaseCutover:
		return true
	}
	return false
}

// Hazard is one interruption notice or rebalance recommendation observed.
type Hazard struct {
	Node         string    `json:"node"`
	Cloud        string    `json:"cloud,omitempty"`
	Region       string    `json:"region,omitempty"`
	Zone         string    `json:"zone,omitempty"`
	InstanceType string    `json:"instance_type,omitempty"`
	Kind         string    `json:"kind"` // preempt | rebalance | maintenance | drain
	At           time.Time `json:"at"`
}

// Limits bound what the state keeps.
const (
	KeepCheckpoints = 2    // committed checkpoints kept per workload
	MaxResults      = 1000 // results kept per workload
	MaxTombstones   = 64   // tombstones kept per workload
	MaxMigrations   = 1000 // migration records kept
	MaxHazards      = 1000 // hazard records kept
)

// MaxResultBytes bounds the values of one workload's results log
// together (1 MiB): the oldest entries are trimmed beyond it or beyond
// MaxResults, whichever is reached first, so every replica keeps at
// most about this much per workload (one value is at most 64 KiB,
// api.MaxResult). The proposer stamps it into each ResultAppend
// (KeepBytes) rather than Apply reading it here, so that a log
// written before the bound replays to the same state.
const MaxResultBytes = 1 << 20

// State is the whole replicated state. Maps are keyed by name or id.
type State struct {
	Nodes      map[string]*Node     `json:"nodes"`
	Workloads  map[string]*Workload `json:"workloads"`
	Migrations []*Migration         `json:"migrations,omitempty"`
	Hazards    []Hazard             `json:"hazards,omitempty"`
	// Index is the Raft index of the last applied command.
	Index uint64 `json:"index"`
}
