package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
)

// The page relay stands between CRIU's lazy-pages daemon and the old
// holder's page server, and fetches ahead. Its connection to the page
// server is open before the restore begins (predial.go), and it asks at
// once for the runs of the checkpoint's hot plan (hotPlan, hotpages.go: the small
// extents of the pagemap, where the runtime's data, the stacks and the
// heap's live spans lie; bulk data lies in long ones), which the restore
// takes in as present pages (hotpages.go). What it has not taken, the
// relay gives the daemon when asked.
//
// The daemon's asks are answered in the order it sent them (it reads
// answers in that order), each from the pages here, waiting for the page
// server where a page is still on its way or was never asked for. An
// answer may hold fewer pages than asked for, as the page server's own
// may: the daemon asks again for the rest. So no ask to the page server is
// longer than askPages: a fault waits behind at most one of the daemon's
// background asks (and, until the hot plan is in, behind the hot plan).
// Every page is asked of the page server once.
//
// The protocol (CRIU 4.2, seen on the wire): every message starts with a
// 32-byte header, little-endian: u32 command, 4 bytes of padding, u64
// page count, u64 address, u64 destination (the process's PID in its
// namespace: the id of its pagemap image). The daemon asks with
// PS_IOV_GET; the page server answers with a header (the pages it sends,
// from that address, at most to the end of the pagemap's run) and the
// pages. Anything else the daemon sends ends the relaying: the relay waits
// for what it asked, then copies both ways.

const (
	psHeaderSize = 32
	psIOVGet     = 7
	psPageSize   = 4096
	// widenPages is how many pages a fault's ask (fewer pages) fetches,
	// within its run: the pages a resumed process needs lie close together.
	widenPages = 16
	// askPages bounds one ask to the page server (1 MiB).
	askPages = 256
)

// psHeader is one message header of the page-server protocol.
type psHeader struct {
	cmd, pad  uint32
	nr, vaddr uint64
	dst       uint64
}

func parsePS(b []byte) psHeader {
	return psHeader{cmd: binary.LittleEndian.Uint32(b), pad: binary.LittleEndian.Uint32(b[4:]),
		nr: binary.LittleEndian.Uint64(b[8:]), vaddr: binary.LittleEndian.Uint64(b[16:]), dst: binary.LittleEndian.Uint64(b[24:])}
}

func (h psHeader) put(b []byte) {
	binary.LittleEndian.PutUint32(b, h.cmd)
	binary.LittleEndian.PutUint32(b[4:], h.pad)
	binary.LittleEndian.PutUint64(b[8:], h.nr)
	binary.LittleEndian.PutUint64(b[16:], h.vaddr)
	binary.LittleEndian.PutUint64(b[24:], h.dst)
}

// RelayStats counts what a page relay did.
type RelayStats struct {
	Asks       int // the daemon's asks for pages
	Ahead      int // of them, for a page already here when asked
	Prefetched int // pages the relay fetched ahead of any ask
	Hot        int // of them, pages the restore took in (hotpages.go)
}

// errRelayEnded stops a relay whose daemon never came or has gone.
var errRelayEnded = errors.New("page relay ended")

// pageRelay fetches ahead for one restore (see above).
type pageRelay struct {
	server io.ReadWriteCloser
	plan   lazyPlan

	wmu      sync.Mutex    // orders the asks written to server and their place in inflight
	inflight chan upAsk    // asks the page server has yet to answer, in order
	closed   bool          // guarded by wmu and mu: inflight is closed, no more asks
	stop     chan struct{} // closed at the first failure or the end
	stopOnce sync.Once

	mu     sync.Mutex           // guards what follows
	cond   *sync.Cond           // signalled when pages arrive, the hot wait ends or the relay stops
	state  map[uint64]pageState // of every page asked of the page server
	here   map[uint64][]byte    // pages come back and not yet given to the daemon
	hot    []lazyRun            // the hot plan
	waited bool                 // takeHot's wait is over
	form   psHeader             // the page server's answer header: the form of ours
	err    error                // why the relay stopped
	stats  RelayStats

	fetched sync.WaitGroup // the reader of the page server's answers and the prefetcher
}

// pageState is where a page asked of the page server is.
type pageState uint8

const (
	pageAsked pageState = iota + 1 // on its way, or here
	pageGiven                      // given to the daemon
)

// upAsk is one ask to the page server.
type upAsk struct {
	vaddr, nr uint64
	prefetch  bool
}

