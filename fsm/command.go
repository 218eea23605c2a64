package fsm

import (
	"time"
)

// CommandType is the first byte of an encoded command. The high bit
// (IgnoreUnknownFlag) tells a replica that does not know the type to skip
// the command instead of failing, so mixed-version clusters keep running.
type CommandType uint8

// IgnoreUnknownFlag marks a command that older replicas may skip.
const IgnoreUnknownFlag CommandType = 0x80

// Command types. Never renumber: they are on disk in every Raft log.
const (
	CmdNodeUpsert         CommandType = 1  // NodeUpsert
	CmdLeaseRenew         CommandType = 2  // LeaseRenew
	CmdLeaseExpire        CommandType = 3  // LeaseExpire
	CmdNodeState          CommandType = 4  // NodeStateChange
	CmdNodeRemove         CommandType = 5  // NodeRemove
	CmdWorkloadSubmit     CommandType = 6  // WorkloadSubmit
	CmdWorkloadGrant      CommandType = 7  // WorkloadGrant
	CmdWorkloadReport     CommandType = 8  // WorkloadReport
	CmdWorkloadRemove     CommandType = 9  // WorkloadRemove
	CmdCheckpointPrepare  CommandType = 10 // CheckpointPrepare
	CmdCheckpointCommit   CommandType = 11 // CheckpointCommit
	CmdCheckpointAbort    CommandType = 12 // CheckpointAbort
	CmdMigrationBegin     CommandType = 13 // MigrationBegin
	CmdMigrationPhase     CommandType = 14 // MigrationPhase
	CmdResultAppend       CommandType = 15 // ResultAppend
	CmdHazardRecord       CommandType = 16 // HazardRecord
	CmdWorkloadSetStandby CommandType = 17 // WorkloadSetStandbys
	CmdWorkloadPreempt    CommandType = 18 // WorkloadPreempt
)

// Command is implemented by every command payload.
type Command interface {
	// Type is the command's type byte (without IgnoreUnknownFlag).
	Type() CommandType
}

// NodeUpsert records a node's identity and addresses (from gossip). A new
// node starts alive. An existing node keeps its State, LeaseExpiry and
// Drained; every identity field is replaced; a node that was lost or left
// becomes alive again.
type NodeUpsert struct {
	Node Node      `json:"node"`
	At   time.Time `json:"at"`
}

// LeaseRenew renews the leases of several nodes in one entry (the leader
// batches renewals): each named, known node gets LeaseExpiry = At + TTL,
// and a lost node becomes alive. Unknown names are ignored.
type LeaseRenew struct {
	Nodes []string      `json:"nodes"`
	At    time.Time     `json:"at"`
	TTL   time.Duration `json:"ttl"`
}

// LeaseExpire marks a node lost when its lease really lapsed (the leader
// decides that on its own clock): it applies only if no renewal applied
// after the proposer looked (the node's Renewals is still Renewals: one
// that raced ahead of this command wins) and the node has not left;
// otherwise ErrLeaseValid.
type LeaseExpire struct {
	Node     string    `json:"node"`
	At       time.Time `json:"at"`
	Renewals uint64    `json:"renewals"`
}

// NodeStateChange sets a node's state: doomed (with Deadline), draining,
// left, or alive (undrain/recover). Drained sets or clears the operator's
// drain mark: Drain=true sets state draining and Drained; Undrain clears
// both and returns the node to alive.
type NodeStateChange struct {
	Node     string    `json:"node"`
	State    NodeState `json:"state"`
	Deadline time.Time `json:"deadline,omitzero"`
	At       time.Time `json:"at"`
}

// NodeRemove forgets a node entirely (autopilot removed it).
type NodeRemove struct {
	Node string `json:"node"`
}

// WorkloadSubmit records a new workload, pending. ErrExists when the id is
// taken; ErrInvalid (wrapped, naming the field) when Spec.Validate fails.
type WorkloadSubmit struct {
	Spec WorkloadSpec `json:"spec"`
	At   time.Time    `json:"at"`
}

// WorkloadGrant makes Holder the holder of a workload under a new epoch,
// which is the Raft index of this command. The previous epoch (if any) is
// tombstoned. If PrevEpoch is non-zero and differs from the current epoch,
// the grant is refused with ErrStaleEpoch (compare-and-swap for the
// orchestrator). Standbys replaces the standby list.
type WorkloadGrant struct {
	Workload  string    `json:"workload"`
	Holder    string    `json:"holder"`
	Standbys  []string  `json:"standbys,omitempty"`
	PrevEpoch uint64    `json:"prev_epoch,omitempty"`
	At        time.Time `json:"at"`
}

// WorkloadReport is the holder reporting its workload's state. Refused with
// ErrStaleEpoch unless Epoch is the current epoch.
type WorkloadReport struct {
	Workload string        `json:"workload"`
	Epoch    uint64        `json:"epoch"`
	State    WorkloadState `json:"state"`
	Message  string        `json:"message,omitempty"`
	At       time.Time     `json:"at"`
}

// WorkloadRemove deletes a workload and everything recorded for it.
// ErrNotFound when unknown.
type WorkloadRemove struct {
	Workload string `json:"workload"`
}

