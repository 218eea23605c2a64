package runtime

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/transfer"
)

// fakeLazy is a lazy checkpointer whose restores start the counter fresh
// (stopped when asked) with a short sleep standing in for the lazy-pages
// daemon (its clean exit: the memory is all in).
type fakeLazy struct {
	mu      sync.Mutex
	stopped []bool // each StartLazy's stopped, in order
	plain   int    // Start calls
}

func (f *fakeLazy) Mode() string    { return fsm.ModeCRIU }
func (f *fakeLazy) LazyPages() bool { return true }

func (f *fakeLazy) Start(_ context.Context, w Workload, _ string) (*os.Process, error) {
	f.mu.Lock()
	f.plain++
	f.mu.Unlock()
	return startGroup(w.Spec.Command...)
}

func (f *fakeLazy) Checkpoint(context.Context, Workload, *os.Process, string, bool) (Stats, error) {
	return Stats{}, ErrCheckpoint
}

func (f *fakeLazy) CheckpointLazy(context.Context, Workload, *os.Process, string) (*LazyDump, error) {
	return nil, ErrCheckpoint
}

func (f *fakeLazy) StartLazy(_ context.Context, w Workload, _ string, _ PageDialer, stopped bool) (*os.Process, *LazyRestore, error) {
	f.mu.Lock()
	f.stopped = append(f.stopped, stopped)
	f.mu.Unlock()
	p, err := startGroup(w.Spec.Command...)
	if err != nil {
		return nil, nil, err
	}
	if stopped {
		// CRIU's leave_stopped returns with the process stopped; a
		// SIGSTOP takes effect only once the process is scheduled, so
		// wait (bounded) until it shows so.
		_ = syscall.Kill(p.Pid, syscall.SIGSTOP)
		waitStopped(p.Pid, 5*time.Second)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	daemon := exec.Command("sleep", "2")
	if err := daemon.Start(); err != nil {
		ln.Close()
		return nil, nil, err
	}
	r := &LazyRestore{ln: ln}
	r.cmd, r.done = daemon, make(chan struct{})
	go func() {
		r.err = daemon.Wait()
		close(r.done)
	}()
	return p, r, nil
}

func (f *fakeLazy) calls() ([]bool, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.stopped), f.plain
}

// waitStopped waits until process pid is in state T (stopped), or for at
// most d.
func waitStopped(pid int, d time.Duration) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			return
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
	}
}

// startGroup starts argv in a process group of its own.
func startGroup(argv ...string) (*os.Process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd.Process, nil
}

// prestartRig is a supervisor over fakeLazy with a lazy checkpoint of
// the counter sealed in its store.
type prestartRig struct {
	s    *Supervisor
	f    *fakeLazy
	spec fsm.WorkloadSpec
	rec  fsm.CheckpointRecord
	port int
}

func newPrestartRig(t *testing.T, ttl time.Duration) prestartRig {
	t.Helper()
	cfg := DefaultConfig(t.TempDir())
	cfg.Store = testStore(t, cfg.DataDir)
	cfg.RestartMin, cfg.StopTimeout, cfg.PrestartTTL = 50*time.Millisecond, 2*time.Second, ttl
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	r := prestartRig{f: &fakeLazy{}, port: freePort(t)}
	s, err := New(cfg, newFakeCluster(), r.f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r.s = s
	r.spec = counterSpec(fsm.ModeCRIU, r.port)
	st, err := s.store.Stage(r.spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st.Dir, "core.img"), []byte("images"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := s.store.Seal(st, transfer.Info{Workload: r.spec.ID, Seq: 5, Mode: fsm.ModeCRIU, CreatedAt: time.Now(), Volatile: true})
	if err != nil {
		t.Fatal(err)
	}
	r.rec = fsm.CheckpointRecord{Seq: 5, Digest: c.Digest, LazyFrom: "old-holder"}
	return r
}

// prestarted waits for the prestart's stopped process and returns it.
func (r prestartRig) prestarted(t *testing.T) int {
	t.Helper()
	r.s.PrestartLazy(r.spec, r.rec)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if pids := r.s.PIDs(); len(pids) == 1 {
			if st := procState(t, pids[0]); st != 'T' {
				t.Fatalf("the process restored ahead of its grant is in state %c, want T (stopped)", st)
			}
			return pids[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the prestart never showed its process among the supervisor's PIDs")
	return 0
}

// gone waits until process pid has ended and been reaped.
func gone(t *testing.T, pid int, why string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); os.IsNotExist(err) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d still exists: %s", pid, why)
}

// TestPrestartClaimedByTheGrant: a lazy checkpoint restored ahead of its
// grant stays stopped, and the grant's start resumes that very process
// instead of restoring again.
func TestPrestartClaimedByTheGrant(t *testing.T) {
	r := newPrestartRig(t, time.Minute)
	pid := r.prestarted(t)
	r.s.Sync([]Desired{{Spec: r.spec, Epoch: 9, From: &r.rec}})
	if n := hit(t, r.port, "/"); n != 1 {
		t.Fatalf("the resumed counter counted to %d, want 1", n)
	}
	if got := r.s.PID(r.spec.ID); got != pid {
		t.Fatalf("the workload runs as pid %d, want the prestarted %d", got, pid)
	}
	if st := procState(t, pid); st == 'T' {
		t.Fatal("the claimed process is still stopped")
	}
	if stopped, plain := r.f.calls(); !slices.Equal(stopped, []bool{true}) || plain != 0 {
		t.Fatalf("StartLazy calls %v and %d plain starts, want one stopped restore and nothing else", stopped, plain)
	}
}

// TestPrestartDroppedByAnotherStart: a start from anything but the
// prestarted checkpoint kills the stopped process first (it may hold the
// service's port), and no grant's start can claim a prestart that the
// TTL ended.
func TestPrestartDroppedByAnotherStart(t *testing.T) {
	t.Run("another start", func(t *testing.T) {
		r := newPrestartRig(t, time.Minute)
		pid := r.prestarted(t)
		r.s.Sync([]Desired{{Spec: r.spec, Epoch: 9}}) // fresh
		gone(t, pid, "a fresh start must kill the prestart")
		if n := hit(t, r.port, "/"); n != 1 {
			t.Fatalf("the fresh counter counted to %d, want 1", n)
		}
		if _, plain := r.f.calls(); plain != 1 {
			t.Fatalf("%d plain starts, want 1", plain)
		}
	})
	t.Run("ttl", func(t *testing.T) {
		r := newPrestartRig(t, 200*time.Millisecond)
		pid := r.prestarted(t)
		gone(t, pid, "an unclaimed prestart must end after PrestartTTL")
		if pids := r.s.PIDs(); len(pids) != 0 {
			t.Fatalf("PIDs %v after the prestart ended", pids)
		}
	})
}
