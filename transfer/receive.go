package transfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// recvSession is one checkpoint being received. The goroutine of its
// control stream runs it (run, then end); the goroutines of its data
// streams feed it chunks through put.
type recvSession struct {
	srv    *Server
	id     transferID
	key    string // staging directory name
	peer   string
	name   string // "workload#seq"
	digest string
	enc    []byte // the manifest's canonical bytes
	st     recvStaging
	prev   *recvSession // the session this one superseded, or nil

	ctx    context.Context
	cancel context.CancelCauseFunc
	// complete is closed when the last needed chunk is written.
	complete chan struct{}
	// done is closed when the session has let go of its staging.
	done chan struct{}
	// lastChunk is when a chunk last arrived (unix nanoseconds).
	lastChunk atomic.Int64
	received  atomic.Int64 // chunks written from the network

	mu        sync.Mutex // guards the fields below
	closed    bool       // no more streams or chunks are admitted
	pending   []bool     // by global index: asked for and not yet received
	remaining int        // how many pending are true
	dups      map[uint32][]uint32
	streams   map[stream]struct{}
	writers   sync.WaitGroup // puts in progress; Add only while !closed
}

// errSuperseded ends a session when a new offer of the same checkpoint
// arrives (the old sender is presumably gone).
var errSuperseded = fmt.Errorf("%w: a newer offer of the same checkpoint took over", ErrInterrupted)

// errSessionOver is put's answer once the session has ended.
var errSessionOver = errors.New("transfer session is over")

// admit checks an offer and registers its session. It returns a nil
// session and no error when the store holds the checkpoint sealed
// already, with the same digest.
func (s *Server) admit(peer string, o offer) (*recvSession, error) {
	name := fmt.Sprintf("%s#%d", o.workload, o.seq)
	m, err := checkOffer(o)
	if err != nil {
		return nil, fmt.Errorf("offer of %s: %w", name, err)
	}
	if s.cfg.Accept != nil {
		if err := s.cfg.Accept(peer, m, o.digest); err != nil {
			return nil, fmt.Errorf("%w: offer of %s from %s: %w", ErrRefused, name, peer, err)
		}
	}
	if sealed, err := s.sealedAlready(m, o.digest); sealed || err != nil {
		return nil, err
	}
	rs := &recvSession{
		srv: s, key: recvStagingName(o.workload, o.seq, o.digest), peer: peer, name: name,
		digest: o.digest, enc: bytes.Clone(o.manifest),
		complete: make(chan struct{}), done: make(chan struct{}), streams: make(map[stream]struct{}),
	}
	rs.st = recvStaging{top: filepath.Join(s.cfg.Store.root, stagingName, rs.key), m: m, locs: chunkLocs(m)}
	rs.st.files = filepath.Join(rs.st.top, filesName)
	if _, err := rand.Read(rs.id[:]); err != nil {
		return nil, err
	}
	rs.ctx, rs.cancel = context.WithCancelCause(s.ctx)
	if err := s.register(rs); err != nil {
		rs.cancel(err)
		return nil, err
	}
	return rs, nil
}

// checkOffer parses the offered manifest and checks it against the rest
// of the offer.
func checkOffer(o offer) (*Manifest, error) {
	m, err := ParseManifest(o.manifest)
	if err != nil {
		return nil, err
	}
	if d := digestOf(o.manifest); d != o.digest {
		return nil, fmt.Errorf("%w: offered digest %s, but the manifest hashes to %s", ErrDigestMismatch, o.digest, d)
	}
	if enc, err := m.Encode(); err != nil || !bytes.Equal(enc, o.manifest) {
		return nil, fmt.Errorf("%w: the manifest is not in canonical form", ErrBadManifest)
	}
	if m.Workload != o.workload || m.Seq != o.seq {
		return nil, fmt.Errorf("%w: the manifest is of %s#%d", ErrBadManifest, m.Workload, m.Seq)
	}
	if m.ChunkSize > MaxChunkData {
		return nil, fmt.Errorf("%w: chunk size %d, more than the %d a transfer carries", ErrBadManifest, m.ChunkSize, MaxChunkData)
	}
	return m, nil
}

