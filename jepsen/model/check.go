package model

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/lifeboat/lifeboat/jepsen/history"
)

// MaxLog is how many results the server keeps per workload: it mirrors
// fsm.MaxResults (the FSM keeps the newest 1000), which the API does not
// expose. A read this long may have lost its oldest entries, which this
// model cannot express. Keep the two equal: were the server's bound
// smaller, a trimmed read would pass unflagged and its missing entries
// could look like lost appends (a false violation); were it larger, reads
// of MaxLog entries or more would be refused with ErrTrimmed though
// nothing was trimmed. Runs append far fewer than either.
const MaxLog = 1000

// Errors of CheckLinearizable: the history cannot be checked.
var (
	// ErrTrimmed: a read returned MaxLog entries, so the log may have been
	// trimmed. Keep runs shorter.
	ErrTrimmed = errors.New("model: a read returned a full results log, which may be trimmed")
	// ErrUntagged: an incr has no Tag, so its append cannot be found.
	ErrUntagged = errors.New("model: an incr has no tag")
)

// Result is the outcome of one workload's linearizability check.
type Result struct {
	Workload string
	// Ok reports whether the history is linearizable.
	Ok bool
	// Unknown reports whether the check timed out (Ok is then false:
	// nothing was proved either way).
	Unknown bool
	// Ops is how many operations were checked.
	Ops int
	// Dropped is how many incrs of unknown outcome no read ever showed:
	// they are left out, which is equivalent to placing them after every
	// read (or never applying them).
	Dropped int
	// Info is porcupine's linearization, for Visualize.
	Info porcupine.LinearizationInfo
}

// CheckLinearizable checks workload's ok and unknown incrs and ok reads
// in ops against ResultsLog. Failed ops did not happen and are left out,
// as are probes and stale ops. An unknown incr may or may not have taken
// effect: it completes at the end of the history. A timeout of 0 means no
// limit.
func CheckLinearizable(ops []history.Op, workload string, timeout time.Duration) (Result, error) {
	pops, dropped, err := operations(ops, workload)
	if err != nil {
		return Result{Workload: workload}, fmt.Errorf("workload %s: %w", workload, err)
	}
	res, info := porcupine.CheckOperationsVerbose(ResultsLog(), pops, timeout)
	return Result{
		Workload: workload,
		Ok:       res == porcupine.Ok,
		Unknown:  res == porcupine.Unknown,
		Ops:      len(pops),
		Dropped:  dropped,
		Info:     info,
	}, nil
}

// Visualize writes porcupine's HTML view of r to w.
func Visualize(r Result, w io.Writer) error {
	if err := porcupine.Visualize(ResultsLog(), r.Info, w); err != nil {
		return fmt.Errorf("model: visualize %s: %w", r.Workload, err)
	}
	return nil
}

// VisualizePath writes porcupine's HTML view of r to the file at path.
func VisualizePath(r Result, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if err := Visualize(r, f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	return nil
}