// startRelay starts fetching ahead from the page server on server, which
// the relay owns from then on; serve gives it the daemon.
func startRelay(server io.ReadWriteCloser, plan lazyPlan) *pageRelay {
	return startRelayOf(server, plan, hotPlan(plan.runs))
}

// startRelayOf is startRelay fetching ahead the runs in hot.
func startRelayOf(server io.ReadWriteCloser, plan lazyPlan, hot []lazyRun) *pageRelay {
	p := &pageRelay{server: server, plan: plan, hot: hot, inflight: make(chan upAsk, 1<<12), stop: make(chan struct{}),
		state: map[uint64]pageState{}, here: map[uint64][]byte{}}
	p.cond = sync.NewCond(&p.mu)
	p.fetched.Add(2)
	go p.readServer()
	go p.prefetch()
	return p
}

// fail stops the relay for err (the first reason counts), closing the
// page server's connection so that nothing waits on it.
func (p *pageRelay) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	p.stopOnce.Do(func() { close(p.stop) })
	_ = p.server.Close()
}

// end stops the relay and waits for its goroutines; the stats are final.
func (p *pageRelay) end() RelayStats {
	p.fail(errRelayEnded)
	p.fetched.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// ask asks the page server for the pages from v on that it has not been
// asked for, at most n, and returns how many it asked for (0 when v was
// asked already). It fails once the relaying has ended.
func (p *pageRelay) ask(v, n uint64, prefetch bool) (uint64, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.mu.Lock()
	if p.err != nil || p.closed {
		err := p.err
		p.mu.Unlock()
		if err == nil {
			err = errRelayEnded
		}
		return 0, err
	}
	var k uint64
	for k < n && p.state[v+k*psPageSize] == 0 {
		p.state[v+k*psPageSize] = pageAsked
		k++
	}
	p.mu.Unlock()
	if k == 0 {
		return 0, nil
	}
	select {
	case p.inflight <- upAsk{vaddr: v, nr: k, prefetch: prefetch}:
	default:
		err := errors.New("page relay: too many asks in flight")
		p.fail(err)
		return 0, err
	}
	b := make([]byte, psHeaderSize)
	psHeader{cmd: psIOVGet, nr: k, vaddr: v, dst: p.plan.dst}.put(b)
	if _, err := p.server.Write(b); err != nil {
		p.fail(err)
		return 0, err
	}
	return k, nil
}

// readServer takes the page server's answers, in the order of the asks,
// until the asks end or the relay stops.
func (p *pageRelay) readServer() {
	defer p.fetched.Done()
	head := make([]byte, psHeaderSize)
	for {
		var a upAsk
		select {
		case <-p.stop:
			return
		case next, ok := <-p.inflight:
			if !ok {
				return
			}
			a = next
		}
		if _, err := io.ReadFull(p.server, head); err != nil {
			p.fail(err)
			return
		}
		h := parsePS(head)
		if h.vaddr != a.vaddr || h.nr == 0 || h.nr > a.nr {
			p.fail(fmt.Errorf("page relay: the page server answered %d pages at %#x to an ask of %d at %#x", h.nr, h.vaddr, a.nr, a.vaddr))
			return
		}
		data := make([]byte, h.nr*psPageSize)
		if _, err := io.ReadFull(p.server, data); err != nil {
			p.fail(err)
			return
		}
		p.mu.Lock()
		p.form = h
		for i := range h.nr {
			p.here[a.vaddr+i*psPageSize] = data[i*psPageSize : (i+1)*psPageSize]
		}
		for i := h.nr; i < a.nr; i++ { // came back short: to be asked again
			delete(p.state, a.vaddr+i*psPageSize)
		}
		if a.prefetch {
			p.stats.Prefetched += int(h.nr)
		}
		p.cond.Broadcast()
		p.mu.Unlock()
	}
}

// runOf is the run that holds v, if any.
func (p *pageRelay) runOf(v uint64) (lazyRun, bool) {
	i, found := slices.BinarySearchFunc(p.plan.runs, v, func(r lazyRun, v uint64) int {
		switch {
		case r.end <= v:
			return -1
		case r.start > v:
			return 1
		}
		return 0
	})
	if !found {
		return lazyRun{}, false
	}
	return p.plan.runs[i], true
}

// fetchFor asks the page server for what the daemon's ask h needs first,
// unless it is here or on its way: a fault's ask widened to widenPages
// within its run, any ask at most askPages.
func (p *pageRelay) fetchFor(h psHeader) error {
	n := min(h.nr, askPages)
	if r, ok := p.runOf(h.vaddr); ok {
		n = min(max(n, widenPages), (r.end-h.vaddr)/psPageSize)
	}
	_, err := p.ask(h.vaddr, n, false)
	return err
}

// serve relays for the daemon's connection until it or the page server's
// ends; then the relay has ended.
func (p *pageRelay) serve(daemon net.Conn) RelayStats {
	asks := make(chan psHeader, 1<<12)
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		if err := p.answer(daemon, asks); err != nil {
			p.fail(err)
			_ = daemon.Close()
		}
	}()
	defer closeOnStop(p.stop, daemon)()
	last, err := p.readDaemon(daemon, asks)
	close(asks)
	<-answered
	if err == nil {
		p.handOver(daemon, last)
	}
	_ = daemon.Close()
	return p.end()
}

