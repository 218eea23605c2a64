package runtime

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkCRIUDumpRestore moves the counter through a stopping dump and a
// restore on one host, b.N times, at 1, 64 and 512 MiB of ballast: through
// this checkpointer (go-criu, swrk) and, as the baseline, through the
// plain criu CLI with the same binary and options. It reports ms/dump,
// ms/restore and ms/freeze (the gap between the last answer before the
// dump and the first after the restore, seen by a client polling GETs).
// Run with a small -benchtime, e.g. -benchtime=5x.
func BenchmarkCRIUDumpRestore(b *testing.B) {
	c := needCRIU(b)
	bin := criuBuildCounter(b)
	for _, mib := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("%dMiB/lifeboat", mib), func(b *testing.B) {
			benchMove(b, c, bin, mib, criuSwrkMover{c})
		})
		b.Run(fmt.Sprintf("%dMiB/criu-cli", mib), func(b *testing.B) {
			benchMove(b, c, bin, mib, criuCLIMover{path: c.cfg.Path})
		})
	}
}

// criuMover takes a stopping dump of p into dir and restores it from
// there; the restored process must be a child of this one.
type criuMover interface {
	dump(w Workload, p *os.Process, dir string) error
	restore(w Workload, dir string) (*os.Process, error)
}

// benchMove runs the counter and moves it b.N times.
func benchMove(b *testing.B, c *CRIU, bin string, mib int, m criuMover) {
	port := freePort(b)
	w := criuCounterWorkload(b, bin, port, mib)
	url := fmt.Sprintf("http://127.0.0.1:%d/value", port)
	p, err := c.Start(context.Background(), w, "")
	if err != nil {
		b.Fatal(err)
	}
	cur := criuReap(b, p)
	criuWaitAnswer(b, url)
	var dumps, restores, freezes []time.Duration
	b.ResetTimer()
	for range b.N {
		dir, err := os.MkdirTemp("", "lifeboat-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) }) // also when an iteration fails
		poll := startPoller(url)
		t0 := time.Now()
		if err := m.dump(w, cur.p, dir); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		cur.wait(b)
		p, err := m.restore(w, dir)
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		cur = criuReap(b, p)
		freezes = append(freezes, poll.gapAfter(b, t2))
		dumps, restores = append(dumps, t1.Sub(t0)), append(restores, t2.Sub(t1))
		os.RemoveAll(dir)
	}
	b.StopTimer()
	b.ReportMetric(medianMS(dumps), "ms/dump")
	b.ReportMetric(medianMS(restores), "ms/restore")
	b.ReportMetric(medianMS(freezes), "ms/freeze")
}

// medianMS is the median of ds in milliseconds: the machines are shared
// and noisy, so benchmarks quote medians, not means.
func medianMS(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return float64(m.Microseconds()) / 1000
}

// poller GETs a URL back to back and notes when answers arrive.
type poller struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex  // guards answers
	ans  []time.Time // when each successful answer arrived
}

func startPoller(url string) *poller {
	p := &poller{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			if _, err := criuGet(url); err == nil {
				p.mu.Lock()
				p.ans = append(p.ans, time.Now())
				p.mu.Unlock()
				continue
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return p
}

// gapAfter waits for an answer after t, stops polling and returns the
// longest gap between answers: the freeze the client saw.
func (p *poller) gapAfter(tb testing.TB, t time.Time) time.Duration {
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.mu.Lock()
		n := len(p.ans)
		last := time.Time{}
		if n > 0 {
			last = p.ans[n-1]
		}
		p.mu.Unlock()
		if last.After(t) {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatal("no answer after the restore")
		}
		time.Sleep(time.Millisecond)
	}
	close(p.stop)
	<-p.done
	var gap time.Duration
	for i := 1; i < len(p.ans); i++ {
		gap = max(gap, p.ans[i].Sub(p.ans[i-1]))
	}
	return gap
}

// criuSwrkMover moves through the checkpointer itself.
type criuSwrkMover struct{ c *CRIU }

func (m criuSwrkMover) dump(w Workload, p *os.Process, dir string) error {
	_, err := m.c.Checkpoint(context.Background(), w, p, dir, false)
	return err
}

func (m criuSwrkMover) restore(w Workload, dir string) (*os.Process, error) {
	return m.c.Start(context.Background(), w, dir)
}

// criuCLIMover is the baseline: the criu command line, same binary, same
// options (--tcp-close, --skip-in-flight, nftables lock, -v4), restore detached (-d) as a
// sibling (-S) so that the restored process is our child to reap.
type criuCLIMover struct{ path string }

func (m criuCLIMover) dump(w Workload, p *os.Process, dir string) error {
	return m.run(dir, "dump", "-t", strconv.Itoa(p.Pid), "-D", dir, "-o", "dump.log", "-v4",
		"--tcp-close", "--skip-in-flight", "--network-lock", "nftables")
}

func (m criuCLIMover) restore(w Workload, dir string) (*os.Process, error) {
	pidfile := filepath.Join(dir, "restored.pid")
	err := m.run(dir, "restore", "-D", dir, "-d", "-S", "-o", "restore.log", "-v4",
		"--tcp-close", "--network-lock", "nftables", "--pidfile", pidfile)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return nil, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, err
	}
	if ppid := criuParentPID(pid); ppid != os.Getpid() {
		return nil, fmt.Errorf("the restored pid %d is a child of %d, not of this process", pid, ppid)
	}
	return os.FindProcess(pid)
}

// criuParentPID is pid's parent, from /proc (0 if unknown).
func criuParentPID(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid …; comm may hold spaces, so cut at the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func (m criuCLIMover) run(dir string, args ...string) error {
	out, err := exec.Command(m.path, args...).CombinedOutput()
	if err != nil {
		log := filepath.Join(dir, args[0]+".log")
		return fmt.Errorf("criu %s: %v: %s (first real error: %s)", args[0], err, out, criuLogError(log))
	}
	return nil
}