// sealedAlready reports whether the store holds the checkpoint with this
// digest; holding it with another digest is ErrExists.
func (s *Server) sealedAlready(m *Manifest, digest string) (bool, error) {
	c, err := s.cfg.Store.Get(m.Workload, m.Seq)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case errors.Is(err, ErrCorrupt):
		return false, fmt.Errorf("%w: %s#%d is here already, unreadable: %v", ErrExists, m.Workload, m.Seq, err)
	case err != nil:
		return false, err
	case c.Digest != digest:
		return false, fmt.Errorf("%w: %s#%d is sealed here with digest %s, not %s", ErrExists, m.Workload, m.Seq, c.Digest, digest)
	}
	return true, nil
}

// run receives the checkpoint: it takes over the staging directory,
// works out what is missing, asks for it, waits until it is in and seals
// the checkpoint. ctrl is the control stream.
func (rs *recvSession) run(ctrl stream) error {
	if rs.prev != nil {
		select {
		case <-rs.prev.done:
		case <-rs.ctx.Done():
			return context.Cause(rs.ctx)
		}
		if sealed, err := rs.srv.sealedAlready(rs.st.m, rs.digest); sealed || err != nil {
			return err
		}
	}
	nd, err := rs.prepare()
	if err != nil {
		return fmt.Errorf("prepare %s: %w", rs.name, err)
	}
	rs.srv.log.Info("receiving checkpoint", "checkpoint", rs.name, "peer", rs.peer, "transfer", rs.id,
		"chunks", nd.chunks, "local", nd.local, "resumed", nd.resumed, "needed", len(nd.needed))
	ctrl.SetWriteDeadline(time.Now().Add(rs.srv.cfg.IdleTimeout))
	if err := WriteFrame(ctrl, FrameNeed, nd.append(nil)); err != nil {
		return streamError("write NEED", err)
	}
	if len(nd.needed) > 0 {
		rs.srv.spawn(func() { rs.watch(ctrl) })
		if err := rs.wait(); err != nil {
			return err
		}
	}
	if _, err := rs.st.seal(rs.srv.cfg.Store, rs.enc); err != nil {
		return fmt.Errorf("seal received %s: %w", rs.name, err)
	}
	return nil
}

// localLookupBytes: a checkpoint smaller than this is received whole
// rather than looked up in the store's earlier checkpoints (reading their
// manifests and copying the chunks found costs more than its bytes on the
// wire; a lazy final checkpoint is about 80 KiB).
const localLookupBytes = 1 << 20

// prepare creates or takes over the staging directory and fills what it
// can without the network: chunks an interrupted attempt wrote, chunks
// that are all zeros, chunks of the store's earlier checkpoints of the
// workload (for one of at least localLookupBytes). It returns the NEED
// for the rest.
func (rs *recvSession) prepare() (need, error) {
	nd := need{id: rs.id, chunks: uint32(len(rs.st.locs))}
	resumed, err := rs.st.create()
	if err != nil {
		return nd, err
	}
	have := make([]bool, len(rs.st.locs))
	if resumed {
		n, err := rs.st.rehash(have)
		if err != nil {
			return nd, err
		}
		nd.resumed = uint32(n)
	}
	nd.local = uint32(rs.st.markZeros(have))
	if rs.st.m.Bytes() >= localLookupBytes {
		refs, err := rs.srv.cfg.Store.Chunks(rs.st.m.Workload)
		if err != nil {
			rs.srv.log.Warn("cannot index earlier checkpoints; receiving every chunk", "checkpoint", rs.name, "err", err)
		}
		n, err := rs.st.copyLocal(refs, have)
		if err != nil {
			return nd, err
		}
		nd.local += uint32(n)
	}
	rs.pending = make([]bool, len(have))
	rs.dups = make(map[uint32][]uint32)
	first := make(map[string]uint32)
	for g, ok := range have {
		if ok {
			continue
		}
		_, _, c := rs.st.chunk(uint32(g))
		if r, dup := first[c.Hash]; dup {
			rs.dups[r] = append(rs.dups[r], uint32(g))
			continue
		}
		first[c.Hash] = uint32(g)
		rs.pending[g] = true
		nd.needed = append(nd.needed, uint32(g))
	}
	rs.remaining = len(nd.needed)
	rs.lastChunk.Store(time.Now().UnixNano())
	return nd, nil
}

