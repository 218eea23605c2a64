package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lifeboat/lifeboat/internal/netns"
)

// TestCRIUCheckpointRestore: a leave-running checkpoint, more work, the
// process killed, a restore that goes on from the checkpoint's count
// although the log grew meanwhile, and a final stopping checkpoint.
func TestCRIUCheckpointRestore(t *testing.T) {
	c := needCRIU(t)
	ctx := context.Background()
	port := freePort(t)
	w := criuHoldingLog(criuCounterWorkload(t, criuBuildCounter(t), port, 64))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	p, err := c.Start(ctx, w, "")
	if err != nil {
		t.Fatal(err)
	}
	first := criuReap(t, p)
	criuWaitAnswer(t, url+"value")
	for range 3 {
		criuMustGet(t, url)
	}
	dir := t.TempDir()
	st, err := c.Checkpoint(ctx, w, p, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if st.Freeze <= 0 || st.Duration < st.Freeze {
		t.Errorf("stats %+v: want 0 < Freeze <= Duration", st)
	}
	if n := criuMustGet(t, url); n != 4 {
		t.Fatalf("after the leave-running checkpoint the count is %d, want 4", n)
	}
	first.kill(t)
	recorded := criuRecordedLogSize(t, dir, w)
	criuAppendLog(t, w, "written after the checkpoint\n")
	if st, err := os.Stat(w.LogPath()); err != nil || st.Size() == recorded {
		t.Fatalf("the log is still at its recorded size (%v): CRIU would not need the fix-up", err)
	}

	images := criuListDir(t, dir)
	p2, err := c.Start(ctx, w, dir)
	if err != nil {
		t.Fatal(err)
	}
	second := criuReap(t, p2)
	if n := criuMustGet(t, url+"value"); n != 3 {
		t.Fatalf("the restored count is %d, want the checkpoint's 3", n)
	}
	if n := criuMustGet(t, url); n != 4 {
		t.Fatalf("the restored counter counted to %d, want 4", n)
	}
	criuCheckLogCut(t, w, recorded, "written after the checkpoint\n")
	if after := criuListDir(t, dir); fmt.Sprint(after) != fmt.Sprint(images) {
		t.Errorf("the restore changed the images dir:\nbefore %v\nafter  %v", images, after)
	}

	final := t.TempDir()
	if st, err = c.Checkpoint(ctx, w, p2, final, false); err != nil {
		t.Fatal(err)
	}
	second.wait(t)
	if _, err := criuGet(url + "value"); err == nil {
		t.Error("the counter still answers after the stopping checkpoint")
	}
	t.Logf("final checkpoint: %+v", st)
}

// criuRecordedLogSize is the size the checkpoint in dir recorded for w's log.
func criuRecordedLogSize(t *testing.T, dir string, w Workload) int64 {
	t.Helper()
	files, err := imageRegFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path == w.LogPath() && f.Size >= 0 {
			return f.Size
		}
	}
	t.Fatalf("the checkpoint records no size for %s: %+v", w.LogPath(), files)
	return 0
}

