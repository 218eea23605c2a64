package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// countScript counts in the workload's log, "count N" a line.
const countScript = `i=0; while :; do i=$((i+1)); echo "count $i"; sleep 0.05; done`

// TestCRIUShellUnderInit: a counting shell under the init goes through a
// periodic (leave-running) checkpoint, then a stopping one (as before a
// move) and a restore; the restored tree
// is rooted at the init, still PID 1 of its namespace, the count goes on
// from the checkpoint's, and the restored init still forwards a stop's
// SIGTERM, so the workload ends at once with the shell's status.
func TestCRIUShellUnderInit(t *testing.T) {
	c := needCRIU(t)
	w := shellWorkload(t, "counting", countScript, needInit(t))
	ctx := context.Background()
	p, err := c.Start(ctx, w, "")
	if err != nil {
		t.Fatal(err)
	}
	first := criuReap(t, p)
	waitUntil(t, 10*time.Second, "the shell never counted to 3", func() bool { return lastCount(t, w) >= 3 })
	if _, err := c.Checkpoint(ctx, w, p, t.TempDir(), true); err != nil {
		t.Fatal(err)
	}
	after := lastCount(t, w)
	waitUntil(t, 10*time.Second, "the shell stopped counting after a leave-running checkpoint", func() bool { return lastCount(t, w) > after })
	dir := t.TempDir()
	if _, err := c.Checkpoint(ctx, w, p, dir, false); err != nil {
		t.Fatal(err)
	}
	first.wait(t)
	dumped := lastCount(t, w)

	p2, err := c.Start(ctx, w, dir)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the restored shell never counted on", func() bool { return lastCount(t, w) > dumped+2 })
	if next := countAfter(t, w, dumped); next != dumped+1 {
		t.Fatalf("after the checkpoint's count %d the restored shell printed %d: it did not go on from the checkpoint", dumped, next)
	}
	if cmd := procCmdline(t, p2.Pid); !strings.HasSuffix(cmd[0], "lifeboat-init") {
		t.Errorf("the restored tree's root runs %q, not the init", cmd)
	}
	if ns := nsPID(t, p2.Pid); ns != 1 {
		t.Errorf("the restored init is PID %d of its namespace, not 1", ns)
	}
	code := stopByTERM(t, p2, 10*time.Second)
	if code != 128+int(syscall.SIGTERM) {
		t.Errorf("the restored workload exited %d, want %d (its shell ended by the forwarded SIGTERM)", code, 128+int(syscall.SIGTERM))
	}
}

// stopByTERM sends p SIGTERM and waits for it for at most grace (the
// supervisor's default StopTimeout): it fails the test, killing p, if p
// is still running then. It returns p's exit status.
func stopByTERM(t *testing.T, p *os.Process, grace time.Duration) int {
	t.Helper()
	done := make(chan *os.ProcessState, 1)
	go func() { // ends when p is reaped; the kill below ensures it is
		st, _ := p.Wait()
		done <- st
	}()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-done:
		return st.ExitCode()
	case <-time.After(grace):
		_ = p.Kill()
		<-done
		t.Fatalf("still running when the %v grace ended: the SIGTERM was not forwarded", grace)
		return -1
	}
}

// counts are the numbers of w's "count N" lines, in order.
func counts(t *testing.T, w Workload) []int {
	t.Helper()
	b, err := os.ReadFile(w.LogPath())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []int
	for _, l := range strings.Split(string(b), "\n") {
		if n, err := strconv.Atoi(strings.TrimPrefix(l, "count ")); err == nil && strings.HasPrefix(l, "count ") {
			out = append(out, n)
		}
	}
	return out
}

// lastCount is w's last count, 0 before the first.
func lastCount(t *testing.T, w Workload) int {
	cs := counts(t, w)
	if len(cs) == 0 {
		return 0
	}
	return cs[len(cs)-1]
}

// countAfter is the count w printed after its count n (whose line is the
// last one at the checkpoint), -1 if none.
func countAfter(t *testing.T, w Workload, n int) int {
	cs := counts(t, w)
	for i, c := range cs {
		if c == n && i+1 < len(cs) {
			return cs[i+1]
		}
	}
	return -1
}

// procCmdline is pid's command line.
func procCmdline(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// nsPID is pid's PID in its own (innermost) PID namespace.
func nsPID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "NSpid:" {
			n, _ := strconv.Atoi(f[len(f)-1])
			return n
		}
	}
	t.Fatalf("/proc/%d/status has no NSpid", pid)
	return 0
}