// WorkloadPreempt takes a workload off its holder to make room for more
// important work: the current epoch is tombstoned and the workload is
// pending again, to be granted (and restored from its latest committed
// checkpoint) where capacity allows. Refused with ErrStaleEpoch unless
// PrevEpoch is the current epoch, and with ErrInvalid for a workload that
// has no holder.
type WorkloadPreempt struct {
	Workload  string    `json:"workload"`
	PrevEpoch uint64    `json:"prev_epoch"`
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at"`
}

// WorkloadSetStandbys replaces a workload's standby list without changing
// its epoch.
type WorkloadSetStandbys struct {
	Workload string   `json:"workload"`
	Standbys []string `json:"standbys"`
}

// CheckpointPrepare records a pending checkpoint of the current epoch; its
// Seq is the workload's NextSeq (returned in Response.Value as uint64). A
// previous pending checkpoint is replaced. ErrStaleEpoch if Epoch is not
// current, or if Seq is set and is not the workload's NextSeq (the holder
// builds the manifest, which names the seq, before it proposes).
type CheckpointPrepare struct {
	Workload string `json:"workload"`
	Epoch    uint64 `json:"epoch"`
	Seq      uint64 `json:"seq,omitempty"`
	Digest   string `json:"digest"`
	Bytes    int64  `json:"bytes"`
	// LazyFrom marks a lazy checkpoint (see CheckpointRecord.LazyFrom).
	LazyFrom string    `json:"lazy_from,omitempty"`
	At       time.Time `json:"at"`
}

// CheckpointCommit commits the pending checkpoint with this Seq and Digest,
// listing the standbys that verified it; the oldest committed beyond
// KeepCheckpoints are dropped. ErrNoPending when there is no such pending
// checkpoint.
type CheckpointCommit struct {
	Workload string    `json:"workload"`
	Seq      uint64    `json:"seq"`
	Digest   string    `json:"digest"`
	Standbys []string  `json:"standbys"`
	At       time.Time `json:"at"`
}

// CheckpointAbort drops the pending checkpoint with this Seq.
type CheckpointAbort struct {
	Workload string `json:"workload"`
	Seq      uint64 `json:"seq"`
	Reason   string `json:"reason,omitempty"`
}

// MigrationBegin records a new migration in phase planned (or Phase, if
// set). ErrExists when the id is taken. Only the newest MaxMigrations are
// kept.
type MigrationBegin struct {
	Migration Migration `json:"migration"`
	At        time.Time `json:"at"`
}

// MigrationPhase moves a migration to a phase, appending to its Phases.
type MigrationPhase struct {
	ID    string    `json:"id"`
	Phase string    `json:"phase"`
	Epoch uint64    `json:"epoch,omitempty"`
	Error string    `json:"error,omitempty"`
	At    time.Time `json:"at"`
}

// ResultAppend appends Value to a workload's fenced results log under
// Epoch. Refused with ErrStaleEpoch when Epoch is not the current epoch
// (a tombstoned or unknown epoch). The Result (with Index = Raft index) is
// returned in Response.Value. The oldest entries are then trimmed beyond
// MaxResults and, when KeepBytes is set, beyond KeepBytes of values; the
// newest entry is always kept.
type ResultAppend struct {
	Workload string    `json:"workload"`
	Epoch    uint64    `json:"epoch"`
	Value    string    `json:"value"`
	At       time.Time `json:"at"`
	// KeepBytes is the proposer's bound on the values the log keeps in
	// all (MaxResultBytes). Zero, as in every append written before it
	// existed, bounds the count only: such a log replays as it applied.
	KeepBytes int64 `json:"keep_bytes,omitempty"`
}

// HazardRecord records an observed interruption notice.
type HazardRecord struct {
	Hazard Hazard `json:"hazard"`
}

// Type implementations.
func (NodeUpsert) Type() CommandType          { return CmdNodeUpsert }
func (LeaseRenew) Type() CommandType          { return CmdLeaseRenew }
func (LeaseExpire) Type() CommandType         { return CmdLeaseExpire }
func (NodeStateChange) Type() CommandType     { return CmdNodeState }
func (NodeRemove) Type() CommandType          { return CmdNodeRemove }
func (WorkloadSubmit) Type() CommandType      { return CmdWorkloadSubmit }
func (WorkloadGrant) Type() CommandType       { return CmdWorkloadGrant }
func (WorkloadReport) Type() CommandType      { return CmdWorkloadReport }
func (WorkloadRemove) Type() CommandType      { return CmdWorkloadRemove }
func (WorkloadSetStandbys) Type() CommandType { return CmdWorkloadSetStandby }
func (WorkloadPreempt) Type() CommandType     { return CmdWorkloadPreempt }
func (CheckpointPrepare) Type() CommandType   { return CmdCheckpointPrepare }
func (CheckpointCommit) Type() CommandType    { return CmdCheckpointCommit }
func (CheckpointAbort) Type() CommandType     { return CmdCheckpointAbort }
func (MigrationBegin) Type() CommandType      { return CmdMigrationBegin }
func (MigrationPhase) Type() CommandType      { return CmdMigrationPhase }
func (ResultAppend) Type() CommandType        { return CmdResultAppend }
func (HazardRecord) Type() CommandType        { return CmdHazardRecord }

// Response is what Machine.Apply returns for one command. Err is nil on
// success; callers test it with errors.Is against the sentinels below.
type Response struct {
	Index uint64
	Err   error
	Value any
}
