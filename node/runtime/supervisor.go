package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/transfer"
)

// Cluster is what the supervisor needs from the node. Workload goroutines
// call it concurrently (one call at a time per workload); calls may block
// on Raft and must honour ctx.
type Cluster interface {
	// Report records a workload's state under its epoch.
	Report(ctx context.Context, id string, epoch uint64, state fsm.WorkloadState, msg string) error
	// NextSeq is the seq the workload's next checkpoint will take.
	NextSeq(id string) uint64
	// Commit records a sealed local checkpoint in Raft (prepare, commit).
	Commit(ctx context.Context, id string, epoch uint64, c *transfer.Checkpoint) error
	// Committed lists the workload's committed checkpoints, oldest first.
	Committed(id string) []fsm.CheckpointRecord
	// Fetch brings a committed checkpoint this node lacks into its store
	// from a node that holds a verified copy.
	Fetch(ctx context.Context, id string, rec fsm.CheckpointRecord) error
	// Pages connects to the page server of the lazy checkpoint seq of
	// workload id, which node from serves (see LazyCheckpointer).
	Pages(ctx context.Context, from, id string, seq uint64) (io.ReadWriteCloser, error)
}

// Mover hands a workload off to its next holder: Supervisor.Handoff gets
// one per move. The workload's own goroutine calls Move once, with the
// process stopped by its final checkpoint (ended, in mode none); Move may
// block for as long as ctx allows. It gets the final checkpoint, sealed in
// the store (nil in mode none), and must commit it, grant the workload
// away through the cluster and return only once this node's replica shows
// the new holder: the unit ends when it returns nil, and the workload runs
// on (or starts again) here when it fails. A lazy checkpoint holds no
// memory: it is committed for the new holder alone, which fetches the
// memory from this node's page server (PageServer) while the process
// waits here, frozen.
type Mover interface {
	Move(ctx context.Context, w Workload, c *transfer.Checkpoint, lazy bool) error
}

// Config configures a Supervisor.
type Config struct {
	// DataDir holds workloads/<id>/ (logs, scratch).
	DataDir string
	// Store is the local checkpoint store (required), opened by the
	// caller: the supervisor seals checkpoints into it and restores from it.
	Store *transfer.Store
	// RestartMin and RestartMax bound the crash-restart backoff.
	RestartMin, RestartMax time.Duration
	// StopTimeout is how long a stopped workload gets after SIGTERM.
	StopTimeout time.Duration
	// PrestartTTL is how long a lazy restore prepared ahead of its grant
	// (PrestartLazy) waits for it: a move that has not granted the
	// workload here by then failed or went elsewhere.
	PrestartTTL time.Duration
	// Env is added to every workload's environment (LIFEBOAT_API: the
	// local peer's admin API, for the fenced results log).
	Env []string
	// WorkloadEnv, when set, adds to one workload's environment under an
	// epoch (LIFEBOAT_TOKEN: its credential for its own results log).
	WorkloadEnv func(id string, epoch uint64) []string
	// Init is the workload init (lifeboat-init) shell commands run under
	// as PID 1 of their PID namespace (init.go): an absolute path, the same
	// on every node (CRIU restores it by path). Empty: none, and a stop of
	// a shell waits StopTimeout out.
	Init   string
	Logger *slog.Logger
}

// DefaultConfig returns production settings for dataDir; the caller sets
// Store.
func DefaultConfig(dataDir string) Config {
	return Config{DataDir: dataDir, RestartMin: 200 * time.Millisecond, RestartMax: 30 * time.Second, StopTimeout: 10 * time.Second,
		PrestartTTL: 30 * time.Second}
}

// Validate names the first bad setting.
func (c Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("runtime: DataDir must be set")
	case c.Store == nil:
		return errors.New("runtime: Store must be set (the local checkpoint store)")
	case c.RestartMin <= 0 || c.RestartMax < c.RestartMin:
		return errors.New("runtime: need 0 < RestartMin ≤ RestartMax")
	case c.StopTimeout <= 0:
		return errors.New("runtime: StopTimeout must be > 0")
	case c.PrestartTTL <= 0:
		return errors.New("runtime: PrestartTTL must be > 0")
	case c.Init != "" && !filepath.IsAbs(c.Init):
		return fmt.Errorf("runtime: Init %q must be an absolute path (CRIU restores the init by path)", c.Init)
	}
	return nil
}

// Desired is one workload this node should run.
type Desired struct {
	Spec  fsm.WorkloadSpec
	Epoch uint64
	// From is the committed checkpoint to start from; nil starts fresh.
	From *fsm.CheckpointRecord
}

// ErrNotRunning means this node does not run the workload.
var ErrNotRunning = errors.New("workload not running on this node")

// Supervisor runs the workloads granted to this node.
type Supervisor struct {
	cfg     Config
	log     *slog.Logger
	modes   map[string]Checkpointer
	store   *transfer.Store
	cluster Cluster

	mu     sync.Mutex // guards units, closed, pages, fenced, prestarts and predials
	units  map[string]*unit
	closed bool
	pages  map[pageKey]string // the page servers of lazy dumps under way
	fenced bool               // see Fence
	// prestarts are the lazy restores prepared ahead of their grants
	// (PrestartLazy), by workload.
	prestarts map[string]*prestart
	// predials are the page relays dialed ahead of their restores
	// (PredialPages), by workload.
	predials map[string]*predial
	quit     chan struct{}  // closed by Close
	wg       sync.WaitGroup // one per unit goroutine
}

