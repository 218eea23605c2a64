// Package keeper is the fence that survives its agent. The agent's own
// fence (fenceLoop) freezes the workloads when the node's lease runs out —
// unless the agent itself is stopped (a long GC pause, SIGSTOP, a hung
// disk), in which case nothing freezes them and the leader re-grants them
// elsewhere while they still serve. The keeper is a separate process the
// agent starts: the agent writes the lease's end and its workloads'
// process groups into a state file; the keeper reads it every Tick and
// SIGSTOPs those groups when the lease's end passes without a renewal.
// It never thaws: the agent does, once it is back and has learnt what is
// still granted to it. When the agent is gone for good and the lease is
// over, the keeper kills the workloads (no agent will adopt them) and
// exits.
package keeper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/lifeboat/lifeboat/internal/monotime"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// State is what the agent tells the keeper.
type State struct {
	// ValidUntil is the end of the node's lease as the agent sees it
	// (send time of the last acknowledged renewal + TTL·(1−ρ)), on the
	// host's boot-time clock (internal/monotime), which the agent and the
	// keeper read alike and no wall-clock step moves; zero: the node
	// never held a lease, nothing to fence.
	ValidUntil monotime.Instant `json:"valid_until_boottime_ns"`
	// Groups are the process groups of the workloads the agent runs.
	Groups []int `json:"groups"`
	// Agent is the agent's PID: when it is gone, the keeper finishes.
	Agent int `json:"agent"`
}

// Write replaces the state file atomically.
func Write(path string, s State) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keeper-*")
	if err != nil {
		return fmt.Errorf("keeper state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("keeper state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keeper state: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}

// Read parses the state file.
func Read(path string) (State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return State{}, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("keeper state %s: %w", path, err)
	}
	return s, nil
}

// Config configures Run.
type Config struct {
	Path   string
	Tick   time.Duration
	Now    func() monotime.Instant // the boot-time clock
	Signal func(pgid int, sig syscall.Signal) error
	// Alive reports whether the agent still runs.
	Alive func(pid int) bool
	// Agent is the agent's PID until the state file names it (the
	// keeper's parent): a keeper whose agent died before writing any
	// state must not wait forever.
	Agent  int
	Logger *slog.Logger
}

// DefaultConfig watches path every 25 ms with the boot-time clock and
// real signals.
func DefaultConfig(path string) Config {
	return Config{Path: path, Tick: 25 * time.Millisecond, Now: monotime.Now,
		Signal: func(pgid int, sig syscall.Signal) error { return syscall.Kill(-pgid, sig) },
		Alive:  func(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil },
		Agent:  os.Getppid(), Logger: slog.Default()}
}

// unreadable reports whether a keeper whose state file could not be read
// should end: when the agent is gone and left nothing to fence, or when
// the file it read once is gone (its data dir removed with its host, or
// a test's): nothing is left to say what to fence, and the agent's PID
// may since belong to another process.
func unreadable(cfg Config, err error, seen bool) bool {
	switch {
	case cfg.Agent > 0 && !cfg.Alive(cfg.Agent):
		return true
	case seen && errors.Is(err, os.ErrNotExist):
		cfg.Logger.Warn("keeper: the state file is gone; exiting", "path", cfg.Path)
		return true
	case !errors.Is(err, os.ErrNotExist):
		cfg.Logger.Warn("keeper: unreadable state", "err", err)
	}
	return false
}

// Run keeps the fence until ctx ends or the agent is gone and its
// workloads are dealt with.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Path == "" || cfg.Tick <= 0 || cfg.Now == nil || cfg.Signal == nil || cfg.Alive == nil || cfg.Logger == nil {
		return errors.New("keeper: incomplete config")
	}
	t := time.NewTicker(cfg.Tick)
	defer t.Stop()
	var frozen map[int]bool
	seen := false // the state file was read once
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s, err := Read(cfg.Path)
		if err != nil {
			if unreadable(cfg, err, seen) {
				return nil
			}
			continue // not written yet
		}
		seen = true
		if s.Agent > 0 {
			cfg.Agent = s.Agent
		}
		expired := !s.ValidUntil.IsZero() && cfg.Now().After(s.ValidUntil)
		switch {
		case !expired:
			frozen = nil // renewed: the agent is back and thaws what it keeps
		case frozen == nil:
			frozen = map[int]bool{}
			for _, g := range s.Groups {
				if err := cfg.Signal(g, syscall.SIGSTOP); err == nil {
					frozen[g] = true
				}
			}
			cfg.Logger.Warn("keeper: lease over and not renewed: workloads frozen", "valid_until", s.ValidUntil, "groups", s.Groups)
		default:
			for _, g := range s.Groups { // a group started since (it should not be)
				if !frozen[g] && cfg.Signal(g, syscall.SIGSTOP) == nil {
					frozen[g] = true
				}
			}
		}
		if cfg.Agent > 0 && !cfg.Alive(cfg.Agent) {
			if s.ValidUntil.IsZero() {
				return nil // it never held a lease: nothing runs under one
			}
			if !expired {
				continue // a renewal may still be valid: wait for its end
			}
			for _, g := range s.Groups {
				_ = cfg.Signal(g, syscall.SIGKILL)
			}
			cfg.Logger.Warn("keeper: the agent is gone and the lease over: workloads killed", "groups", s.Groups)
			return nil
		}
	}
}
