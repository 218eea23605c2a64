package keeper

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/internal/monotime"
)

type fake struct {
	mu    sync.Mutex
	now   monotime.Instant
	sent  []string
	alive bool
}

func (f *fake) signal(g int, sig syscall.Signal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, sig.String()+" "+string(rune('0'+g)))
	return nil
}

func (f *fake) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

func (f *fake) set(now monotime.Instant, alive bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now, f.alive = now, alive
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKeeperFreezesWhenTheLeaseRunsOut: nothing while the lease is
// valid; every group stopped once when it is over; nothing thawed on a
// renewal; the workloads killed once the agent is gone and the lease over.
// TestKeeperEndsWithAnAgentThatNeverWrote: the agent died before writing
// any state (or without ever holding a lease): the keeper exits.
func TestKeeperEndsWithAnAgentThatNeverWrote(t *testing.T) {
	for _, write := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "keeper.json")
		if write {
			if err := Write(path, State{Groups: []int{1}, Agent: 7}); err != nil {
				t.Fatal(err)
			}
		}
		cfg := Config{Path: path, Tick: time.Millisecond, Now: monotime.Now, Agent: 7, Logger: slog.New(slog.DiscardHandler),
			Signal: func(int, syscall.Signal) error { t.Error("signalled a workload"); return nil },
			Alive:  func(int) bool { return false }}
		done := make(chan error, 1)
		go func() { done <- Run(context.Background(), cfg) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("state written %v: the keeper outlived its agent", write)
		}
	}
}

func TestKeeperFreezesWhenTheLeaseRunsOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keeper.json")
	t0 := monotime.Instant(time.Hour)
	f := &fake{now: t0, alive: true}
	cfg := Config{Path: path, Tick: time.Millisecond, Signal: f.signal, Logger: slog.New(slog.DiscardHandler),
		Now:   func() monotime.Instant { f.mu.Lock(); defer f.mu.Unlock(); return f.now },
		Alive: func(int) bool { f.mu.Lock(); defer f.mu.Unlock(); return f.alive }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	defer func() { cancel(); <-done }()

	if err := Write(path, State{ValidUntil: t0.Add(time.Second), Groups: []int{1, 2}, Agent: 99}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if got := f.log(); len(got) != 0 {
		t.Fatalf("signals while the lease is valid: %v", got)
	}
	f.set(t0.Add(2*time.Second), true) // the agent is paused: no renewal
	waitFor(t, "frozen", func() bool { return len(f.log()) == 2 })
	time.Sleep(20 * time.Millisecond)
	if got := f.log(); !slices.Equal(got, []string{"stopped (signal) 1", "stopped (signal) 2"}) {
		t.Fatalf("signals %v, want each group stopped once", got)
	}
	// Renewed: the keeper thaws nothing (the agent does), and re-arms.
	if err := Write(path, State{ValidUntil: t0.Add(5 * time.Second), Groups: []int{1, 2}, Agent: 99}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if got := f.log(); len(got) != 2 {
		t.Fatalf("signals after a renewal %v, want none more", got)
	}
	f.set(t0.Add(6*time.Second), false) // the agent died; the lease is over
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("the keeper did not finish after its agent died")
	}
	if got := f.log(); !slices.Contains(got, "killed 1") || !slices.Contains(got, "killed 2") {
		t.Fatalf("signals %v, want the groups killed", got)
	}
}

// TestKeeperEndsWhenItsStateIsGone: the state file it read is removed
// (its data dir with it) while the agent's PID still answers (another
// process may own it now): the keeper exits rather than keep watching.
func TestKeeperEndsWhenItsStateIsGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keeper.json")
	if err := Write(path, State{ValidUntil: monotime.Now().Add(time.Hour), Groups: []int{1}, Agent: 7}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Path: path, Tick: time.Millisecond, Now: monotime.Now, Agent: 7, Logger: slog.New(slog.DiscardHandler),
		Signal: func(int, syscall.Signal) error { t.Error("signalled a workload"); return nil },
		Alive:  func(int) bool { return true }}
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), cfg) }()
	time.Sleep(20 * time.Millisecond) // it reads the state
	select {
	case <-done:
		t.Fatal("the keeper ended while its state was there")
	default:
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the keeper outlived its state file")
	}
}
