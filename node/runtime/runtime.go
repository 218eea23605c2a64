// Package runtime runs the workloads a peer holds: the supervisor starts,
// watches, restarts and stops their processes, and the checkpointers (criu,
// app, none) take and restore their checkpoints into the local store.
//
// supervisor.go is the Supervisor and its seams to the node (Cluster,
// Mover); unit.go is one workload's goroutine, its mailbox and serve loop,
// with its starts (unit_start.go), checkpoints (unit_checkpoint.go),
// handoffs (unit_handoff.go), lazy moves (unit_lazy.go) and state reports
// (unit_report.go); proc.go controls its process. criu*.go, app.go and
// launch.go are the checkpointers; the lazy moves' restore side is
// criu_lazy.go, prestart.go, predial.go, pagerelay.go, lazyplan.go and
// hotpages.go.
package runtime

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// Workload is one granted workload as the supervisor runs it.
type Workload struct {
	Spec  fsm.WorkloadSpec
	Epoch uint64
	// Dir is the workload's own directory in the data dir; its stdout and
	// stderr go to Dir/output.log.
	Dir string
	// Env is added to the environment the node gives every workload.
	Env []string
	// Init is the workload init a shell command runs under (init.go), an
	// absolute path; empty runs the shell as PID 1 itself.
	Init string
}

// LogPath is where the workload's stdout and stderr go.
func (w Workload) LogPath() string { return w.Dir + "/output.log" }

// Stats describe one checkpoint as the checkpointer saw it.
type Stats struct {
	// Freeze is how long the process was stopped (zero if it never was).
	Freeze time.Duration
	// Duration is the whole checkpoint, start to finish.
	Duration time.Duration
}

// Checkpointer takes and restores checkpoints in one mode. The supervisor
// calls it from the workload's own goroutine, never concurrently for one
// workload; calls may block for as long as ctx allows.
type Checkpointer interface {
	// Mode is fsm.ModeCRIU, fsm.ModeApp or fsm.ModeNone.
	Mode() string
	// Start runs the workload: fresh when from is "", otherwise restored
	// from the checkpoint directory from, which the caller has verified.
	// The process returned is a child of this process; the caller waits
	// for it (os.Process.Wait) and so reaps it.
	Start(ctx context.Context, w Workload, from string) (*os.Process, error)
	// Checkpoint writes the state of the running process p into the empty
	// directory dir. With leaveRunning the process keeps running (periodic
	// checkpoints); without it the checkpoint stops the process (the final
	// checkpoint before a move) and the caller only reaps it.
	Checkpoint(ctx context.Context, w Workload, p *os.Process, dir string, leaveRunning bool) (Stats, error)
}

// Errors callers branch on.
var (
	// ErrNoCheckpoint means the mode takes no checkpoints (none).
	ErrNoCheckpoint = errors.New("this checkpoint mode takes no checkpoints")
	// ErrCheckpoint wraps every failure to take a checkpoint.
	ErrCheckpoint = errors.New("checkpoint failed")
	// ErrRestore wraps every failure to restore one.
	ErrRestore = errors.New("restore failed")
	// ErrUnsupported means this host cannot serve the mode.
	ErrUnsupported = errors.New("checkpoint mode not supported on this host")
)
