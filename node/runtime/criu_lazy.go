package runtime

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	criu "github.com/checkpoint-restore/go-criu/v7"
)

// Lazy pages: a move's final checkpoint without its memory (post-copy).
//
// The old holder dumps everything but the process's private memory and
// keeps the process frozen, serving that memory from a CRIU page server
// on its loopback. The new holder restores from those small images at
// once; CRIU's lazy-pages daemon there fills the memory through
// userfaultfd, a page as it is touched and the rest in the background,
// from the page server, through the peers' authenticated transfer link
// (the PageDialer). Once every page has moved, the old dump ends and
// kills the frozen process.
//
// Both ends use the criu command line, not the RPC: the old holder must
// be able to abandon the dump (kill the criu process: the frozen process
// then runs on, which is how a move that fails before its grant leaves
// the workload where it was), and CRIU's RPC has no lazy-pages daemon.
// The restore itself goes through go-criu as every other restore.

// PageDialer opens a byte stream to the page server of the old holder's
// frozen process: the transfer link's relay.
type PageDialer func(ctx context.Context) (io.ReadWriteCloser, error)

// LazyCheckpointer takes lazy (post-copy) final checkpoints and restores
// them.
type LazyCheckpointer interface {
	Checkpointer
	// LazyPages reports whether this host can restore lazily.
	LazyPages() bool
	// CheckpointLazy stops p and writes everything but its memory into
	// the empty directory dir. It returns once those images are written;
	// the process stays frozen and its memory is served until a lazy
	// restore has fetched all of it (LazyDump.Done) or the dump is
	// abandoned (Abort: the process runs on) or ended (Kill).
	CheckpointLazy(ctx context.Context, w Workload, p *os.Process, dir string) (*LazyDump, error)
	// StartLazy restores the workload from the images in from (a lazy
	// checkpoint), its memory coming through pages. The process runs at
	// once, or with stopped stays stopped until Resume (a target restores
	// before its grant and resumes at it); LazyRestore.Done says when all
	// its memory has arrived.
	StartLazy(ctx context.Context, w Workload, from string, pages PageDialer, stopped bool) (*os.Process, *LazyRestore, error)
}

var _ LazyCheckpointer = (*CRIU)(nil)

// LazyDump is a lazy final checkpoint under way on the old holder.
type LazyDump struct {
	// Addr is the page server's host:port (loopback).
	Addr string
	// Ready is how long the process was stopped before the images were
	// written: the part of the freeze a client of the new holder sees.
	Ready time.Duration

	// criuProc is the dump: Done is closed when it has ended, every page
	// fetched (Err nil; CRIU killed the frozen process) or failed.
	criuProc
	log string
}

// Abort abandons the dump: the criu process is killed, and the frozen
// process, detached, runs on. Only for a move that did not happen.
func (d *LazyDump) Abort() { d.kill() }

// Kill ends the frozen process p (and its process group) before the dump:
// for a move whose new holder never fetched the memory. The workload is
// the new holder's by then; p must never run again.
func (d *LazyDump) Kill(p *os.Process) {
	killGroup(p)
	d.kill()
}

// LazyRestore is the memory of a lazily restored process on its way in.
type LazyRestore struct {
	// criuProc is the lazy-pages daemon: Done is closed when it has
	// ended, all memory in (Err nil) or failed, in which case the process
	// must not run on: a page it touches next would be missing.
	criuProc
	relay sync.WaitGroup // the relay's goroutines
	ln    net.Listener
	log   string
	plan  *lazyPlan  // what the relay may fetch ahead (lazyplan.go); nil: it only copies
	stats RelayStats // set when the relay has ended
	work  string     // the working copy of the images (hotpages.go), if any

	relayUp chan *pageRelay // the relay once it has dialed (nil: it could not)

	mu   sync.Mutex // guards conn and stats
	conn io.Closer  // the relay to the old holder, once open
}

// Close stops the daemon and the relay and waits for them.
func (r *LazyRestore) Close() {
	r.kill()
	r.abandon()
}

// abandon stops the relay, waits for it and removes the working copy of
// the images: all of Close but the daemon, which may not have started.
func (r *LazyRestore) abandon() {
	r.closeRelay()
	r.relay.Wait()
	if r.work != "" {
		_ = os.RemoveAll(r.work)
	}
}

// workImages is the directory the restore reads its images from: for a
// checkpoint the relay fetches ahead for, a working copy of from (links)
// in the workload's CRIU log directory, into which takeHot writes; else
// from itself, which is never written.
func (r *LazyRestore) workImages(w Workload, from string) (string, error) {
	plan, err := lazyRuns(from)
	if err != nil || plan == nil {
		return from, err
	}
	r.plan = plan
	if r.work, err = os.MkdirTemp(criuLogDir(w), "lazy-images-"); err != nil {
		return "", err
	}
	return r.work, linkImages(from, r.work)
}

