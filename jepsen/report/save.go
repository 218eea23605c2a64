package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/checker"
	"github.com/lifeboat/lifeboat/jepsen/history"
	"github.com/lifeboat/lifeboat/jepsen/model"
)

// Artifact file names in a saved run's directory.
const (
	HistoryFile  = "history.json"
	VerdictsFile = "verdicts.json"
	SummaryFile  = "summary.md"
	// VisualizationPrefix starts the name of the porcupine view of each
	// workload that failed its linearizability check:
	// "linearizable-WORKLOAD.html".
	VisualizationPrefix = "linearizable-"
)

// ErrRunName: the run name is not usable as a directory name.
var ErrRunName = errors.New("report: the run name must be a non-empty name without path separators")

// SaveFailure writes a run's artifacts into dir/runName and returns that
// directory: the history (history.json), the verdicts (verdicts.json), a
// summary of the run (summary.md), and porcupine's HTML view of every
// workload whose linearizability check did not pass, from the verdicts'
// Results. h may be nil when only verdicts are left.
func SaveFailure(dir, runName string, h *history.History, verdicts []checker.Verdict) (string, error) {
	if runName == "" || runName == "." || runName == ".." || strings.ContainsAny(runName, `/\`) {
		return "", fmt.Errorf("%w: %q", ErrRunName, runName)
	}
	out := filepath.Join(dir, runName)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	if h != nil {
		if err := h.Save(filepath.Join(out, HistoryFile)); err != nil {
			return "", fmt.Errorf("report: save history: %w", err)
		}
	}
	if err := saveJSON(filepath.Join(out, VerdictsFile), verdicts); err != nil {
		return "", err
	}
	if err := saveSummary(filepath.Join(out, SummaryFile), h, verdicts); err != nil {
		return "", err
	}
	for _, v := range verdicts {
		for _, r := range v.Results {
			if r.Ok {
				continue
			}
			path := filepath.Join(out, VisualizationPrefix+fileSafe(r.Workload)+".html")
			if err := model.VisualizePath(r, path); err != nil {
				return "", fmt.Errorf("report: %w", err)
			}
		}
	}
	return out, nil
}

func saveJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// saveSummary writes the run's one-run summary; its duration is up to
// the last op's completion.
func saveSummary(path string, h *history.History, verdicts []checker.Verdict) error {
	var s Summary
	var ops []history.Op
	var faults []history.Fault
	if h != nil {
		ops, faults = h.Snapshot()
	}
	var d time.Duration
	for _, op := range ops {
		d = max(d, op.Complete)
	}
	s.Add(ops, faults, verdicts, d)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := s.Write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// fileSafe replaces what a file name should not hold.
func fileSafe(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r < ' ' {
			return '_'
		}
		return r
	}, s)
}