// New builds a supervisor over the given checkpointers (by Mode()).
func New(cfg Config, cluster Cluster, checkpointers ...Checkpointer) (*Supervisor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Supervisor{cfg: cfg, log: cfg.Logger, modes: map[string]Checkpointer{}, store: cfg.Store,
		cluster: cluster, units: map[string]*unit{}, pages: map[pageKey]string{}, prestarts: map[string]*prestart{},
		predials: map[string]*predial{},
		quit:     make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, c := range checkpointers {
		s.modes[c.Mode()] = c
	}
	return s, nil
}

// Modes lists the checkpoint modes this supervisor can run.
func (s *Supervisor) Modes() []string {
	out := make([]string, 0, len(s.modes))
	for _, m := range []string{fsm.ModeCRIU, fsm.ModeApp, fsm.ModeNone} {
		if _, ok := s.modes[m]; ok {
			out = append(out, m)
		}
	}
	if lz, ok := s.modes[fsm.ModeCRIU].(LazyCheckpointer); ok && lz.LazyPages() {
		out = append(out, fsm.CapLazyPages)
	}
	return out
}

// Sync makes the running set match desired: it starts what is missing,
// stops what is no longer wanted and passes new epochs on. The node calls
// it whenever its replica changes; it does not block on the workloads.
func (s *Supervisor) Sync(desired []Desired) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	want := map[string]Desired{}
	for _, d := range desired {
		want[d.Spec.ID] = d
	}
	for id, u := range s.units {
		d, ok := want[id]
		if !ok || u.done() {
			if !ok && !u.done() {
				s.log.Info("stopping a workload no longer granted here", "workload", id)
			}
			u.stop()
			delete(s.units, id)
			continue
		}
		u.setEpoch(d.Epoch)
	}
	for id, d := range want {
		if _, ok := s.units[id]; !ok {
			s.startUnitLocked(d)
		}
	}
}

func (s *Supervisor) startUnitLocked(d Desired) {
	ck, ok := s.modes[d.Spec.Checkpoint.Mode]
	if !ok {
		s.log.Error("no checkpointer for the workload's mode", "workload", d.Spec.ID, "mode", d.Spec.Checkpoint.Mode)
		go s.cluster.Report(context.Background(), d.Spec.ID, d.Epoch, fsm.WorkloadFailed,
			fmt.Sprintf("this node cannot run checkpoint mode %q", d.Spec.Checkpoint.Mode))
		return
	}
	u := newUnit(s, d, ck)
	s.units[d.Spec.ID] = u
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		u.run()
	}()
}

func (s *Supervisor) unit(id string) (*unit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.units[id]
	if !ok || u.done() {
		return nil, fmt.Errorf("%w: %s", ErrNotRunning, id)
	}
	return u, nil
}

// Checkpoint takes a checkpoint of a running workload now (leaving it
// running), seals it and commits it through the cluster.
func (s *Supervisor) Checkpoint(ctx context.Context, id string) (Result, error) {
	u, err := s.unit(id)
	if err != nil {
		return Result{}, err
	}
	return u.request(ctx, reqCheckpoint)
}

// Restart stops a workload and starts it again: from its latest committed
// checkpoint when fromCheckpoint, else fresh.
func (s *Supervisor) Restart(ctx context.Context, id string, fromCheckpoint bool) (Result, error) {
	u, err := s.unit(id)
	if err != nil {
		return Result{}, err
	}
	kind := reqRestartFresh
	if fromCheckpoint {
		kind = reqRestartFromCheckpoint
	}
	return u.request(ctx, kind)
}

// RetryReports sends again the state reports the cluster did not take
// (each unit's latest); the caller runs it now and then.
func (s *Supervisor) RetryReports() {
	s.mu.Lock()
	units := make([]*unit, 0, len(s.units))
	for _, u := range s.units {
		units = append(units, u)
	}
	s.mu.Unlock()
	for _, u := range units {
		u.retryReport()
	}
}

// PID is the host PID of a workload's running process, 0 when none runs.
func (s *Supervisor) PID(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.units[id]; ok {
		return u.pid()
	}
	return 0
}

// PIDs lists the process (group) ids of the running workloads, sorted.
func (s *Supervisor) PIDs() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, u := range s.units {
		if pid := u.pid(); pid > 0 {
			out = append(out, pid)
		}
	}
	out = append(out, s.prestartPIDsLocked()...)
	slices.Sort(out)
	return out
}

// Fence, while on, keeps the supervisor from starting any workload
// (new ones and crash restarts wait): a node whose lease ran out must not
// run what another node may be granted.
func (s *Supervisor) Fence(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fenced = on
}

func (s *Supervisor) isFenced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fenced
}

// pageKey names a lazy checkpoint.
type pageKey struct {
	workload string
	seq      uint64
}

// PageServer is the loopback address of the page server that serves the
// memory of workload id's lazy checkpoint seq, while its dump is under
// way here.
func (s *Supervisor) PageServer(id string, seq uint64) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr, ok := s.pages[pageKey{id, seq}]
	return addr, ok
}

func (s *Supervisor) setPageServer(id string, seq uint64, addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if addr == "" {
		delete(s.pages, pageKey{id, seq})
		return
	}
	s.pages[pageKey{id, seq}] = addr
}

// Handoff takes a workload's final checkpoint (stopping it) and hands it
// to m. With lazy, a workload whose spec asks for lazy pages gets a
// lazy final checkpoint where its checkpointer can take one; the caller
// says lazy only when the new holder can restore one.
func (s *Supervisor) Handoff(ctx context.Context, id string, lazy bool, m Mover) (Result, error) {
	u, err := s.unit(id)
	if err != nil {
		return Result{}, err
	}
	return u.send(ctx, request{kind: reqHandoff, mover: m, lazy: lazy, reply: make(chan reply, 1)})
}

// Close stops every workload and waits for them.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	if !s.closed {
		close(s.quit)
	}
	s.closed = true
	for id, u := range s.units {
		u.stop()
		delete(s.units, id)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