// takeHot writes the runs the relay has fetched whole by now into the
// working copy of the images as present (hotpages.go), and returns how
// many pages it wrote. A relay that has not dialed yet has fetched
// nothing: the restore is all lazy then.
func (r *LazyRestore) takeHot(from string) (int, error) {
	if r.work == "" {
		return 0, nil
	}
	var rel *pageRelay
	select {
	case rel = <-r.relayUp:
	default:
	}
	if rel == nil {
		return 0, nil
	}
	hot := rel.takeHot(hotPagesWait)
	if len(hot) == 0 {
		return 0, nil
	}
	if err := writeHotImages(from, r.work, *r.plan, hot); err != nil {
		return 0, fmt.Errorf("%w: writing the hot pages into %s: %w", ErrRestore, r.work, err)
	}
	if err := checkPages(r.work); err != nil { // a short pages image hangs CRIU's restorer
		return 0, fmt.Errorf("%w: the hot pages written into %s: %w", ErrRestore, r.work, err)
	}
	n := 0
	for _, h := range hot {
		n += int(h.pages())
	}
	return n, nil
}

// Relayed is what the page relay did, once it has ended (Close).
func (r *LazyRestore) Relayed() RelayStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *LazyRestore) closeRelay() {
	_ = r.ln.Close()
	r.mu.Lock()
	if r.conn != nil {
		_ = r.conn.Close()
	}
	r.mu.Unlock()
}

// LazyPages reports CRIUConfig.LazyPages.
func (c *CRIU) LazyPages() bool { return c.cfg.LazyPages }

// CheckpointLazy: see LazyCheckpointer.
func (c *CRIU) CheckpointLazy(ctx context.Context, w Workload, p *os.Process, dir string) (*LazyDump, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: workload %s: no process", ErrCheckpoint, w.Spec.ID)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: workload %s: %w", ErrCheckpoint, w.Spec.ID, err)
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, fmt.Errorf("%w: workload %s: a port for the page server: %w", ErrCheckpoint, w.Spec.ID, err)
	}
	oplog, err := newCRIUOpLog(w, "dump-lazy", c.now())
	if err != nil {
		return nil, fmt.Errorf("%w: workload %s: CRIU log dir: %w", ErrCheckpoint, w.Spec.ID, err)
	}
	defer oplog.Close()
	args := append([]string{"dump", "-t", strconv.Itoa(p.Pid), "-D", dir,
		"--lazy-pages", "--address", "127.0.0.1", "--port", strconv.Itoa(port)}, c.cliOpts(oplog)...)
	d := &LazyDump{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), log: oplog.Path()}
	start := time.Now()
	if err := c.runWithStatus(ctx, args, &d.criuProc); err != nil {
		return nil, criuError(ErrCheckpoint, w, "lazy dump of pid "+strconv.Itoa(p.Pid), err, oplog)
	}
	d.Ready = time.Since(start)
	c.log.Info("criu dumped lazily", "workload", w.Spec.ID, "epoch", w.Epoch, "pid", p.Pid, "dir", dir,
		"ready", d.Ready, "page_server", d.Addr, "log", d.log)
	return d, nil
}

// StartLazy: see LazyCheckpointer.
func (c *CRIU) StartLazy(ctx context.Context, w Workload, from string, pages PageDialer, stopped bool) (*os.Process, *LazyRestore, error) {
	if err := c.checkLazyFrom(ctx, w, from); err != nil {
		return nil, nil, err
	}
	oplog, err := newCRIUOpLog(w, "restore-lazy", c.now())
	if err != nil {
		return nil, nil, fmt.Errorf("%w: workload %s: CRIU log dir: %w", ErrRestore, w.Spec.ID, err)
	}
	defer oplog.Close()
	r, dir, err := startLazyRestore(ctx, w, from, pages, oplog)
	if err != nil {
		return nil, nil, err
	}
	begin := time.Now()
	cr, hot, err := c.prepareLazyRestore(ctx, w, r, dir, from, oplog)
	if err != nil {
		return nil, nil, err
	}
	defer cr.Cleanup()
	images, err := os.Open(dir)
	if err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("%w: workload %s: %w", ErrRestore, w.Spec.ID, err)
	}
	defer images.Close()
	start := time.Now()
	nfy, err := c.restore(cr, images, oplog, restoreHow{lazy: true, stopped: stopped})
	if err != nil {
		r.Close()
		return nil, nil, criuError(ErrRestore, w, "lazy restore from "+from, err, oplog)
	}
	c.log.Info("criu restored lazily", "workload", w.Spec.ID, "epoch", w.Epoch, "pid", nfy.pid, "stopped", stopped,
		"from", from, "hot_pages", hot, "daemon", start.Sub(begin), "took", time.Since(start), "log", oplog.Path())
	proc, err := os.FindProcess(nfy.pid)
	if err != nil {
		nfy.killRestored()
		r.Close()
		return nil, nil, err
	}
	return proc, r, nil
}

