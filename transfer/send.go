package transfer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// attempt makes one try at sending: OFFER on a control stream, then the
// chunks NEED asks for on the data streams, then DONE.
func (c *Client) attempt(ctx context.Context, addr, peerName string, ck *Checkpoint, o offer, stats *SendStats) error {
	var links []link
	defer func() {
		for _, l := range links {
			l.close()
		}
	}()
	l0, err := c.dial(ctx, addr, peerName)
	if err != nil {
		return c.failure(ctx, fmt.Errorf("dial: %w", err))
	}
	links = append(links, l0)
	ctrl, err := l0.open(ctx)
	if err != nil {
		return c.failure(ctx, fmt.Errorf("open control stream: %w", err))
	}
	ctrl.SetWriteDeadline(time.Now().Add(c.cfg.IdleTimeout))
	if err := WriteFrame(ctrl, FrameOffer, o.append(nil)); err != nil {
		return c.failure(ctx, fmt.Errorf("send OFFER: %w", err))
	}
	t, p, err := readMessage(ctrl)
	if err != nil {
		return c.failure(ctx, fmt.Errorf("read the answer to OFFER: %w", err))
	}
	switch t {
	case FrameDone, FrameError:
		stats.ChunksSent, stats.BytesSent, stats.Resumed, stats.DataTook = 0, 0, false, 0
		return finalAnswer(t, p, peerName, o.digest)
	case FrameNeed:
	default:
		return fmt.Errorf("%w: %v in answer to OFFER", ErrProtocol, t)
	}
	nd, err := decodeNeed(p)
	if err != nil {
		return err
	}
	snd := newChunkSender(ck, nd.needed)
	if int(nd.chunks) != len(snd.locs) {
		return fmt.Errorf("%w: NEED counts %d chunks, the manifest has %d", ErrProtocol, nd.chunks, len(snd.locs))
	}
	stats.ChunksSent, stats.BytesSent, stats.Resumed, stats.DataTook = len(nd.needed), snd.bytes(), nd.resumed > 0, 0
	if len(nd.needed) == 0 {
		return c.awaitFinal(ctx, ctrl, peerName, o.digest)
	}
	// More QUIC connections spread a large transfer over more cores; a
	// small one would only wait for their handshakes.
	for len(links) < c.cfg.Conns && c.cfg.Network == NetworkQUIC && snd.bytes() >= oneConnBytes {
		l, err := c.dial(ctx, addr, peerName)
		if err != nil {
			return c.failure(ctx, fmt.Errorf("dial connection %d: %w", len(links)+1, err))
		}
		links = append(links, l)
	}
	return c.ship(ctx, links, ctrl, nd.id, snd, peerName, o.digest, stats)
}

// oneConnBytes: a transfer that needs less than this goes over the first
// connection alone (Conns is for large ones).
const oneConnBytes = 4 << 20

// failure is what an attempt returns for err: ErrInterrupted with ctx's
// error if ctx ended it, else err classified by netError.
func (c *Client) failure(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrInterrupted, ctx.Err())
	}
	return netError(err)
}

// streamResult is how a data stream ended; final errors (a local read
// failure, the server's ERROR) end the attempt at once, unless they say
// the session was interrupted: then the control stream tells why.
type streamResult struct {
	err   error
	final bool
}

