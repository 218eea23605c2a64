package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/transfer"
)

// counterBin is examples/counter, built once for the package's tests.
var counterBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lifeboat-counter-")
	if err != nil {
		panic(err)
	}
	counterBin = filepath.Join(dir, "counter")
	build := exec.Command("go", "build", "-o", counterBin, "../../examples/counter")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building examples/counter:", err)
		os.Exit(1)
	}
	initBin, initBuildErr = buildInit(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fakeCluster records what the supervisor tells the cluster.
type fakeCluster struct {
	mu      sync.Mutex
	reports []string // "state: message"
	// failReports refuses that many reports (unavailable) first.
	failReports int
	records     map[string][]fsm.CheckpointRecord
	// pages, if set, connects to page servers; dials counts its calls.
	pages func() (io.ReadWriteCloser, error)
	dials int
}

func newFakeCluster() *fakeCluster { return &fakeCluster{records: map[string][]fsm.CheckpointRecord{}} }

func (f *fakeCluster) Report(_ context.Context, id string, epoch uint64, st fsm.WorkloadState, msg string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failReports > 0 {
		f.failReports--
		return errors.New("no leader")
	}
	f.reports = append(f.reports, string(st)+": "+msg)
	return nil
}

func (f *fakeCluster) NextSeq(id string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return uint64(len(f.records[id]) + 1)
}

func (f *fakeCluster) Commit(_ context.Context, id string, epoch uint64, c *transfer.Checkpoint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records[id] = append(f.records[id], fsm.CheckpointRecord{Seq: c.Manifest.Seq, Epoch: epoch, Digest: c.Digest, Bytes: c.Manifest.Bytes()})
	return nil
}

func (f *fakeCluster) Committed(id string) []fsm.CheckpointRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fsm.CheckpointRecord(nil), f.records[id]...)
}

func (f *fakeCluster) Fetch(_ context.Context, id string, rec fsm.CheckpointRecord) error {
	return fmt.Errorf("fake cluster: no peer to fetch %s#%d from", id, rec.Seq)
}

func (f *fakeCluster) Pages(_ context.Context, from, id string, seq uint64) (io.ReadWriteCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pages == nil {
		return nil, fmt.Errorf("fake cluster: no page server of %s#%d on %s", id, seq, from)
	}
	f.dials++
	return f.pages()
}

func (f *fakeCluster) pageDials() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dials
}

// waitReport waits until the latest report starts with prefix.
func (f *fakeCluster) waitReport(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		n := len(f.reports)
		last := ""
		if n > 0 {
			last = f.reports[n-1]
		}
		f.mu.Unlock()
		if strings.HasPrefix(last, prefix) {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t.Fatalf("no report %q; reports: %q", prefix, f.reports)
	return ""
}

// testStore opens a checkpoint store in dataDir/checkpoints that keeps
// two checkpoints per workload.
func testStore(tb testing.TB, dataDir string) *transfer.Store {
	tb.Helper()
	st, err := transfer.OpenStore(filepath.Join(dataDir, "checkpoints"), 2)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func newTestSupervisor(t *testing.T, fc Cluster) *Supervisor {
	t.Helper()
	cfg := DefaultConfig(t.TempDir())
	cfg.Store = testStore(t, cfg.DataDir)
	cfg.RestartMin, cfg.StopTimeout = 50*time.Millisecond, 2*time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := New(cfg, fc, NewApp(), None{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func counterSpec(mode string, port int) fsm.WorkloadSpec {
	return fsm.WorkloadSpec{ID: "counter", Command: []string{counterBin, "--port", strconv.Itoa(port)},
		Checkpoint: fsm.CheckpointPolicy{Mode: mode}, Service: &fsm.Service{Port: port}}
}

// hit GETs path on the counter until it answers (it may be restarting).
func hit(t *testing.T, port int, path string) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + path)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			n, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err == nil {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter on %d does not answer %s: %v", port, path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAppModeCheckpointCrashRestore: in app mode the supervisor calls the
// hook, seals and commits the checkpoint; after a crash it restores from
// the latest committed checkpoint, so the count continues; a restart
// --from-checkpoint goes back to it; a fresh restart starts at zero.
func TestAppModeCheckpointCrashRestore(t *testing.T) {
	fc := newFakeCluster()
	s := newTestSupervisor(t, fc)
	port := freePort(t)
	s.Sync([]Desired{{Spec: counterSpec(fsm.ModeApp, port), Epoch: 7}})
	fc.waitReport(t, "running: started")
	for i := 1; i <= 3; i++ {
		if got := hit(t, port, "/"); got != i {
			t.Fatalf("GET / = %d, want %d", got, i)
		}
	}
	res, err := s.Checkpoint(context.Background(), "counter")
	if err != nil {
		t.Fatal(err)
	}
	if res.Seq != 1 || res.Bytes == 0 || len(fc.Committed("counter")) != 1 {
		t.Fatalf("checkpoint result %+v, committed %v", res, fc.Committed("counter"))
	}
	hit(t, port, "/") // 4: after the checkpoint, lost by the crash

	u, _ := s.unit("counter")
	killWorkload(t, u)
	fc.waitReport(t, "running: restored from checkpoint #1")
	if got := hit(t, port, "/"); got != 4 {
		t.Fatalf("after crash and restore GET / = %d, want 4 (3 checkpointed + 1)", got)
	}
	if _, err := s.Restart(context.Background(), "counter", true); err != nil {
		t.Fatal(err)
	}
	if got := hit(t, port, "/"); got != 4 {
		t.Fatalf("after restart --from-checkpoint GET / = %d, want 4", got)
	}
	if _, err := s.Restart(context.Background(), "counter", false); err != nil {
		t.Fatal(err)
	}
	if got := hit(t, port, "/"); got != 1 {
		t.Fatalf("after a fresh restart GET / = %d, want 1", got)
	}
	s.Sync(nil)
	waitGone(t, port)
}

// killWorkload SIGKILLs the workload's process as a crash would.
func killWorkload(t *testing.T, u *unit) {
	t.Helper()
	pid := u.pid()
	if pid == 0 {
		t.Fatal("the workload has no process")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

func waitGone(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp4", "127.0.0.1:"+strconv.Itoa(port), 100*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("workload on %d still answers after removal", port)
}

// freePort returns a TCP port nothing listens on right now.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
