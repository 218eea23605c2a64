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

// ErrUntagged is CheckLinearizable's error for a history it cannot check:
// an incr has no Tag, so its append cannot be found.
var ErrUntagged = errors.New("model: an incr has no tag")

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
	// read, or never applying them, or applying them where every later
	// read had trimmed them.
	Dropped int
	// Trimmed and TrimmedThrough are the furthest trim point any checked
	// read reported: that many of the oldest entries, through that Raft
	// index, were checked only by count and index, not by content.
	Trimmed, TrimmedThrough uint64
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
	r := Result{
		Workload: workload,
		Ok:       res == porcupine.Ok,
		Unknown:  res == porcupine.Unknown,
		Ops:      len(pops),
		Dropped:  dropped,
		Info:     info,
	}
	for _, op := range pops {
		if out, ok := op.Output.(readOut); ok && out.trimmed >= r.Trimmed {
			r.Trimmed, r.TrimmedThrough = out.trimmed, max(r.TrimmedThrough, out.through)
		}
	}
	return r, nil
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