// ship sends the chunks on Streams data streams spread over links and
// waits for the server's DONE or ERROR on ctrl.
func (c *Client) ship(ctx context.Context, links []link, ctrl stream, id transferID, snd *chunkSender, peer, digest string, stats *SendStats) error {
	start := time.Now()
	shipCtx, stop := context.WithCancel(ctx)
	results := make(chan streamResult, c.cfg.Streams)
	final := make(chan error, 1)
	var wg sync.WaitGroup
	defer func() { // stop every goroutine before returning
		stop()
		for _, l := range links {
			l.close()
		}
		wg.Wait()
	}()
	for i := range c.cfg.Streams {
		l := links[i%len(links)]
		wg.Go(func() { results <- c.runStream(shipCtx, l, id, snd, peer) })
	}
	wg.Go(func() { final <- readFinal(ctrl, peer, digest) })
	var lost error
	for running := c.cfg.Streams; ; {
		select {
		case err := <-final:
			if running > 0 { // the last streams' ends crossed DONE
				stats.DataTook = time.Since(start)
			}
			var re *remoteError
			if err != nil && lost != nil && !errors.As(err, &re) {
				err = fmt.Errorf("%w (a data stream broke first: %v)", err, lost)
			}
			return c.failure(ctx, err)
		case r := <-results:
			if running--; running == 0 {
				stats.DataTook = time.Since(start)
			}
			if r.err != nil && r.final && !errors.Is(r.err, ErrInterrupted) {
				return r.err
			}
			if r.err != nil && lost == nil {
				// The control stream says why, or breaks as well.
				lost = r.err
				ctrl.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
			}
		case <-ctx.Done():
			return c.failure(ctx, ctx.Err())
		}
	}
}

// awaitFinal waits for DONE or ERROR on ctrl.
func (c *Client) awaitFinal(ctx context.Context, ctrl stream, peer, digest string) error {
	final := make(chan error, 1)
	go func() { final <- readFinal(ctrl, peer, digest) }()
	select {
	case err := <-final:
		return c.failure(ctx, err)
	case <-ctx.Done():
		ctrl.Abort()
		<-final
		return c.failure(ctx, ctx.Err())
	}
}

// readFinal reads the server's last word on the control stream.
func readFinal(ctrl stream, peer, digest string) error {
	t, p, err := readMessage(ctrl)
	if err != nil {
		return fmt.Errorf("control stream: %w", err)
	}
	return finalAnswer(t, p, peer, digest)
}

// finalAnswer turns DONE into nil and ERROR into its error.
func finalAnswer(t FrameType, p []byte, peer, digest string) error {
	switch t {
	case FrameDone:
		d, err := decodeDone(p)
		if err != nil {
			return err
		}
		if d != digest {
			return fmt.Errorf("%w: the receiver sealed digest %s, the offer was %s", ErrDigestMismatch, d, digest)
		}
		return nil
	case FrameError:
		e, err := decodeError(p)
		if err != nil {
			return err
		}
		return &remoteError{peer: peer, msg: e}
	}
	return fmt.Errorf("%w: %v where DONE or ERROR was due", ErrProtocol, t)
}

// maxSkipped bounds the ignorable frames readMessage passes over.
const maxSkipped = 64

// readMessage reads the next frame this version knows, skipping
// ignorable ones.
func readMessage(r io.Reader) (FrameType, []byte, error) {
	for range maxSkipped {
		t, p, err := ReadFrame(r, nil)
		if err != nil || t.Known() {
			return t, p, err
		}
	}
	return 0, nil, fmt.Errorf("%w: more than %d unknown frames in a row", ErrProtocol, maxSkipped)
}

// runStream opens a data stream, joins the session and sends chunks
// until none are left.
func (c *Client) runStream(ctx context.Context, l link, id transferID, snd *chunkSender, peer string) streamResult {
	// A stream opens only with a chunk in hand: the session cannot be
	// over before that chunk is in, so its HELLO always finds it.
	g, ok := snd.take()
	if !ok {
		return streamResult{}
	}
	st, err := l.open(ctx)
	if err != nil {
		return streamResult{err: c.failure(ctx, fmt.Errorf("open data stream: %w", err))}
	}
	defer st.Close()
	st.SetWriteDeadline(time.Now().Add(c.cfg.IdleTimeout))
	if err := WriteFrame(st, FrameHello, id[:]); err != nil {
		return c.salvage(st, peer, fmt.Errorf("send HELLO: %w", err))
	}
	bp := chunkFramePool.Get().(*[]byte)
	defer chunkFramePool.Put(bp)
	var fh fileHandle
	defer fh.close()
	for ; ok; g, ok = snd.take() {
		if ctx.Err() != nil {
			return streamResult{err: c.failure(ctx, ctx.Err())}
		}
		frame, err := snd.frame(g, *bp, &fh)
		if err != nil {
			return streamResult{err: err, final: true}
		}
		st.SetWriteDeadline(time.Now().Add(c.cfg.IdleTimeout))
		if _, err := st.Write(frame); err != nil {
			return c.salvage(st, peer, fmt.Errorf("send chunk %d: %w", g, err))
		}
	}
	if err := st.CloseWrite(); err != nil {
		return streamResult{err: c.failure(ctx, fmt.Errorf("end data stream: %w", err))}
	}
	// The server ends its side once it has read everything.
	st.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
	t, p, err := ReadFrame(st, nil)
	switch {
	case err == io.EOF:
		return streamResult{}
	case err != nil:
		return streamResult{err: c.failure(ctx, fmt.Errorf("data stream: %w", err))}
	}
	err = finalAnswer(t, p, peer, "")
	return streamResult{err: err, final: true}
}

