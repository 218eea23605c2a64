package runtime

import (
	"context"
	"io"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// The page relay of a lazy move is dialed when the target accepts the
// offer of the lazy checkpoint, while the images are still on their way:
// the TLS handshake and the old holder's connection to its page server
// are then behind the target by the time it restores, and the relay
// fetches the hot pages from the start of the restore (hotpages.go).

// predial is one page relay dialed ahead of its restore.
type predial struct {
	seq  uint64
	done chan struct{} // closed when the dial has ended: conn or err
	conn io.ReadWriteCloser
	err  error
	// taken is closed when a restore took it; drop when it is to be
	// closed unused.
	taken, drop chan struct{}
}

// PredialPages dials the page relay of lazy checkpoint rec of spec, whose
// offer this node has just accepted, for the restore that follows its
// receipt (pagesOf takes it). It returns at once. One that no restore
// takes within Config.PrestartTTL is closed, as is one that a dial for
// another checkpoint of the workload replaces. It does nothing when this
// node cannot restore lazily, or is fenced or closed.
func (s *Supervisor) PredialPages(spec fsm.WorkloadSpec, rec fsm.CheckpointRecord) {
	if _, ok := s.lazyRestorer(spec, rec); !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.fenced {
		return
	}
	old := s.predials[spec.ID]
	if old != nil && old.seq == rec.Seq {
		return
	}
	if old != nil {
		close(old.drop)
	}
	d := &predial{seq: rec.Seq, done: make(chan struct{}), taken: make(chan struct{}), drop: make(chan struct{})}
	s.predials[spec.ID] = d
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runPredial(spec.ID, rec, d)
	}()
}

// runPredial dials d and keeps the connection until a restore takes it,
// or closes it.
func (s *Supervisor) runPredial(id string, rec fsm.CheckpointRecord, d *predial) {
	ctx, cancel := context.WithTimeout(context.Background(), pagesDialTimeout)
	d.conn, d.err = s.cluster.Pages(ctx, rec.LazyFrom, id, rec.Seq)
	cancel()
	close(d.done)
	if s.heldFor(d.taken, d.drop) {
		return
	}
	if s.takePredial(id, d.seq) != d && !isClosed(d.drop) {
		return // taken meanwhile
	}
	if d.conn != nil {
		_ = d.conn.Close()
	}
}

// pagesDialTimeout bounds a dial of the page relay ahead of its restore.
const pagesDialTimeout = 10 * time.Second

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// takePredial removes and returns the predial of checkpoint seq of
// workload id, or nil.
func (s *Supervisor) takePredial(id string, seq uint64) *predial {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.predials[id]
	if d == nil || d.seq != seq {
		return nil
	}
	delete(s.predials, id)
	return d
}

// pagesOf dials the page server of lazy checkpoint rec of workload id
// through the cluster, or takes the relay dialed ahead for it.
func (s *Supervisor) pagesOf(id string, rec fsm.CheckpointRecord) PageDialer {
	return func(ctx context.Context) (io.ReadWriteCloser, error) {
		if d := s.takePredial(id, rec.Seq); d != nil {
			close(d.taken)
			<-d.done
			if d.err == nil {
				s.log.Info("the lazy restore takes the page relay dialed at the offer", "workload", id, "seq", rec.Seq)
				return d.conn, nil
			}
			s.log.Warn("the page relay dialed ahead failed; dialing again", "workload", id, "seq", rec.Seq, "err", d.err)
		}
		return s.cluster.Pages(ctx, rec.LazyFrom, id, rec.Seq)
	}
}
