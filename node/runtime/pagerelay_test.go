package runtime

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakePageServer answers PS_IOV_GET asks with pages whose every 8 bytes
// hold the page's address, at most up to the end of the run that holds
// the address (as CRIU's page server stops at the end of a run), and
// records every header it got. Until release is closed (if set), it
// answers nothing.
type fakePageServer struct {
	runs    []lazyRun
	release chan struct{}
	mu      sync.Mutex
	got     []psHeader
}

func (f *fakePageServer) serve(c net.Conn) {
	defer c.Close()
	head := make([]byte, psHeaderSize)
	for {
		if _, err := io.ReadFull(c, head); err != nil {
			return
		}
		h := parsePS(head)
		f.mu.Lock()
		f.got = append(f.got, h)
		f.mu.Unlock()
		if h.cmd != psIOVGet {
			continue
		}
		if f.release != nil {
			<-f.release
		}
		n := h.nr
		for _, r := range f.runs {
			if r.start <= h.vaddr && h.vaddr < r.end {
				n = min(n, (r.end-h.vaddr)/psPageSize)
			}
		}
		out := psHeader{cmd: 0x40006, nr: n, vaddr: h.vaddr, dst: h.dst}
		out.put(head)
		msg := slices.Clone(head)
		for i := range n {
			msg = append(msg, fakePage(h.vaddr+i*psPageSize)...)
		}
		if _, err := c.Write(msg); err != nil {
			return
		}
	}
}

func (f *fakePageServer) headers() []psHeader {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// asked waits until the page server has got n headers, and returns them.
func (f *fakePageServer) asked(t *testing.T, n int) []psHeader {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := f.headers()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page server got %d asks, want %d: %+v", len(got), n, got)
		}
		time.Sleep(time.Millisecond)
	}
}

func fakePage(addr uint64) []byte {
	b := make([]byte, psPageSize)
	for i := 0; i < psPageSize; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], addr)
	}
	return b
}

// tcpPair is two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// relayRig is a relay between a fake page server and a test's daemon.
type relayRig struct {
	t      *testing.T
	srv    *fakePageServer
	rel    *pageRelay
	daemon net.Conn
	served chan struct{} // closed when the page server has read all
	done   chan RelayStats
}

const relayBase = 0x7f0000000000

func page(i uint64) uint64 { return relayBase + i*psPageSize }

// newRelayRig starts a relay of the runs for process dst 1, fetching at
// ahead the runs of their hot plan, or none if cold; the daemon connects
// when connect is called.
func newRelayRig(t *testing.T, runs []lazyRun, cold bool, release chan struct{}) *relayRig {
	g := &relayRig{t: t, srv: &fakePageServer{runs: runs, release: release}, served: make(chan struct{}),
		done: make(chan RelayStats, 1)}
	serverSide, relayRemote := tcpPair(t)
	go func() {
		defer close(g.served)
		g.srv.serve(serverSide)
	}()
	hot := hotPlan(runs)
	if cold {
		hot = nil
	}
	g.rel = startRelayOf(relayRemote, lazyPlan{runs: runs, dst: 1}, hot)
	t.Cleanup(func() {
		if release != nil {
			select {
			case <-release:
			default:
				close(release)
			}
		}
		g.rel.end()
		<-g.served
	})
	return g
}

