package peer

import (
	"encoding/json"
	"time"
)

// ApplyAnswer is the leader's answer to an ApplyRequest: the command's
// Raft index and the value the state machine returned, as JSON.
type ApplyAnswer struct {
	Index uint64          `json:"index"`
	Value json.RawMessage `json:"value,omitempty"`
}

// LeaseAnswer is the leader's answer to a renewal.
type LeaseAnswer struct {
	// Renewed is the node whose lease was renewed.
	Renewed string `json:"renewed"`
	// Index is the leader's applied index after the renewal.
	Index uint64 `json:"index"`
}

// MirrorAnswer is the leader's state at Index.
type MirrorAnswer struct {
	Index   uint64   `json:"index"`
	Leader  string   `json:"leader"`
	Servers []Server `json:"servers"`
	// State is the state machine's snapshot (fsm.Machine.Snapshot).
	State json.RawMessage `json:"state"`
}

// Server is one server of the leader's Raft configuration.
type Server struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
}

// ActionAnswer is what a holder answers to checkpoint, restart and
// migrate. Its JSON is that of node/runtime.Result, which it carries.
type ActionAnswer struct {
	Workload string `json:"workload"`
	Epoch    uint64 `json:"epoch"`
	// Seq, Digest and Bytes describe the checkpoint taken, or the one a
	// restart restored from (Seq 0: started fresh).
	Seq    uint64        `json:"seq"`
	Digest string        `json:"digest,omitempty"`
	Bytes  int64         `json:"bytes,omitempty"`
	Freeze time.Duration `json:"freeze_ns,omitempty"`
	Took   time.Duration `json:"took_ns"`
	PID    int           `json:"pid,omitempty"`
}

// ClockAnswer is the test clock after a change.
type ClockAnswer struct {
	Offset string    `json:"offset"`
	Now    time.Time `json:"now"`
}

// HelloAnswer names the answering peer.
type HelloAnswer struct {
	Name string `json:"name"`
}
