// Package history is what a Jepsen run records: every client operation
// with its invocation and completion times and its outcome, and every
// fault the nemesis injected. The traffic package writes it, the checker
// package reads it, the report package prints and saves it.
package history

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"
)

// Op kinds.
const (
	// KindIncr is a client's GET /?op=ID on the counter workload at one
	// host: the counter increments, appends "COUNT@ID" to its fenced
	// results log under its epoch (POST /v1/workloads/{id}/results) and
	// only then answers with the count (and its epoch in
	// X-Lifeboat-Epoch, its entry's Raft index in X-Lifeboat-Index). Ok:
	// Value, Epoch and Index are set.
	KindIncr = "incr"
	// KindRead is a read of the results log through the admin API of one
	// host (GET /v1/workloads/{id}/results): the entries it keeps and its
	// trim point. Ok: Log, Trimmed and TrimmedThrough are set.
	KindRead = "read"
	// KindProbe is a GET /value on one host's counter port: who serves
	// the workload now. Ok: Value and Epoch are set.
	KindProbe = "probe"
	// KindStale is an append of a result under an epoch the client knows
	// is over (the harness keeps the previous epoch after a move): it must
	// be refused (Outcome Fail with Status 409).
	KindStale = "stale"
)

// Outcomes.
const (
	Ok      = "ok"
	Fail    = "fail"    // definitely did not take effect
	Unknown = "unknown" // timed out or the connection broke: may or may not have
)

// Op is one client operation.
type Op struct {
	ID       int    `json:"id"`
	Client   int    `json:"client"`
	Kind     string `json:"kind"`
	Workload string `json:"workload"`
	Host     string `json:"host"` // the host the request went to
	// Via is "ingress" for a request sent to a host's ingress rather
	// than to the workload itself.
	Via      string        `json:"via,omitempty"`
	Invoke   time.Duration `json:"invoke"` // since the run's start
	Complete time.Duration `json:"complete"`
	Outcome  string        `json:"outcome"`
	Status   int           `json:"status,omitempty"` // HTTP status, when there was one
	Value    int64         `json:"value,omitempty"`
	Epoch    uint64        `json:"epoch,omitempty"`
	Index    uint64        `json:"index,omitempty"` // incr: the Raft index of its result
	Log      []Entry       `json:"log,omitempty"`
	// Trimmed and TrimmedThrough are, for a read, the log's trim point:
	// how many entries the log had trimmed from its front before Log, and
	// the Raft index of the newest of them. Every entry at or below
	// TrimmedThrough is gone; every entry above it is in Log.
	Trimmed        uint64 `json:"trimmed,omitempty"`
	TrimmedThrough uint64 `json:"trimmed_through,omitempty"`
	Error          string `json:"error,omitempty"`
	// Tag is, for an incr, the unique tag the client sent with it, which
	// the workload appends to its results log as "COUNT@TAG"; for a
	// stale op, the value it tried to append. It is chosen before the
	// request is sent (ID is only known once the op is recorded), so an
	// incr of unknown outcome can still be found in the log.
	Tag string `json:"tag,omitempty"`
}

// Entry is one result in a workload's fenced results log.
type Entry struct {
	Index uint64 `json:"index"`
	Epoch uint64 `json:"epoch"`
	Value string `json:"value"` // "COUNT@OPID" for the counter's appends, anything for stale ones
}

// Fault is one injected fault.
type Fault struct {
	Kind   string        `json:"kind"`
	Start  time.Duration `json:"start"`
	End    time.Duration `json:"end"` // healed; 0 while it lasts
	Detail string        `json:"detail,omitempty"`
}

// History is one run's record. Methods are safe for concurrent use.
type History struct {
	mu      sync.Mutex
	start   time.Time
	nextID  int
	Ops     []Op    `json:"ops"`
	Faults  []Fault `json:"faults"`
	Started time.Time
}

// New starts a history at now.
func New(now time.Time) *History { return &History{start: now, Started: now} }

// Since is t as an offset from the run's start.
func (h *History) Since(t time.Time) time.Duration { return t.Sub(h.start) }

// Add records a completed operation and returns its id.
func (h *History) Add(op Op) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	op.ID = h.nextID
	h.nextID++
	h.Ops = append(h.Ops, op)
	return op.ID
}

// Fault records an injected fault; End may be set later with Healed.
func (h *History) Fault(f Fault) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Faults = append(h.Faults, f)
	return len(h.Faults) - 1
}

// Healed sets the end of fault i.
func (h *History) Healed(i int, at time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i >= 0 && i < len(h.Faults) {
		h.Faults[i].End = at
	}
}

// Snapshot returns the ops sorted by invocation and the faults, copied.
func (h *History) Snapshot() ([]Op, []Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ops := append([]Op(nil), h.Ops...)
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Invoke < ops[j].Invoke })
	return ops, append([]Fault(nil), h.Faults...)
}

// Save writes the history as JSON.
func (h *History) Save(path string) error {
	ops, faults := h.Snapshot()
	b, err := json.MarshalIndent(struct {
		Started time.Time `json:"started"`
		Ops     []Op      `json:"ops"`
		Faults  []Fault   `json:"faults"`
	}{h.Started, ops, faults}, "", " ")
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return os.WriteFile(path, b, 0o644)
}