// checkLazyFrom checks the lazy checkpoint in from before a restore and
// prepares the workload's files for it.
func (c *CRIU) checkLazyFrom(ctx context.Context, w Workload, from string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: workload %s: %w", ErrRestore, w.Spec.ID, err)
	}
	if err := checkPages(from); err != nil {
		return fmt.Errorf("%w: workload %s: checkpoint %s: %w", ErrRestore, w.Spec.ID, from, err)
	}
	if err := prepareWorkloadFiles(from, w, c.now()); err != nil {
		return fmt.Errorf("%w: workload %s: preparing its files for CRIU: %w", ErrRestore, w.Spec.ID, err)
	}
	return nil
}

// startLazyRestore opens the page relay's port and starts relaying
// (serveRelay): it dials the old holder's page server at once. dir is
// where the restore reads its images (workImages).
func startLazyRestore(ctx context.Context, w Workload, from string, pages PageDialer, oplog *criuOpLog) (*LazyRestore, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("%w: workload %s: the page relay's port: %w", ErrRestore, w.Spec.ID, err)
	}
	r := &LazyRestore{ln: ln, log: oplog.Path(), relayUp: make(chan *pageRelay, 1)}
	dir, err := r.workImages(w, from)
	if err != nil {
		r.abandon()
		return nil, "", fmt.Errorf("%w: workload %s: checkpoint %s: %w", ErrRestore, w.Spec.ID, from, err)
	}
	r.relay.Add(1)
	go r.serveRelay(ctx, pages)
	return r, dir, nil
}

// prepareLazyRestore starts the lazy-pages daemon on the images in dir,
// the relay's port its page server, and criu swrk beside it, waits for
// the daemon and takes in the hot pages (takeHot), returning how many.
// The caller restores through cr and then cleans it up; on failure, r is
// closed.
func (c *CRIU) prepareLazyRestore(ctx context.Context, w Workload, r *LazyRestore, dir, from string, oplog *criuOpLog) (*criu.Criu, int, error) {
	port := r.ln.Addr().(*net.TCPAddr).Port
	// The daemon's own log sits beside the restore's, in the same work
	// dir, where the restore finds the daemon's socket.
	dl := &criuOpLog{dir: oplog.dir, name: "lazy-pages-" + oplog.name}
	args := append([]string{"lazy-pages", "--page-server", "--address", "127.0.0.1", "--port", strconv.Itoa(port), "-D", dir},
		c.cliOpts(dl)...)
	ready, err := c.startWithStatus(args, &r.criuProc)
	if err != nil {
		r.abandon()
		return nil, 0, criuError(ErrRestore, w, "starting the lazy-pages daemon", err, dl)
	}
	// go-criu's `criu swrk` starts from this thread too (its network
	// namespace) and loads while the daemon does.
	cr := c.client()
	if err := cr.Prepare(); err != nil {
		r.Close()
		return nil, 0, fmt.Errorf("%w: workload %s: starting criu swrk: %w", ErrRestore, w.Spec.ID, err)
	}
	hot := 0
	if err = ready(ctx); err != nil {
		err = criuError(ErrRestore, w, "starting the lazy-pages daemon", err, dl)
	} else {
		hot, err = r.takeHot(from)
	}
	if err != nil {
		r.Close()
		cr.Cleanup()
		return nil, 0, err
	}
	return cr, hot, nil
}

// serveRelay connects the lazy-pages daemon's one connection to the old
// holder's page server through pages, until either side ends. It dials
// the page server first, while the daemon starts and the restore runs,
// and fetches ahead from then on.
func (r *LazyRestore) serveRelay(ctx context.Context, pages PageDialer) {
	defer r.relay.Done()
	defer r.ln.Close()
	remote, err := pages(context.WithoutCancel(ctx))
	if err != nil {
		r.relayUp <- nil
		if local, err := r.ln.Accept(); err == nil {
			_ = local.Close()
		}
		return
	}
	r.mu.Lock()
	r.conn = remote
	r.mu.Unlock()
	var rel *pageRelay
	if r.plan != nil {
		rel = startRelay(remote, *r.plan)
	}
	r.relayUp <- rel
	local, err := r.ln.Accept()
	_ = r.ln.Close()
	switch {
	case err != nil && rel != nil:
		rel.end()
		return
	case err != nil:
		_ = remote.Close()
		return
	case rel == nil:
		splice(local, remote)
		return
	}
	st := rel.serve(local)
	r.mu.Lock()
	r.stats = st
	r.mu.Unlock()
}

// splice copies both ways between a and b until either direction ends,
// then closes both.
func splice(a net.Conn, b io.ReadWriteCloser) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(b, a)
		_ = b.Close()
		_ = a.Close()
	}()
	_, _ = io.Copy(a, b)
	_ = a.Close()
	_ = b.Close()
	wg.Wait()
}

// freeLoopbackPort is a TCP port free on 127.0.0.1 a moment ago (CRIU's
// page server binds its own).
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