// fetched waits until the relay holds n pages fetched ahead.
func (g *relayRig) fetched(n int) {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.rel.mu.Lock()
		got := g.rel.stats.Prefetched
		g.rel.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("the relay fetched %d pages ahead, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (g *relayRig) connect() {
	daemon, relayLocal := tcpPair(g.t)
	g.daemon = daemon
	go func() { g.done <- g.rel.serve(relayLocal) }()
}

func (g *relayRig) ask(vaddr, nr uint64) {
	g.t.Helper()
	b := make([]byte, psHeaderSize)
	psHeader{cmd: psIOVGet, nr: nr, vaddr: vaddr, dst: 1}.put(b)
	if _, err := g.daemon.Write(b); err != nil {
		g.t.Fatal(err)
	}
}

// answer reads the relay's next answer and checks it gives nr pages from
// vaddr, each the right one.
func (g *relayRig) answer(vaddr, nr uint64) {
	g.t.Helper()
	_ = g.daemon.SetReadDeadline(time.Now().Add(10 * time.Second))
	head := make([]byte, psHeaderSize)
	if _, err := io.ReadFull(g.daemon, head); err != nil {
		g.t.Fatalf("no answer for %d pages at %#x: %v", nr, vaddr, err)
	}
	if h := parsePS(head); h.nr != nr || h.vaddr != vaddr || h.dst != 1 || h.cmd != 0x40006 {
		g.t.Fatalf("answer %+v, want %d pages at %#x", h, nr, vaddr)
	}
	data := make([]byte, nr*psPageSize)
	if _, err := io.ReadFull(g.daemon, data); err != nil {
		g.t.Fatal(err)
	}
	for i := range nr {
		if !bytes.Equal(data[i*psPageSize:(i+1)*psPageSize], fakePage(vaddr+i*psPageSize)) {
			g.t.Fatalf("page %d of the answer at %#x is not the page at %#x", i, vaddr, vaddr+i*psPageSize)
		}
	}
}

// finish sends the daemon's closing message and returns what the page
// server got and the relay's stats.
func (g *relayRig) finish() ([]psHeader, RelayStats) {
	g.t.Helper()
	b := make([]byte, psHeaderSize)
	psHeader{cmd: 0x1024}.put(b)
	if _, err := g.daemon.Write(b); err != nil {
		g.t.Fatal(err)
	}
	g.daemon.Close()
	st := <-g.done
	<-g.served
	return g.srv.headers(), st
}

// noPageTwice fails if two asks cover the same page.
func noPageTwice(t *testing.T, got []psHeader) {
	t.Helper()
	seen := map[uint64]bool{}
	for _, h := range got {
		for i := range h.nr {
			v := h.vaddr + i*psPageSize
			if seen[v] {
				t.Fatalf("page %#x asked twice: %+v", v, got)
			}
			seen[v] = true
		}
	}
}

// TestPageRelayFetchesAhead: before the daemon comes, the relay asks the
// page server for the runs of the hot plan, the smallest first, each in one
// ask (no fault can wait behind it yet); the daemon's asks are then answered
// from what is here, in order, with the right pages, a long ask with all
// the pages here from its address; the daemon's closing message reaches
// the page server after the relay's asks.
func TestPageRelayFetchesAhead(t *testing.T) {
	runs := []lazyRun{{page(0), page(40)}, {page(100), page(103)}, {page(200), page(210)}}
	g := newRelayRig(t, runs, false, nil)
	got := g.srv.asked(t, 3)
	want := []psHeader{
		{cmd: psIOVGet, nr: 3, vaddr: page(100), dst: 1},
		{cmd: psIOVGet, nr: 10, vaddr: page(200), dst: 1},
		{cmd: psIOVGet, nr: 40, vaddr: page(0), dst: 1},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the page server got\n%+v\nwant\n%+v", got, want)
	}
	g.fetched(53)
	g.connect()
	g.ask(page(201), 1)
	g.ask(page(0), 40)
	g.ask(page(100), 1)
	g.ask(page(101), 2)
	g.answer(page(201), 1)
	g.answer(page(0), 40)
	g.answer(page(100), 1)
	g.answer(page(101), 2)
	got, st := g.finish()
	if len(got) != 4 || got[3].cmd != 0x1024 {
		t.Fatalf("the page server got %+v, want the three asks and the closing message", got)
	}
	if st != (RelayStats{Asks: 4, Ahead: 4, Prefetched: 53}) {
		t.Fatalf("stats %+v", st)
	}
}

// TestPageRelayAsksForWhatIsNotHere: with nothing fetched ahead, a
// fault's ask goes to the page server widened within its run; a long ask
// is answered with a part (at most askPages), and the rest when the daemon
// asks again; an ask across the end of a run gets what the run holds; a
// page given and asked for again is fetched again.
func TestPageRelayAsksForWhatIsNotHere(t *testing.T) {
	runs := []lazyRun{{page(0), page(600)}, {page(600), page(601)}, {page(900), page(910)}}
	g := newRelayRig(t, runs, true, nil)
	g.connect()
	g.ask(page(500), 1) // widened to 16
	g.answer(page(500), 1)
	g.ask(page(501), 1) // here since the last
	g.answer(page(501), 1)
	g.ask(page(0), 300) // a part: askPages
	g.answer(page(0), askPages)
	g.ask(page(908), 5) // the run ends at 910
	g.answer(page(908), 2)
	g.ask(page(501), 1) // given already: fetched again
	g.answer(page(501), 1)
	got, st := g.finish()
	want := []psHeader{
		{cmd: psIOVGet, nr: widenPages, vaddr: page(500), dst: 1},
		{cmd: psIOVGet, nr: askPages, vaddr: page(0), dst: 1},
		{cmd: psIOVGet, nr: 2, vaddr: page(908), dst: 1},
		{cmd: psIOVGet, nr: 1, vaddr: page(501), dst: 1},
		{cmd: 0x1024},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the page server got\n%+v\nwant\n%+v", got, want)
	}
	if st != (RelayStats{Asks: 5, Ahead: 1}) {
		t.Fatalf("stats %+v, want 5 asks, one for a page here", st)
	}
}

// TestPageRelayWaitsForThePageServer: an ask whose page is on its way is
// answered when it arrives, and the asks behind it after it, in order.
func TestPageRelayWaitsForThePageServer(t *testing.T) {
	release := make(chan struct{})
	g := newRelayRig(t, []lazyRun{{page(0), page(8)}, {page(10), page(12)}}, false, release)
	g.srv.asked(t, 1) // the run at 10, held
	g.connect()
	g.ask(page(10), 1)
	g.ask(page(0), 1)
	time.Sleep(20 * time.Millisecond)
	close(release)
	g.answer(page(10), 1)
	g.answer(page(0), 1)
	got, _ := g.finish()
	noPageTwice(t, got)
}

// TestPageRelayRefusesAnotherProcess: an ask for a process other than
// the checkpoint's ends the relay (its pages are not the ones here).
func TestPageRelayRefusesAnotherProcess(t *testing.T) {
	g := newRelayRig(t, []lazyRun{{page(0), page(4)}}, false, nil)
	g.connect()
	b := make([]byte, psHeaderSize)
	psHeader{cmd: psIOVGet, nr: 1, vaddr: page(0), dst: 2}.put(b)
	if _, err := g.daemon.Write(b); err != nil {
		t.Fatal(err)
	}
	_ = g.daemon.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := g.daemon.Read(make([]byte, 1)); err == nil {
		t.Fatalf("the relay answered (%d bytes) an ask for another process", n)
	}
	<-g.done
}

// FuzzPageRelayAnswers: whatever the page server sends back, the relay
// never gives the daemon an answer that is not to its ask (the address it
// asked for, no more pages than asked), never panics and ends once the
// page server's connection does.
func FuzzPageRelayAnswers(f *testing.F) {
	good := func(vaddr, nr uint64) []byte {
		b := make([]byte, psHeaderSize)
		psHeader{cmd: 0x40006, nr: nr, vaddr: vaddr, dst: 1}.put(b)
		for i := range nr {
			b = append(b, fakePage(vaddr+i*psPageSize)...)
		}
		return b
	}
	f.Add(slices.Concat(good(page(10), 1), good(page(0), 2)))
	f.Add(good(page(0), 2))
	f.Add(good(page(0), 3))
	f.Add(good(page(1), 1))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, answers []byte) {
		serverSide, relayRemote := tcpPair(t)
		daemon, relayLocal := tcpPair(t)
		defer daemon.Close()
		go func() { // the page server: sends the fuzz, ends its side, reads asks until the relay goes
			defer serverSide.Close()
			_, _ = serverSide.Write(answers)
			_ = serverSide.(*net.TCPConn).CloseWrite()
			_, _ = io.Copy(io.Discard, serverSide)
		}()
		runs := []lazyRun{{page(0), page(2)}, {page(10), page(11)}}
		rel := startRelay(relayRemote, lazyPlan{runs: runs, dst: 1})
		done := make(chan struct{})
		go func() {
			defer close(done)
			rel.serve(relayLocal)
		}()
		ask := make([]byte, psHeaderSize)
		psHeader{cmd: psIOVGet, nr: 1, vaddr: page(10), dst: 1}.put(ask)
		_, _ = daemon.Write(ask)
		_ = daemon.SetReadDeadline(time.Now().Add(5 * time.Second))
		head := make([]byte, psHeaderSize)
		if _, err := io.ReadFull(daemon, head); err == nil {
			if h := parsePS(head); h.vaddr != page(10) || h.nr != 1 {
				t.Fatalf("answer %+v to an ask of 1 page at %#x", h, page(10))
			}
		}
		daemon.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the relay did not end after the page server hung up")
		}
	})
}