// salvage looks, after a failed write, for the ERROR the server may have
// sent on the stream before it stopped reading; without one, err is a
// lost connection.
func (c *Client) salvage(st stream, peer string, err error) streamResult {
	st.SetReadDeadline(time.Now().Add(min(c.cfg.IdleTimeout, 2*time.Second)))
	if t, p, rerr := ReadFrame(st, nil); rerr == nil && t == FrameError {
		return streamResult{err: finalAnswer(t, p, peer, ""), final: true}
	}
	return streamResult{err: netError(err)}
}

// chunkSender hands out the chunks to send to the data streams and reads
// them from the checkpoint's files.
type chunkSender struct {
	ck     *Checkpoint
	files  string // the checkpoint's files directory
	locs   []chunkLoc
	needed []uint32
	next   atomic.Int64 // index into needed of the next chunk to send
}

func newChunkSender(ck *Checkpoint, needed []uint32) *chunkSender {
	return &chunkSender{ck: ck, files: ck.FilesDir(), locs: chunkLocs(ck.Manifest), needed: needed}
}

// bytes is the size of the needed chunks together.
func (s *chunkSender) bytes() int64 {
	var n int64
	for _, g := range s.needed {
		if int(g) < len(s.locs) {
			l := s.locs[g]
			n += s.ck.Manifest.Files[l.file].Chunks[l.k].Size
		}
	}
	return n
}

// take returns the next chunk to send, or false when none are left.
func (s *chunkSender) take() (uint32, bool) {
	i := s.next.Add(1) - 1
	if i >= int64(len(s.needed)) {
		return 0, false
	}
	return s.needed[i], true
}

// fileHandle keeps the file a data stream last read open.
type fileHandle struct {
	idx int32
	f   *os.File
}

func (h *fileHandle) close() {
	if h.f != nil {
		h.f.Close()
		h.f = nil
	}
}

// frame reads chunk g into buf as a whole CHUNK frame and returns it.
func (s *chunkSender) frame(g uint32, buf []byte, fh *fileHandle) ([]byte, error) {
	l := s.locs[g]
	f := &s.ck.Manifest.Files[l.file]
	size := int(f.Chunks[l.k].Size)
	if fh.f == nil || fh.idx != l.file {
		fh.close()
		h, err := os.Open(nativePath(s.files, f.Path))
		if err != nil {
			return nil, &CorruptError{Checkpoint: s.ck.name(), Path: filesName + "/" + f.Path, Chunk: -1, Problem: err.Error(), Err: err}
		}
		fh.idx, fh.f = l.file, h
	}
	data := buf[FrameHeaderSize+4 : FrameHeaderSize+4+size]
	if n, err := fh.f.ReadAt(data, l.off); n < size {
		return nil, &CorruptError{Checkpoint: s.ck.name(), Path: filesName + "/" + f.Path, Chunk: int(l.k),
			Problem: fmt.Sprintf("the file is shorter than its manifest says (%v)", err), Err: err}
	}
	putFrameHeader(buf, FrameChunk, 4+size)
	binary.BigEndian.PutUint32(buf[FrameHeaderSize:], g)
	return buf[:FrameHeaderSize+4+size], nil
}