// criuAppendLog writes s at the end of w's log, as the workload would.
func criuAppendLog(t *testing.T, w Workload, s string) {
	t.Helper()
	f, err := os.OpenFile(w.LogPath(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// criuCheckLogCut checks that the log is back at the recorded size and that
// the output written after the checkpoint was kept in output.log.<time>.
func criuCheckLogCut(t *testing.T, w Workload, recorded int64, tail string) {
	t.Helper()
	kept, _ := filepath.Glob(w.LogPath() + ".*")
	if len(kept) != 1 {
		t.Fatalf("want one kept log beside %s, have %v", w.LogPath(), kept)
	}
	old, err := os.ReadFile(kept[0])
	if err != nil {
		t.Fatal(err)
	}
	cur, err := os.ReadFile(w.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(old), tail) || !bytes.HasPrefix(old, cur[:recorded]) {
		t.Errorf("kept log %q does not hold the whole old log (%q…)", old, cur[:recorded])
	}
	if bytes.Contains(cur, []byte(tail)) {
		t.Errorf("the restored log still holds the output written after the checkpoint: %q", cur)
	}
}

// TestCRIURestoreOtherNetns restores a checkpoint into another network
// namespace, a second "host" without the workload's log, and reaches the
// counter at that host's address with its count.
func TestCRIURestoreOtherNetns(t *testing.T) {
	c := needCRIU(t)
	ctx := context.Background()
	port := freePort(t)
	w := criuHoldingLog(criuCounterWorkload(t, criuBuildCounter(t), port, 1))
	local := fmt.Sprintf("http://127.0.0.1:%d/", port)

	p, err := c.Start(ctx, w, "")
	if err != nil {
		t.Fatal(err)
	}
	first := criuReap(t, p)
	criuWaitAnswer(t, local+"value")
	criuMustGet(t, local)
	criuMustGet(t, local)
	dir := t.TempDir()
	if _, err := c.Checkpoint(ctx, w, p, dir, false); err != nil {
		t.Fatal(err)
	}
	first.wait(t)
	recorded := criuRecordedLogSize(t, dir, w)
	// The other host has none of the workload's directory.
	if err := os.RemoveAll(w.Dir); err != nil {
		t.Fatal(err)
	}

	ns := criuNetns(t)
	hostIP, nsIP := criuVethAddrs()
	if err := ns.Veth(hostIP, nsIP, 30); err != nil {
		t.Fatal(err)
	}
	p2, err := criuStartInNetns(ctx, c, w, dir, ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	criuReap(t, p2)
	remote := fmt.Sprintf("http://%s:%d/", nsIP, port)
	if n := criuMustGet(t, remote+"value"); n != 2 {
		t.Fatalf("the counter restored in %s counts %d, want 2", ns.Name(), n)
	}
	if n := criuMustGet(t, remote); n != 3 {
		t.Fatalf("the counter restored in %s counted to %d, want 3", ns.Name(), n)
	}
	criuCheckInNetns(t, p2.Pid, ns.Path())
	if _, err := criuGet(local + "value"); err == nil {
		t.Error("the restored counter answers in the root namespace too")
	}
	b, err := os.ReadFile(w.LogPath())
	if err != nil || int64(len(b)) < recorded || !bytes.HasPrefix(b, []byte("lifeboat: ")) {
		t.Errorf("the restore did not stand in for the missing log (%d bytes recorded): %q, %v", recorded, b, err)
	}
}

// criuNetns creates a namespace that is deleted when the test ends,
// after the test's processes are gone (cleanups run last-in first-out).
func criuNetns(t *testing.T) *netns.NS {
	t.Helper()
	if _, err := netns.CleanupStale(netns.Prefix + "criu-"); err != nil {
		t.Logf("removing stale namespaces: %v", err)
	}
	ns, err := netns.New("criu")
	if err != nil {
		criuSkipOrFail(t, "cannot create a network namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Errorf("deleting %s: %v", ns.Name(), err)
		}
	})
	return ns
}

// criuVethAddrs picks a random /30 in 10.253.0.0/16 so that parallel runs
// rarely collide.
func criuVethAddrs() (host, ns string) {
	b := rand.IntN(256)
	c := rand.IntN(64) * 4
	return fmt.Sprintf("10.253.%d.%d", b, c+1), fmt.Sprintf("10.253.%d.%d", b, c+2)
}

// criuStartInNetns runs c.Start from a goroutine whose OS thread has joined
// the network namespace at nsPath: CRIU is forked from that thread, so the
// restore happens there. The thread is never unlocked, so the Go runtime
// discards it when the goroutine ends instead of reusing it elsewhere.
func criuStartInNetns(ctx context.Context, c *CRIU, w Workload, from, nsPath string) (*os.Process, error) {
	return inNetns(nsPath, func() (*os.Process, error) { return c.Start(ctx, w, from) })
}

// criuCheckInNetns checks that pid lives in the network namespace at nsPath.
func criuCheckInNetns(t *testing.T, pid int, nsPath string) {
	t.Helper()
	var want, got syscall.Stat_t
	if err := syscall.Stat(nsPath, &want); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &got); err != nil {
		t.Fatal(err)
	}
	if want.Ino != got.Ino || want.Dev != got.Dev {
		t.Errorf("pid %d is not in %s", pid, nsPath)
	}
}

// TestCRIURefusesCorruptCheckpoint: damaged checkpoints are refused with
// an error that says what is wrong: a pages image cut short by lifeboat's
// own check (CRIU 4.2.1 would loop forever on it), a damaged image by
// CRIU, with its real error rather than the harmless rlimit line.
func TestCRIURefusesCorruptCheckpoint(t *testing.T) {
	c := needCRIU(t)
	bin := criuBuildCounter(t)
	t.Run("truncated pages", func(t *testing.T) {
		w, dir := criuStoppedCheckpoint(t, c, bin)
		pages, _ := filepath.Glob(filepath.Join(dir, "pages-*.img"))
		if len(pages) == 0 {
			t.Fatalf("no pages image in %v", criuListDir(t, dir))
		}
		st, err := os.Stat(pages[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(pages[0], st.Size()/2); err != nil {
			t.Fatal(err)
		}
		err = criuRefusedRestore(t, c, w, dir)
		if !strings.Contains(err.Error(), filepath.Base(pages[0])) {
			t.Errorf("error %q does not name the damaged pages image", err)
		}
	})
	t.Run("damaged image", func(t *testing.T) {
		w, dir := criuStoppedCheckpoint(t, c, bin)
		criuFlipBytes(t, filepath.Join(dir, "mm-1.img"), 4, 4) // the image's own magic
		msg := criuRefusedRestore(t, c, w, dir).Error()
		if !strings.Contains(msg, "Error (") || strings.Contains(msg, "RLIMIT_NOFILE") {
			t.Errorf("error %q does not carry CRIU's real error", msg)
		}
		if !strings.Contains(msg, criuLogDir(w)) {
			t.Errorf("error %q does not say where CRIU's log is", msg)
		}
	})
}

// criuStoppedCheckpoint runs a small counter and takes its final checkpoint.
func criuStoppedCheckpoint(t *testing.T, c *CRIU, bin string) (Workload, string) {
	t.Helper()
	ctx := context.Background()
	port := freePort(t)
	w := criuCounterWorkload(t, bin, port, 8)
	p, err := c.Start(ctx, w, "")
	if err != nil {
		t.Fatal(err)
	}
	first := criuReap(t, p)
	criuWaitAnswer(t, fmt.Sprintf("http://127.0.0.1:%d/value", port))
	dir := t.TempDir()
	if _, err := c.Checkpoint(ctx, w, p, dir, false); err != nil {
		t.Fatal(err)
	}
	first.wait(t)
	return w, dir
}

// criuRefusedRestore restores w from dir, which must fail with ErrRestore.
func criuRefusedRestore(t *testing.T, c *CRIU, w Workload, dir string) error {
	t.Helper()
	p, err := c.Start(context.Background(), w, dir)
	if err == nil {
		criuReap(t, p)
		t.Fatal("a damaged checkpoint was restored")
	}
	t.Log(err)
	if !errors.Is(err, ErrRestore) {
		t.Errorf("error %v does not wrap ErrRestore", err)
	}
	return err
}

// criuFlipBytes inverts n bytes of the file at path from offset off.
func criuFlipBytes(t *testing.T, path string, off, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := off; i < off+n && i < len(b); i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