// wait waits until every needed chunk is written, the session fails, or
// no chunk has come for the idle timeout.
func (rs *recvSession) wait() error {
	idle := rs.srv.cfg.IdleTimeout
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		select {
		case <-rs.complete:
			return nil
		case <-rs.ctx.Done():
			return context.Cause(rs.ctx)
		case <-timer.C:
			quiet := time.Since(time.Unix(0, rs.lastChunk.Load()))
			if quiet >= idle {
				return fmt.Errorf("%w: no chunk came for %v", ErrInterrupted, quiet.Round(time.Millisecond))
			}
			timer.Reset(idle - quiet)
		}
	}
}

// watch reads the control stream, where the client sends nothing after
// OFFER, to notice at once when the client goes away. It returns when
// the stream is closed.
func (rs *recvSession) watch(ctrl stream) {
	var b [1]byte
	ctrl.SetReadDeadline(time.Time{})
	if _, err := ctrl.Read(b[:]); err != nil {
		rs.fail(streamError("control stream", err))
		return
	}
	rs.fail(fmt.Errorf("%w: data on the control stream after OFFER", ErrProtocol))
}

// fail ends the session with err (the first failure wins).
func (rs *recvSession) fail(err error) { rs.cancel(err) }

// addStream admits a data stream, or reports that the session is over.
func (rs *recvSession) addStream(st stream) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed {
		return false
	}
	rs.streams[st] = struct{}{}
	return true
}

func (rs *recvSession) removeStream(st stream) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.streams, st)
}

// put verifies chunk g against the manifest and writes it (and every
// other chunk with the same hash) into the staging.
func (rs *recvSession) put(g uint32, data []byte) error {
	rs.mu.Lock()
	if rs.closed {
		rs.mu.Unlock()
		return errSessionOver
	}
	if int(g) >= len(rs.pending) || !rs.pending[g] {
		rs.mu.Unlock()
		return fmt.Errorf("%w: chunk %d of %s was not asked for, or came twice", ErrProtocol, g, rs.name)
	}
	rs.pending[g] = false
	rs.writers.Add(1)
	rs.mu.Unlock()
	defer rs.writers.Done()

	f, k, c := rs.st.chunk(g)
	if int64(len(data)) != c.Size || sumHex(data) != c.Hash {
		return &CorruptError{Checkpoint: rs.name, Path: filesName + "/" + f.Path, Chunk: k,
			Problem: "sha256 mismatch: the bytes received are not those of the manifest (tampered with or damaged at the sender or on the way)"}
	}
	for _, t := range append([]uint32{g}, rs.dups[g]...) {
		if err := rs.st.write(t, data); err != nil {
			return fmt.Errorf("write chunk %d of %s: %w", t, rs.name, err)
		}
	}
	rs.lastChunk.Store(time.Now().UnixNano())
	n := rs.received.Add(1)
	if h := rs.srv.hooks.chunkWritten; h != nil {
		h(n)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.remaining--; rs.remaining == 0 {
		close(rs.complete)
	}
	return nil
}

// end tears the session down after run: no more chunks, data streams
// dropped if it failed, writes drained; then the staging is deleted,
// unless the transfer was interrupted and may resume (or it was sealed
// and is gone anyway), and the session is unregistered.
func (rs *recvSession) end(err error) {
	rs.mu.Lock()
	rs.closed = true
	streams := make([]stream, 0, len(rs.streams))
	for st := range rs.streams {
		streams = append(streams, st)
	}
	rs.mu.Unlock()
	if err != nil {
		rs.cancel(err)
		for _, st := range streams {
			st.Abort()
		}
	}
	rs.writers.Wait()
	switch {
	case err == nil:
	case errors.Is(err, ErrInterrupted):
		if terr := touch(rs.st.top, time.Now()); terr != nil && !errors.Is(terr, fs.ErrNotExist) {
			rs.srv.log.Warn("cannot touch resumable staging", "dir", rs.st.top, "err", terr)
		}
	default:
		if rerr := os.RemoveAll(rs.st.top); rerr != nil {
			rs.srv.log.Error("cannot remove staging of a failed transfer", "dir", rs.st.top, "err", rerr)
		}
	}
	rs.cancel(errSessionOver)
	rs.srv.unregister(rs)
	close(rs.done)
}
