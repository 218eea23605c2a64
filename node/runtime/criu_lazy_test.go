package runtime

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	rt "runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCRIULazyMove moves the counter with lazy pages into another network
// namespace: the restore answers with the count before its memory has
// all arrived, the memory arrives whole (the ballast's SHA-256 is the
// same), and the old process ends once its memory has been fetched. A
// restore left stopped (a target before its grant) does not run until
// it is resumed.
func TestCRIULazyMove(t *testing.T) {
	for _, stopped := range []bool{false, true} {
		t.Run(map[bool]string{false: "running", true: "stopped"}[stopped], func(t *testing.T) { lazyMove(t, stopped) })
	}
}

func lazyMove(t *testing.T, stopped bool) {
	r := lazyCounter(t, 32)
	c, w, p, first, local, port := r.c, r.w, r.p, r.child, r.local, r.port
	ctx := context.Background()
	criuMustGet(t, local)
	sum := lazySum(t, local)

	dir := t.TempDir()
	dump, err := c.CheckpointLazy(ctx, w, p, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dump.Kill(p) })
	if fi, err := os.Stat(dir + "/pages-1.img"); err != nil || fi.Size() > 8<<20 {
		t.Fatalf("a lazy dump of 32 MiB wrote pages-1.img of %v bytes (%v): the memory should have stayed behind", fi.Size(), err)
	}
	if _, err := criuGet(local + "value"); err == nil {
		t.Fatal("the old process answers while its memory is served: it should be frozen")
	}

	ns := criuNetns(t)
	hostIP, nsIP := criuVethAddrs()
	if err := ns.Veth(hostIP, nsIP, 30); err != nil {
		t.Fatal(err)
	}
	dialed := make(chan struct{}, 1)
	pages := func(ctx context.Context) (io.ReadWriteCloser, error) {
		dialed <- struct{}{}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", dump.Addr)
	}
	var lazy *LazyRestore
	p2, err := inNetns(ns.Path(), func() (*os.Process, error) {
		p, l, err := c.StartLazy(ctx, w, dir, pages, stopped)
		lazy = l
		return p, err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer lazy.Close()
	criuReap(t, p2)
	remote := fmt.Sprintf("http://%s:%d/", nsIP, port)
	if stopped {
		time.Sleep(200 * time.Millisecond)
		if st := procState(t, p2.Pid); st != 'T' {
			t.Fatalf("the restore left stopped is in state %c, want T", st)
		}
		if _, err := (&http.Client{Timeout: 200 * time.Millisecond}).Get(remote + "value"); err == nil {
			t.Fatal("the restore left stopped answers before it is resumed")
		}
		if err := resume(p2); err != nil {
			t.Fatal(err)
		}
	}
	restored := time.Now()
	if n := criuMustGet(t, remote); n != 3 {
		t.Fatalf("the lazily restored counter counted to %d, want 3", n)
	}
	t.Logf("first answer %v after the restore", time.Since(restored))
	for i := range 3 {
		begin := time.Now()
		criuMustGet(t, remote+"value")
		t.Logf("answer %d: %v", i+2, time.Since(begin))
	}
	select {
	case <-dialed:
	default:
		t.Fatal("the restore never asked for the page server")
	}
	select {
	case <-lazy.Done():
		if err := lazy.Err(); err != nil {
			t.Fatalf("the lazy-pages daemon failed: %v (log %s)", err, lazy.log)
		}
	case <-time.After(time.Minute):
		t.Fatal("the memory did not all arrive within a minute")
	}
	if got := lazySum(t, remote); got != sum {
		t.Fatalf("the ballast's SHA-256 is %s after the lazy move, %s before: memory was lost", got, sum)
	}
	select {
	case <-dump.Done():
		if err := dump.Err(); err != nil {
			t.Fatalf("the lazy dump failed after serving: %v (log %s)", err, dump.log)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the lazy dump did not end after its memory was fetched")
	}
	lazy.Close()
	st := lazy.Relayed()
	t.Logf("page relay: %+v", st)
	// The relay fetches the small runs ahead from the start of the
	// restore, which takes them in as present pages (hotpages.go).
	if st.Prefetched == 0 || st.Hot == 0 {
		t.Fatalf("the page relay fetched %d pages ahead and the restore took %d in, want some of each", st.Prefetched, st.Hot)
	}
	first.wait(t)
}

// TestCRIULazyDumpAbort: an abandoned lazy dump leaves the process
// running where it was, with its state.
func TestCRIULazyDumpAbort(t *testing.T) {
	r := lazyCounter(t, 4)
	c, w, p, local := r.c, r.w, r.p, r.local
	t.Cleanup(func() {
		_ = p.Kill()
		r.child.wait(t)
	})
	dump, err := c.CheckpointLazy(context.Background(), w, p, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dump.Abort()
	if n := criuMustGet(t, local); n != 2 {
		t.Fatalf("after the abandoned dump the counter counted to %d, want 2", n)
	}
}

// procState is the state letter of process pid (/proc/pid/stat).
func procState(t *testing.T, pid int) byte {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return b[i+2]
}

// lazyRig is the counter started under CRIU, with its process reaped.
type lazyRig struct {
	c     *CRIU
	w     Workload
	p     *os.Process
	child *criuChild
	port  int
	local string // its URL on loopback
}

// lazyCounter starts the counter with mib MiB of ballast and counts once.
func lazyCounter(t *testing.T, mib int) lazyRig {
	t.Helper()
	r := lazyRig{c: needCRIU(t), port: freePort(t)}
	r.w = criuCounterWorkload(t, criuBuildCounter(t), r.port, mib)
	r.local = fmt.Sprintf("http://127.0.0.1:%d/", r.port)
	var err error
	if r.p, err = r.c.Start(context.Background(), r.w, ""); err != nil {
		t.Fatal(err)
	}
	r.child = criuReap(t, r.p)
	criuWaitAnswer(t, r.local+"value")
	criuMustGet(t, r.local)
	return r
}

// lazySum is the counter's ballast SHA-256.
func lazySum(t *testing.T, base string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(base + "ballast/sum")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("ballast/sum: %d %q %v", resp.StatusCode, b, err)
	}
	return strings.TrimSpace(string(b))
}

// inNetns runs fn on an OS thread that joined the network namespace at
// nsPath (CRIU is forked from that thread); the thread is never unlocked,
// so the Go runtime discards it afterwards.
func inNetns(nsPath string, fn func() (*os.Process, error)) (*os.Process, error) {
	type result struct {
		p   *os.Process
		err error
	}
	done := make(chan result, 1)
	go func() {
		rt.LockOSThread()
		f, err := os.Open(nsPath)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("setns %s: %w", nsPath, err)}
			return
		}
		p, err := fn()
		done <- result{p, err}
	}()
	r := <-done
	return r.p, r.err
}
