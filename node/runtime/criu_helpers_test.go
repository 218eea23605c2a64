package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// criuSkipOrFail skips a test whose prerequisite is missing, except under
// CI=true, where a missing prerequisite is a failure: CI must run it.
func criuSkipOrFail(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true and "+format, args...)
	}
	tb.Skipf(format, args...)
}

// criuTestLogWriter routes a logger into tb.Log.
type criuTestLogWriter struct{ tb testing.TB }

func (w criuTestLogWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// needCRIU returns a CRIU checkpointer with the default settings, or skips
// (fails under CI) when this host cannot run one.
func needCRIU(tb testing.TB) *CRIU {
	tb.Helper()
	if os.Geteuid() != 0 {
		criuSkipOrFail(tb, "CRIU tests need root")
	}
	cfg := DefaultCRIUConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(criuTestLogWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := NewCRIU(cfg)
	if errors.Is(err, ErrUnsupported) {
		criuSkipOrFail(tb, "no usable CRIU (deploy/criu/install.sh installs it): %v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// criuBuildCounter is the counter TestMain built: static (CGO_ENABLED=0)
// as a workload that moves between hosts should be (CRIU checks every
// mapped file, so a dynamic one needs the same libc there), and in place
// for the whole run, as restores of its checkpoints need.
func criuBuildCounter(tb testing.TB) string { return counterBin }

// criuCounterWorkload is the counter with ballastMiB of memory in a fresh
// workload directory.
func criuCounterWorkload(tb testing.TB, bin string, port, ballastMiB int) Workload {
	return Workload{
		Spec: fsm.WorkloadSpec{
			ID:      "counter",
			Command: []string{bin, "--port", strconv.Itoa(port), "--ballast-mib", strconv.Itoa(ballastMiB)},
		},
		Epoch: 7,
		Dir:   tb.TempDir(),
	}
}

// criuHoldingLog makes w's process also hold its log open read-write on fd 3
// (not O_APPEND). CRIU records the size of such a file and refuses to
// restore it at any other size: the case the log fix-up exists for.
func criuHoldingLog(w Workload) Workload {
	script := `exec "$0" "$@" 3<>"$HOME/output.log"`
	w.Spec.Command = append([]string{"/bin/sh", "-c", script}, w.Spec.Command...)
	return w
}

// criuChild is a workload process this test reaps.
type criuChild struct {
	p    *os.Process
	done chan struct{} // closed once reaped
}

// criuReap waits for p in the background; cleanup kills it if still there.
func criuReap(tb testing.TB, p *os.Process) *criuChild {
	c := &criuChild{p: p, done: make(chan struct{})}
	go func() {
		_, _ = p.Wait()
		close(c.done)
	}()
	tb.Cleanup(func() { c.kill(tb) })
	return c
}

// kill kills the process (and with it its PID namespace) and waits for it.
func (c *criuChild) kill(tb testing.TB) {
	_ = c.p.Signal(syscall.SIGKILL)
	c.wait(tb)
}

// wait waits for the process to have been reaped.
func (c *criuChild) wait(tb testing.TB) {
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		tb.Errorf("pid %d did not exit", c.p.Pid)
	}
}

var criuHTTP = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// criuGet fetches url and returns its body as a number.
func criuGet(url string) (uint64, error) {
	resp, err := criuHTTP.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// criuMustGet is criuGet that fails the test.
func criuMustGet(tb testing.TB, url string) uint64 {
	tb.Helper()
	n, err := criuGet(url)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// criuWaitAnswer polls url until it answers (readiness, not a sleep).
func criuWaitAnswer(tb testing.TB, url string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, err := criuGet(url)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("%s never answered: %v", url, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// criuListDir lists the names and sizes in dir.
func criuListDir(tb testing.TB, dir string) map[string]int64 {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]int64{}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			tb.Fatal(err)
		}
		out[e.Name()] = info.Size()
	}
	return out
}

// criuSpecID is a spec with only an id.
func criuSpecID(id string) fsm.WorkloadSpec { return fsm.WorkloadSpec{ID: id} }
