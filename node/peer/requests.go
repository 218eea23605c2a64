package peer

import (
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lifeboat/lifeboat/node/api"
)

// MaxName bounds a node name, workload id or migration id on the wire.
const MaxName = 253

// MaxCommand bounds an fsm-encoded command sent to the leader.
const MaxCommand = api.MaxBody

// MaxMirrorWait bounds how long one mirror query waits for a newer state.
const MaxMirrorWait = 10 * time.Second

// MaxClockJump bounds a test clock's offset: far enough for any lease,
// near enough that recorded times stay readable.
const MaxClockJump = 24 * time.Hour

// Body limits, in bytes. Each fits the largest valid request as Client
// encodes it (names at MaxName, every byte of them escaped), which
// TestWorstCaseFitsLimit checks.
const (
	limitApply = 64 + 4*((MaxCommand+2)/3) // {"command":"BASE64"}
	limitSmall = 1 << 10                   // one name, or numbers
	limitSend  = 2 << 10                   // two names
	limitMove  = 4 << 10                   // four names and a reason
)

// ApplyRequest asks the leader to commit a command through Raft.
type ApplyRequest struct {
	// Command is fsm-encoded (fsm.Encode); base64 in JSON.
	Command []byte `json:"command"`
}

// LeaseRequest asks the leader to renew a node's lease.
type LeaseRequest struct {
	Node string `json:"node"`
}

// MirrorRequest asks the leader for its state once it is newer than After,
// or after WaitMS milliseconds (at most MaxMirrorWait).
type MirrorRequest struct {
	After  uint64 `json:"after"`
	WaitMS int64  `json:"wait_ms"`
}

// CheckpointRequest asks a workload's holder for a checkpoint now.
type CheckpointRequest struct {
	Workload string `json:"workload"`
}

// RestartRequest asks a workload's holder to restart it, from its latest
// committed checkpoint when FromCheckpoint.
type RestartRequest struct {
	Workload       string `json:"workload"`
	FromCheckpoint bool   `json:"from_checkpoint"`
}

// MigrateRequest asks a workload's holder to move it.
type MigrateRequest struct {
	ID string `json:"id"`
	// To is the target node; empty when Park.
	To string `json:"to"`
	// Reason is recorded with the move; the decoder makes an empty one
	// "manual".
	Reason string `json:"reason"`
	// Migration is the record the leader planned the move under; empty
	// for a move asked by hand, which the holder records itself.
	Migration string `json:"migration,omitempty"`
	// Park takes the workload off its holder without a target: the final
	// checkpoint is committed and the workload is pending again
	// (preemption).
	Park bool `json:"park,omitempty"`
	// Index is the leader's Raft index when it planned the move: the
	// holder checks the target on a replica at least that fresh.
	Index uint64 `json:"index,omitempty"`
}

// SendRequest asks a node to send committed checkpoint Seq of Workload
// from its store to node To.
type SendRequest struct {
	Workload string `json:"workload"`
	Seq      uint64 `json:"seq"`
	To       string `json:"to"`
}

// ResultsRequest asks the leader for a workload's results log.
type ResultsRequest struct {
	Workload string `json:"workload"`
}

// HelloRequest asks a peer who it is: the answer comes over a TLS
// connection whose certificate the caller checks (Client.Prove).
type HelloRequest struct{}

// ClockRequest sets the test clock's offset from the real time.
type ClockRequest struct {
	// Offset is a Go duration such as "-30s"; "0s" puts the clock right.
	Offset string `json:"offset"`
}

// Wait is how long the mirror query may wait, bounded by MaxMirrorWait.
func (r MirrorRequest) Wait() time.Duration {
	if r.WaitMS <= 0 {
		return 0
	}
	if r.WaitMS >= MaxMirrorWait.Milliseconds() {
		return MaxMirrorWait
	}
	return time.Duration(r.WaitMS) * time.Millisecond
}

// Step is the offset as a duration (zero if it does not parse, which a
// decoded or validated request never does).
func (r ClockRequest) Step() time.Duration {
	d, _ := time.ParseDuration(r.Offset)
	return d
}

// Validate reports what is wrong with the request.
func (r ApplyRequest) Validate() error {
	switch {
	case len(r.Command) == 0:
		return bad("apply", "command", "must not be empty")
	case len(r.Command) > MaxCommand:
		return bad("apply", "command", fmt.Sprintf("is %d bytes, over %d", len(r.Command), MaxCommand))
	}
	return nil
}

// Validate reports what is wrong with the request.
func (r LeaseRequest) Validate() error { return name("lease", "node", r.Node, true) }

// Validate reports what is wrong with the request.
func (r MirrorRequest) Validate() error {
	if r.WaitMS < 0 {
		return bad("mirror", "wait_ms", fmt.Sprintf("%d must not be negative", r.WaitMS))
	}
	return nil
}

// Validate reports what is wrong with the request.
func (r CheckpointRequest) Validate() error { return name("checkpoint", "workload", r.Workload, true) }

// Validate reports what is wrong with the request.
func (r RestartRequest) Validate() error { return name("restart", "workload", r.Workload, true) }

// Validate reports what is wrong with the request.
func (r MigrateRequest) Validate() error {
	if err := name("migrate", "id", r.ID, true); err != nil {
		return err
	}
	if r.Park && r.To != "" {
		return bad("migrate", "to", "must be empty when park is set")
	}
	if err := name("migrate", "to", r.To, !r.Park); err != nil {
		return err
	}
	if err := name("migrate", "migration", r.Migration, false); err != nil {
		return err
	}
	return name("migrate", "reason", r.Reason, false)
}

// Validate reports what is wrong with the request.
func (r SendRequest) Validate() error {
	if err := name("send", "workload", r.Workload, true); err != nil {
		return err
	}
	if r.Seq == 0 {
		return bad("send", "seq", "must be a committed checkpoint's number (≥ 1)")
	}
	return name("send", "to", r.To, true)
}

// Validate reports what is wrong with the request.
func (r ResultsRequest) Validate() error { return name("results", "workload", r.Workload, true) }

// Validate reports what is wrong with the request: nothing can be.
func (HelloRequest) Validate() error { return nil }

// Validate reports what is wrong with the request.
func (r ClockRequest) Validate() error {
	d, err := time.ParseDuration(r.Offset)
	if err != nil || d > MaxClockJump || d < -MaxClockJump {
		return bad("clock", "offset", fmt.Sprintf("%q must be a duration within ±%v", r.Offset, MaxClockJump))
	}
	return nil
}

// name checks a name-like field: at most MaxName bytes of UTF-8 without
// control characters, and not empty when required.
func name(endpoint, field, v string, required bool) error {
	switch {
	case v == "" && required:
		return bad(endpoint, field, "must not be empty")
	case len(v) > MaxName:
		return bad(endpoint, field, fmt.Sprintf("is %d bytes, over %d", len(v), MaxName))
	case !utf8.ValidString(v):
		return bad(endpoint, field, "is not UTF-8")
	}
	for _, c := range v {
		if unicode.IsControl(c) {
			return bad(endpoint, field, fmt.Sprintf("%q holds a control character", v))
		}
	}
	return nil
}

// bad is a refused request: it wraps api.ErrBadRequest and names the
// endpoint and the field.
func bad(endpoint, field, why string) error {
	return fmt.Errorf("%w: peer %s request: %s %s", api.ErrBadRequest, endpoint, field, why)
}
