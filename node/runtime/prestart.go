package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// A lazy move's target restores the lazy checkpoint as soon as it has
// received it, before it is granted the workload, and leaves the process
// stopped: at the grant it only resumes it. The restore (verify, the
// lazy-pages daemon, CRIU) overlaps the commit and the grant instead of
// following them, and whatever memory the daemon fetches before the grant
// the resumed process need not fault in. The process never runs before
// the grant: resuming it is the unit's first act under the new epoch. A prestart that no grant claims is killed
// (Config.PrestartTTL), as is one that a start from any other checkpoint
// finds.

// prestart is one lazy restore prepared ahead of its grant.
type prestart struct {
	rec   fsm.CheckpointRecord
	ready chan struct{} // closed when the restore has ended: proc and lazy, or err
	proc  *os.Process
	lazy  *LazyRestore
	err   error
	// claimed is closed when a unit took the process; drop when it is to
	// be killed; gone once it is (or a unit has it).
	claimed, drop, gone chan struct{}
}

// PrestartLazy restores lazy checkpoint rec of spec, which this node's
// store has just received and sealed, and leaves the process stopped
// until a unit of the workload claims it at its start (see above). It
// returns at once: the restore runs on the supervisor's goroutine. It does
// nothing when this node cannot restore lazily, runs the workload
// already, or is fenced or closed.
func (s *Supervisor) PrestartLazy(spec fsm.WorkloadSpec, rec fsm.CheckpointRecord) {
	lz, ok := s.lazyRestorer(spec, rec)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.units[spec.ID]; s.closed || s.fenced || (ok && !u.done()) {
		return
	}
	old := s.prestarts[spec.ID]
	if old != nil && old.rec.Seq == rec.Seq {
		return
	}
	p := &prestart{rec: rec, ready: make(chan struct{}), claimed: make(chan struct{}), drop: make(chan struct{}), gone: make(chan struct{})}
	s.prestarts[spec.ID] = p
	if old != nil {
		close(old.drop)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if old != nil {
			<-old.gone // it may hold what the restore needs (its listening port)
		}
		s.runPrestart(lz, spec, p)
	}()
}

// heldFor waits until taken is closed (true), or drop is, or
// Config.PrestartTTL passes, or the supervisor closes (false): how long
// what is prepared ahead of a grant is kept for it.
func (s *Supervisor) heldFor(taken, drop <-chan struct{}) bool {
	t := time.NewTimer(s.cfg.PrestartTTL)
	defer t.Stop()
	select {
	case <-taken:
		return true
	case <-drop:
	case <-t.C:
	case <-s.quit:
	}
	return false
}

// lazyRestorer is the checkpointer that restores lazy checkpoint rec of
// spec here; false when this node cannot.
func (s *Supervisor) lazyRestorer(spec fsm.WorkloadSpec, rec fsm.CheckpointRecord) (LazyCheckpointer, bool) {
	lz, ok := s.modes[spec.Checkpoint.Mode].(LazyCheckpointer)
	return lz, ok && lz.LazyPages() && rec.LazyFrom != ""
}

// runPrestart restores p stopped and keeps it until it is claimed, or
// kills it.
func (s *Supervisor) runPrestart(lz LazyCheckpointer, spec fsm.WorkloadSpec, p *prestart) {
	defer close(p.gone)
	p.proc, p.lazy, p.err = s.restoreStopped(lz, spec, p.rec)
	close(p.ready)
	if p.err != nil {
		s.log.Warn("a lazy restore ahead of its grant failed; the grant will restore it", "workload", spec.ID, "seq", p.rec.Seq, "err", p.err)
		s.forgetPrestart(spec.ID, p)
		return
	}
	if s.heldFor(p.claimed, p.drop) {
		return
	}
	if !s.forgetPrestart(spec.ID, p) {
		select {
		case <-p.claimed: // a unit took it meanwhile (closed under s.mu)
			return
		default: // dropped or replaced
		}
	}
	s.log.Info("killing a lazy restore that no grant claimed", "workload", spec.ID, "seq", p.rec.Seq)
	p.kill()
}

// kill ends a restored process that must not run and its daemon and relay.
func (p *prestart) kill() {
	killGroup(p.proc)
	_, _ = p.proc.Wait()
	p.lazy.Close()
}

// restoreStopped verifies the lazy checkpoint in the store and restores
// it, stopped.
func (s *Supervisor) restoreStopped(lz LazyCheckpointer, spec fsm.WorkloadSpec, rec fsm.CheckpointRecord) (*os.Process, *LazyRestore, error) {
	c, err := s.store.Get(spec.ID, rec.Seq)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: checkpoint #%d of %s is not in this node's store: %v", ErrRestore, rec.Seq, spec.ID, err)
	}
	if err := s.store.Verify(c, rec.Digest); err != nil {
		return nil, nil, fmt.Errorf("%w: refusing checkpoint #%d of %s: %v", ErrRestore, rec.Seq, spec.ID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkpointTimeout)
	defer cancel()
	return lz.StartLazy(ctx, s.workload(spec, 0), c.FilesDir(), s.pagesOf(spec.ID, rec), true)
}

// forgetPrestart removes p from the prestarts; false when it was no
// longer there.
func (s *Supervisor) forgetPrestart(id string, p *prestart) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prestarts[id] != p {
		return false
	}
	delete(s.prestarts, id)
	return true
}

// errNoPrestart: no restore ahead of the grant matches the start.
var errNoPrestart = errors.New("no lazy restore prepared for this start")

// claimPrestart is a unit's start from `from`: the process restored
// ahead of the grant from that very checkpoint, waited for if its restore
// is still under way, or errNoPrestart after any other prestart of the
// workload is gone.
func (s *Supervisor) claimPrestart(ctx context.Context, id string, from *fsm.CheckpointRecord) (*prestart, error) {
	s.mu.Lock()
	p := s.prestarts[id]
	s.mu.Unlock()
	if p == nil {
		return nil, errNoPrestart
	}
	if from == nil || from.LazyFrom == "" || p.rec.Seq != from.Seq || p.rec.Digest != from.Digest {
		if s.forgetPrestart(id, p) {
			close(p.drop)
		}
		select {
		case <-p.gone:
			return nil, errNoPrestart
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case <-p.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.err != nil || s.prestarts[id] != p {
		return nil, errNoPrestart
	}
	delete(s.prestarts, id)
	close(p.claimed) // under s.mu: runPrestart, finding p gone, sees it
	return p, nil
}

// prestartPIDs lists the processes restored ahead of their grants; the
// caller holds s.mu.
func (s *Supervisor) prestartPIDsLocked() []int {
	var out []int
	for _, p := range s.prestarts {
		select {
		case <-p.ready:
			if p.proc != nil {
				out = append(out, p.proc.Pid)
			}
		default:
		}
	}
	return out
}