// closeOnStop closes c when stop is closed, until the returned func is
// called.
func closeOnStop(stop <-chan struct{}, c io.Closer) func() {
	done := make(chan struct{})
	go func() {
		select {
		case <-stop:
			_ = c.Close()
		case <-done:
		}
	}()
	return func() { close(done) }
}

// readDaemon reads the daemon's asks, asks the page server for what is
// neither here nor on its way, and queues each ask for its answer. It
// returns the header of the first message that is not an ask (nil error),
// or why it could not read on.
func (p *pageRelay) readDaemon(daemon io.Reader, asks chan<- psHeader) ([]byte, error) {
	buf := make([]byte, psHeaderSize)
	for {
		if _, err := io.ReadFull(daemon, buf); err != nil {
			return nil, err
		}
		h := parsePS(buf)
		if h.cmd != psIOVGet || h.nr == 0 {
			return buf, nil
		}
		if h.dst != p.plan.dst {
			return nil, fmt.Errorf("page relay: an ask for process %d, the checkpoint's is %d", h.dst, p.plan.dst)
		}
		p.mu.Lock()
		p.stats.Asks++
		if _, ok := p.here[h.vaddr]; ok {
			p.stats.Ahead++
		}
		p.mu.Unlock()
		if err := p.fetchFor(h); err != nil {
			return nil, err
		}
		select {
		case asks <- h:
		default:
			return nil, errors.New("page relay: too many asks from the daemon")
		}
	}
}

// answer gives the daemon its answers in the order of its asks.
func (p *pageRelay) answer(daemon io.Writer, asks <-chan psHeader) error {
	for h := range asks {
		msg, err := p.await(h)
		if err != nil {
			return err
		}
		if _, err := daemon.Write(msg); err != nil {
			return err
		}
	}
	return nil
}

// await waits until the first page h asks for is here and returns the
// answer: the pages from there that are here, at most h.nr, given away.
func (p *pageRelay) await(h psHeader) ([]byte, error) {
	p.mu.Lock()
	for {
		if p.err != nil {
			err := p.err
			p.mu.Unlock()
			return nil, err
		}
		if _, ok := p.here[h.vaddr]; ok {
			break
		}
		switch p.state[h.vaddr] {
		case pageAsked: // on its way
			p.cond.Wait()
			continue
		case pageGiven: // asked for again: the page server answers again
			delete(p.state, h.vaddr)
		}
		// Never asked, or the ask that covered it came back short.
		p.mu.Unlock()
		if err := p.fetchFor(h); err != nil {
			return nil, err
		}
		p.mu.Lock()
	}
	defer p.mu.Unlock()
	var n uint64
	for n < h.nr {
		if _, ok := p.here[h.vaddr+n*psPageSize]; !ok {
			break
		}
		n++
	}
	out := p.form
	out.nr, out.vaddr, out.dst = n, h.vaddr, h.dst
	msg := make([]byte, psHeaderSize, psHeaderSize+n*psPageSize)
	out.put(msg)
	for i := range n {
		v := h.vaddr + i*psPageSize
		msg = append(msg, p.here[v]...)
		delete(p.here, v)
		p.state[v] = pageGiven
	}
	return msg, nil
}

// handOver ends the relaying at the daemon's first message that is not
// an ask (the last, head): no more asks; once the page server has answered
// all it was asked, head goes to it and the relay copies both ways.
func (p *pageRelay) handOver(daemon net.Conn, head []byte) {
	p.wmu.Lock()
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	close(p.inflight)
	p.wmu.Unlock()
	p.fetched.Wait() // the prefetcher has stopped, the answers are all in
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	if err != nil {
		return
	}
	if _, err := p.server.Write(head); err != nil {
		return
	}
	splice(daemon, p.server)
}
