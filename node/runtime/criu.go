package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	criu "github.com/checkpoint-restore/go-criu/v7"
	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"google.golang.org/protobuf/proto"

	"github.com/lifeboat/lifeboat/fsm"
)

// CRIUConfig configures the criu checkpointer.
type CRIUConfig struct {
	// Path is the criu binary, or a wrapper that execs it (the installer's
	// /usr/local/libexec/lifeboat/criu), run in swrk (RPC) mode.
	Path string
	// LogLevel is CRIU's log verbosity, 0 (none) to 4 (debug). The
	// default is 3 (info): at 4 CRIU writes a line per page image entry,
	// and the lazy-pages daemon three per page fault, every one a write
	// to the log on a move's critical path (the 64 MiB lazy cutover's
	// median gap was 110 ms at 4 and 101 ms at 3, five runs each,
	// interleaved).
	LogLevel int
	// TCPClose makes checkpoints leave established TCP connections out and
	// restores bring them back closed (clients see EOF and reconnect): what
	// a move to another host needs. Without it connections are dumped and
	// restored whole (--tcp-established), which needs the IP to move too.
	TCPClose bool
	// NetworkLock is how CRIU locks the network during a dump and until
	// the end of a restore: "nftables" (no iptables binary needed),
	// "iptables" or "skip". The lock keeps dumped TCP connections
	// consistent; with TCPClose none is dumped, so "skip" is safe (and only
	// allowed then). A lock costs: it froze a small counter for 330 ms of
	// its 350 ms dump with 150 lock tables in the host's ruleset, which a
	// stopping dump leaves behind for the restore (on another host) to
	// remove.
	NetworkLock string
	// LazyPages says this host can restore lazy (post-copy) checkpoints:
	// userfaultfd works and fs.pipe-max-size is large enough (the agent
	// sets it from the host probe). Taking one needs neither.
	LazyPages bool
	// Logger receives the checkpointer's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultCRIUConfig returns the settings the agent uses: the installer's
// CRIU, debug logs, --tcp-close and no network lock.
func DefaultCRIUConfig() CRIUConfig {
	return CRIUConfig{
		Path:        "/usr/local/libexec/lifeboat/criu",
		LogLevel:    3,
		TCPClose:    true,
		NetworkLock: "skip",
	}
}

var criuNetworkLocks = map[string]rpc.CriuNetworkLockMethod{
	"nftables": rpc.CriuNetworkLockMethod_NFTABLES,
	"iptables": rpc.CriuNetworkLockMethod_IPTABLES,
	"skip":     rpc.CriuNetworkLockMethod_SKIP,
}

// Validate reports the first setting that is wrong, by name.
func (c CRIUConfig) Validate() error {
	if c.Path == "" {
		return errors.New("criu: Path is empty (the criu binary or its wrapper)")
	}
	if c.LogLevel < 0 || c.LogLevel > 4 {
		return fmt.Errorf("criu: LogLevel %d is not in 0-4", c.LogLevel)
	}
	if _, ok := criuNetworkLocks[c.NetworkLock]; !ok {
		return fmt.Errorf("criu: NetworkLock %q is not nftables, iptables or skip", c.NetworkLock)
	}
	if c.NetworkLock == "skip" && !c.TCPClose {
		return errors.New("criu: NetworkLock skip needs TCPClose: dumped TCP connections need the lock")
	}
	return nil
}

// CRIU is the criu checkpoint mode: transparent checkpoints of a whole
// process tree through CRIU's swrk RPC (go-criu).
type CRIU struct {
	cfg     CRIUConfig
	log     *slog.Logger
	version int
	now     func() time.Time
}

var _ Checkpointer = (*CRIU)(nil)

// NewCRIU validates cfg and checks that this host can run CRIU: it must
// run as root, and the criu at cfg.Path must answer in swrk mode. When it
// cannot, the error wraps ErrUnsupported and says why.
func NewCRIU(cfg CRIUConfig) (*CRIU, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: criu mode needs root (running as uid %d)", ErrUnsupported, os.Geteuid())
	}
	if _, err := os.Stat(cfg.Path); err != nil {
		return nil, fmt.Errorf("%w: criu: %v (install it with deploy/criu/install.sh)", ErrUnsupported, err)
	}
	cr := criu.MakeCriu()
	cr.SetCriuPath(cfg.Path)
	v, err := cr.GetCriuVersion()
	if err != nil {
		return nil, fmt.Errorf("%w: criu at %s does not run in swrk mode: %v", ErrUnsupported, cfg.Path, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if did, err := seedKdat(context.Background(), cfg.Path); err != nil {
		log.Warn("CRIU will probe the kernel in every dump and restore (about 20 ms each)", "err", err)
	} else {
		log.Debug("criu kernel-feature cache", "path", kdatPath, "cache", did)
	}
	log.Debug("criu ready", "path", cfg.Path, "version", v)
	return &CRIU{cfg: cfg, log: log, version: v, now: time.Now}, nil
}

// Mode is fsm.ModeCRIU.
func (c *CRIU) Mode() string { return fsm.ModeCRIU }

// Version is CRIU's version as go-criu encodes it (major*10000 +
// minor*100 + sublevel).
func (c *CRIU) Version() int { return c.version }

// baseOpts are the options every dump and restore shares. Connections
// still in a listener's accept queue (in flight) are left out of dumps:
// CRIU otherwise refuses to dump any server that a client is connecting
// to at that moment; such a client sees its connection reset, as it
// would on a crash.
func (c *CRIU) baseOpts(images, work *os.File, logName string) *rpc.CriuOpts {
	return &rpc.CriuOpts{
		ImagesDirFd:     proto.Int32(int32(images.Fd())),
		WorkDirFd:       proto.Int32(int32(work.Fd())),
		LogFile:         proto.String(logName),
		LogLevel:        proto.Int32(int32(c.cfg.LogLevel)),
		ShellJob:        proto.Bool(false),
		TcpClose:        proto.Bool(c.cfg.TCPClose),
		TcpEstablished:  proto.Bool(!c.cfg.TCPClose),
		TcpSkipInFlight: proto.Bool(true),
		NetworkLock:     criuNetworkLocks[c.cfg.NetworkLock].Enum(),
	}
}

// Start runs w fresh when from is "", or restores it from the checkpoint
// directory from, which it only reads (CRIU's log goes to
// Dir/criu-logs). The restored process is a child of this process (CRIU's
// restore-sibling), so the caller reaps it with Wait as for a fresh one.
//
// CRIU runs in the network namespace of the calling thread: to restore
// into another namespace, call Start from a goroutine that has locked its
// OS thread (runtime.LockOSThread) and joined that namespace (setns); the
// criu process is forked from that thread. ctx is checked before CRIU
// starts; a restore under way is not abandoned halfway.
func (c *CRIU) Start(ctx context.Context, w Workload, from string) (*os.Process, error) {
	if from == "" {
		return launch(w)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: workload %s: %w", ErrRestore, w.Spec.ID, err)
	}
	if err := checkPages(from); err != nil {
		return nil, fmt.Errorf("%w: workload %s: checkpoint %s: %w", ErrRestore, w.Spec.ID, from, err)
	}
	if err := prepareWorkloadFiles(from, w, c.now()); err != nil {
		return nil, fmt.Errorf("%w: workload %s: preparing its files for CRIU: %w", ErrRestore, w.Spec.ID, err)
	}
	images, err := os.Open(from)
	if err != nil {
		return nil, fmt.Errorf("%w: workload %s: %w", ErrRestore, w.Spec.ID, err)
	}
	defer images.Close()
	oplog, err := newCRIUOpLog(w, "restore", c.now())
	if err != nil {
		return nil, fmt.Errorf("%w: workload %s: CRIU log dir: %w", ErrRestore, w.Spec.ID, err)
	}
	defer oplog.Close()
	start := time.Now()
	nfy, err := c.restore(c.client(), images, oplog, restoreHow{})
	if err != nil {
		return nil, criuError(ErrRestore, w, "restoring from "+from, err, oplog)
	}
	c.log.Info("criu restored", "workload", w.Spec.ID, "epoch", w.Epoch, "pid", nfy.pid,
		"from", from, "took", time.Since(start), "log", oplog.Path())
	return os.FindProcess(nfy.pid)
}

// Checkpoint dumps p (the host PID of the workload's namespace init) into
// the empty directory dir. With leaveRunning the process goes on after a
// short freeze; without it CRIU kills it once the images are written and
// the caller reaps it. Stats.Freeze is CRIU's own measure of how long the
// tasks were frozen (stats-dump), or the whole dump if that is missing.
func (c *CRIU) Checkpoint(ctx context.Context, w Workload, p *os.Process, dir string, leaveRunning bool) (Stats, error) {
	if p == nil {
		return Stats{}, fmt.Errorf("%w: workload %s: no process", ErrCheckpoint, w.Spec.ID)
	}
	if err := ctx.Err(); err != nil {
		return Stats{}, fmt.Errorf("%w: workload %s: %w", ErrCheckpoint, w.Spec.ID, err)
	}
	images, err := os.Open(dir)
	if err != nil {
		return Stats{}, fmt.Errorf("%w: workload %s: %w", ErrCheckpoint, w.Spec.ID, err)
	}
	defer images.Close()
	oplog, err := newCRIUOpLog(w, "dump", c.now())
	if err != nil {
		return Stats{}, fmt.Errorf("%w: workload %s: CRIU log dir: %w", ErrCheckpoint, w.Spec.ID, err)
	}
	defer oplog.Close()
	opts := c.baseOpts(images, oplog.dir, oplog.name)
	opts.Pid = proto.Int32(int32(p.Pid))
	opts.LeaveRunning = proto.Bool(leaveRunning)
	_ = os.Remove(filepath.Join(oplog.dir.Name(), crit.StatsDump)) // never read a stale one
	start := time.Now()
	if err := c.client().Dump(opts, nil); err != nil {
		return Stats{}, criuError(ErrCheckpoint, w, "dumping pid "+fmt.Sprint(p.Pid), err, oplog)
	}
	st := Stats{Duration: time.Since(start)}
	st.Freeze = frozenTime(oplog.dir.Name(), st.Duration)
	c.log.Info("criu dumped", "workload", w.Spec.ID, "epoch", w.Epoch, "pid", p.Pid, "dir", dir,
		"leave_running", leaveRunning, "freeze", st.Freeze, "took", st.Duration, "log", oplog.Path())
	return st, nil
}

// frozenTime reads how long CRIU kept the tasks frozen from the stats-dump
// it wrote into its work dir, falling back to the whole dump.
func frozenTime(workDir string, whole time.Duration) time.Duration {
	st, err := crit.GetDumpStats(workDir)
	if err != nil || st.GetFrozenTime() == 0 {
		return whole
	}
	return time.Duration(st.GetFrozenTime()) * time.Microsecond
}

// restore runs CRIU's restore of the images as a sibling (the agent's
// child), lazily or not; on failure nothing it restored is left running.
func (c *CRIU) restore(cr *criu.Criu, images *os.File, oplog *criuOpLog, how restoreHow) (*restoreNotify, error) {
	opts := c.baseOpts(images, oplog.dir, oplog.name)
	opts.RstSibling = proto.Bool(true)
	opts.LazyPages = proto.Bool(how.lazy)
	opts.LeaveStopped = proto.Bool(how.stopped)
	nfy := &restoreNotify{}
	err := cr.Restore(opts, nfy)
	if err == nil && nfy.pid <= 0 {
		err = errors.New("CRIU reported no restored process")
	}
	if err != nil {
		nfy.killRestored()
		return nil, err
	}
	return nfy, nil
}

// client is a go-criu client of this CRIU: it starts `criu swrk` for each
// call, or once if Prepare'd (the caller then Cleanups).
func (c *CRIU) client() *criu.Criu {
	cr := criu.MakeCriu()
	cr.SetCriuPath(c.cfg.Path)
	return cr
}

// restoreHow is how a restore leaves the process: its memory to come
// from a lazy-pages daemon, and stopped (SIGSTOP) until resumed.
type restoreHow struct{ lazy, stopped bool }

// resume continues a process restored stopped, with its process group.
func resume(p *os.Process) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGCONT); err != nil {
		return p.Signal(syscall.SIGCONT)
	}
	return nil
}

// restoreNotify catches the restored PID from CRIU's post-restore notice.
type restoreNotify struct {
	criu.NoNotify
	pid int // the restored tree's root, as a host PID; 0 until notified
}

// PostRestore records the restored root's PID.
func (n *restoreNotify) PostRestore(pid int32) error {
	n.pid = int(pid)
	return nil
}

// killRestored kills and reaps a process CRIU restored before the restore
// failed as a whole, so that no half-restored workload is left running.
func (n *restoreNotify) killRestored() {
	if n.pid <= 0 {
		return
	}
	if p, err := os.FindProcess(n.pid); err == nil {
		_ = p.Kill()
		_, _ = p.Wait()
	}
}
