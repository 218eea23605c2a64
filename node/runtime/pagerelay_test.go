package runtime

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
)

// fakePageServer answers PS_IOV_GET asks with pages whose every 8 bytes
// hold the page's address, at most up to the end of the run that holds
// the address (as CRIU's page server stops at the end of a run), and
// records every header it got.
type fakePageServer struct {
	runs []lazyRun
	mu   sync.Mutex
	got  []psHeader
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

// TestPageRelayPrefetches: an ask for one page goes to the page server
// as an ask for prefetchPages (within the run that holds it); later asks
// those pages cover are answered without the page server, each answer in
// order and with the right pages; an ask outside every run, or of
// prefetchPages already, goes as it is; anything but an ask turns the
// relay into a copy.
func TestPageRelayPrefetches(t *testing.T) {
	const base = 0x7f0000000000
	runs := []lazyRun{{base, base + 40*psPageSize}, {base + 100*psPageSize, base + 102*psPageSize}}
	srv := &fakePageServer{runs: runs}
	serverSide, relayRemote := tcpPair(t)
	daemon, relayLocal := tcpPair(t)
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.serve(serverSide)
	}()
	done := make(chan RelayStats, 1)
	go func() { done <- relayPages(relayLocal, relayRemote, runs) }()

	ask := func(vaddr, nr uint64) {
		t.Helper()
		b := make([]byte, psHeaderSize)
		psHeader{cmd: psIOVGet, pad: 0x5555, nr: nr, vaddr: vaddr, dst: 1}.put(b)
		if _, err := daemon.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	answer := func(vaddr, nr uint64) {
		t.Helper()
		head := make([]byte, psHeaderSize)
		if _, err := io.ReadFull(daemon, head); err != nil {
			t.Fatal(err)
		}
		if h := parsePS(head); h.nr != nr || h.vaddr != vaddr || h.dst != 1 || h.cmd != 0x40006 {
			t.Fatalf("answer %+v to an ask of %d pages at %#x", h, nr, vaddr)
		}
		data := make([]byte, nr*psPageSize)
		if _, err := io.ReadFull(daemon, data); err != nil {
			t.Fatal(err)
		}
		for i := range nr {
			if !bytes.Equal(data[i*psPageSize:(i+1)*psPageSize], fakePage(vaddr+i*psPageSize)) {
				t.Fatalf("page %d of the answer at %#x is not the page at %#x", i, vaddr, vaddr+i*psPageSize)
			}
		}
	}
	ask(base, 1) // widened to 16
	answer(base, 1)
	ask(base+psPageSize, 1)     // kept
	ask(base+2*psPageSize, 3)   // kept
	ask(base+38*psPageSize, 1)  // widened to the run's end: 2
	ask(base+60*psPageSize, 1)  // in no run
	ask(base+20*psPageSize, 16) // as large as a prefetch already
	ask(base+100*psPageSize, 1) // widened to 2
	answer(base+psPageSize, 1)
	answer(base+2*psPageSize, 3)
	answer(base+38*psPageSize, 1)
	answer(base+60*psPageSize, 1)
	answer(base+20*psPageSize, 16)
	answer(base+100*psPageSize, 1)
	ask(base+39*psPageSize, 1)  // kept
	ask(base+101*psPageSize, 1) // kept
	answer(base+39*psPageSize, 1)
	answer(base+101*psPageSize, 1)

	flush := make([]byte, psHeaderSize)
	psHeader{cmd: 0x1024}.put(flush)
	if _, err := daemon.Write(flush); err != nil {
		t.Fatal(err)
	}
	daemon.Close()
	st := <-done
	<-served // it has read all the relay sent
	want := []psHeader{
		{cmd: psIOVGet, pad: 0x5555, nr: 16, vaddr: base, dst: 1},
		{cmd: psIOVGet, pad: 0x5555, nr: 2, vaddr: base + 38*psPageSize, dst: 1},
		{cmd: psIOVGet, pad: 0x5555, nr: 1, vaddr: base + 60*psPageSize, dst: 1},
		{cmd: psIOVGet, pad: 0x5555, nr: 16, vaddr: base + 20*psPageSize, dst: 1},
		{cmd: psIOVGet, pad: 0x5555, nr: 2, vaddr: base + 100*psPageSize, dst: 1},
		{cmd: 0x1024},
	}
	if got := srv.headers(); !slices.Equal(got, want) {
		t.Fatalf("the page server got\n%+v\nwant\n%+v", got, want)
	}
	if st != (RelayStats{Asks: 9, Answered: 4, Widened: 3}) {
		t.Fatalf("stats %+v", st)
	}
}
